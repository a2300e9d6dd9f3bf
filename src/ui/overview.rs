//! `GET /`: one row per watch, what it runs and what it is doing.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::layout::{self, clock, state_badge, verdict_badge};
use crate::judge::observation::CheckTrack;
use crate::status::{FleetView, ObservationSummary, StatusDocument, WatchState, WatchSummary};

pub fn page(doc: &StatusDocument, now: DateTime<Utc>) -> Markup {
    layout::page(
        "Watches",
        true,
        html! {},
        html! {
            h1 { "Watches" }
            @if doc.watches.is_empty() {
                p { "No watches are configured." }
            } @else {
                table class="overview" {
                    caption { "Every watched service, as of " (clock(now)) " UTC" }
                    thead {
                        tr {
                            th scope="col" { "Watch" }
                            th scope="col" { "State" }
                            th scope="col" { "Current release" }
                            th scope="col" { "Last good release" }
                            th scope="col" { "Observation" }
                            th scope="col" { "Last verdict" }
                            th scope="col" { "Flags" }
                        }
                    }
                    tbody {
                        @for w in &doc.watches {
                            (row(w, now, doc.fleet.as_ref()))
                        }
                    }
                }
            }
            @if let Some(f) = &doc.fleet {
                (fleet(f))
            }
        },
    )
}

/// The fleet's nodes, as this node last read them from the database.
fn fleet(f: &FleetView) -> Markup {
    html! {
        h2 { "Fleet" }
        table class="fleet" {
            caption { "Nodes sharing this state database; this page is served by " (f.node) }
            thead {
                tr {
                    th scope="col" { "Node" }
                    th scope="col" { "Alive" }
                    th scope="col" { "Last heartbeat (UTC)" }
                    th scope="col" { "Watches owned" }
                }
            }
            tbody {
                @for n in &f.nodes {
                    tr data-node=(n.name) {
                        th scope="row" { (n.name) }
                        td { @if n.alive { "yes" } @else { span class="flag bad" { "no: its watches are taken over" } } }
                        td { (clock(n.heartbeat_at)) }
                        td { (n.owns) }
                    }
                }
            }
        }
        @if !f.unowned.is_empty() {
            p class="flag bad" { "⚠ no node holds the lease of: " (f.unowned.join(", ")) }
        }
    }
}

fn row(w: &WatchSummary, now: DateTime<Utc>, fleet: Option<&FleetView>) -> Markup {
    html! {
        tr class="watch" data-watch=(w.name) data-state=(w.state.as_str()) {
            th scope="row" { a href=(super::watch_href(&w.name)) { (w.name) } }
            td { (state_badge(w.state)) }
            td { (w.current_release.as_deref().unwrap_or("—")) }
            td { (w.last_good_release.as_deref().unwrap_or("—")) }
            td {
                @match &w.observation {
                    Some(o) => (progress(o, &[], now)),
                    None => "—",
                }
            }
            td {
                @match &w.last_verdict {
                    Some(v) => {
                        a href=(super::verdict_href(&v.observation_id)) {
                            (verdict_badge(Some(v.verdict))) " " (v.version.as_deref().unwrap_or(&v.release))
                        }
                        " at " (clock(v.decided_at))
                    }
                    None => "—",
                }
            }
            td {
                (flags(w))
                @if let Some(f) = fleet {
                    @match &w.owner {
                        Some(node) => span class="flag muted" data-owner=(node) { "on node " (node) },
                        None => @if f.unowned.contains(&w.name) {
                            span class="flag bad" { "⚠ no node is watching it" }
                        },
                    }
                }
            }
        }
    }
}

/// "round 4 of ~8, 2.1 s left", with a progress bar. `checks` (the detail's, or none from a
/// summary) only serve to estimate the rounds when the plan is missing.
pub fn progress(o: &ObservationSummary, checks: &[CheckTrack], now: DateTime<Utc>) -> Markup {
    let total = rounds_total(o, checks);
    let window = (o.window_ends - o.judging_from).num_milliseconds().max(1) as f64;
    let done = ((now - o.judging_from).num_milliseconds() as f64 / window).clamp(0.0, 1.0);
    html! {
        a href=(super::verdict_href(&o.id)) { (o.version.as_deref().unwrap_or(&o.release)) }
        " (" (o.kind.as_str()) "): "
        @if now < o.judging_from {
            "warm-up, judging in " (layout::duration(o.judging_from - now))
        } @else {
            "round " (o.rounds)
            @if let Some(n) = total { " of ~" (n) }
            ", " (layout::duration(o.window_ends - now)) " left"
        }
        " "
        progress max="100" value=(format!("{:.0}", done * 100.0)) { (format!("{:.0}%", done * 100.0)) }
    }
}

/// How many rounds the window holds: the daemon's plan (`planned_rounds`), or, in a status
/// document without it, an estimate from the spacing of the samples taken so far.
pub fn rounds_total(o: &ObservationSummary, checks: &[CheckTrack]) -> Option<u64> {
    if o.planned_rounds > 0 {
        return Some(o.planned_rounds.max(o.rounds));
    }
    let mut gaps: Vec<i64> = checks
        .iter()
        .flat_map(|c| {
            let times: Vec<DateTime<Utc>> = c.samples.iter().map(|s| s.at).collect();
            times
                .windows(2)
                .map(|w| (w[1] - w[0]).num_milliseconds())
                .collect::<Vec<_>>()
        })
        .filter(|g| *g > 0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    gaps.sort_unstable();
    let interval = gaps[gaps.len() / 2];
    let window = (o.window_ends - o.judging_from).num_milliseconds();
    Some(((window as f64 / interval as f64).floor() as u64 + 1).max(o.rounds))
}

fn flags(w: &WatchSummary) -> Markup {
    html! {
        @if w.state == WatchState::Paused {
            span class="flag muted" { "⏸ paused: deployments are recorded, not observed" }
        }
        @if let Some(a) = &w.attention {
            span class="flag bad" { "⚠ attention: " (a) }
        }
        @if let Some(r) = w.rollback.as_ref().filter(|_| w.state == WatchState::RollingBack) {
            span class="flag warn" { "rolling back " (r.condemned_release) " to " (r.target_release) }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::judge::observation::Tracker;
    use crate::judge::{Outcome, Rule};
    use crate::status::{ObservationView, WatchStatus};

    fn observation() -> ObservationView {
        let t0 = Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap();
        let mut tracker = Tracker::new([("health", &[Rule::Max(1.0)][..], 3)], 3);
        for i in 0..3 {
            tracker.record(
                0,
                crate::judge::observation::Sample {
                    at: t0 + Duration::milliseconds(500 * i),
                    value: Some(0.5),
                    outcome: Outcome::Pass,
                    mixed: false,
                    note: None,
                    alerts: vec![],
                },
            );
        }
        ObservationView {
            id: "obs-1".into(),
            release: "Releases-3".into(),
            version: Some("1.2.0".into()),
            deployment_id: None,
            kind: crate::model::ObservationKind::Deployment,
            source: crate::model::Source::Poll,
            deployed_at: t0 - Duration::seconds(1),
            judging_from: t0,
            window_ends: t0 + Duration::seconds(4),
            rounds: 3,
            planned_rounds: 0,
            checks: tracker.checks,
            outcome: Default::default(),
            failure: None,
        }
    }

    #[test]
    fn rounds_are_planned_or_estimated_from_the_sample_spacing() {
        let o = observation();
        let summary = ObservationSummary::of(&o);
        assert_eq!(rounds_total(&summary, &o.checks), Some(9));
        assert_eq!(
            rounds_total(&summary, &[]),
            None,
            "a summary has no samples"
        );
        let mut none = o.clone();
        none.checks[0].samples.truncate(1);
        assert_eq!(rounds_total(&summary, &none.checks), None);
        let planned = ObservationSummary {
            planned_rounds: 12,
            ..summary
        };
        assert_eq!(rounds_total(&planned, &[]), Some(12));
    }

    #[test]
    fn a_row_says_state_progress_and_flags_in_words() {
        let mut w = WatchStatus::new("shop<1>");
        w.state = WatchState::Observing;
        w.observation = Some(ObservationView {
            planned_rounds: 9,
            ..observation()
        });
        w.attention = Some("rollback failed".into());
        let now = Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 1).unwrap();
        let html = page(
            &StatusDocument {
                watches: vec![WatchSummary::of(&w)],
                fleet: None,
                next: None,
            },
            now,
        )
        .into_string();
        assert!(html.contains("shop&lt;1&gt;"));
        assert!(html.contains(">observing</span>"));
        assert!(html.contains("round 3 of ~9, 3.0 s left"), "{html}");
        assert!(html.contains("⚠ attention: rollback failed"));
        assert!(html.contains("href=\"/ui/verdicts/obs-1\""));
    }

    #[test]
    fn a_fleet_overview_names_owners_nodes_and_unwatched_services() {
        let mut shop = WatchStatus::new("shop");
        shop.owner = Some("node-b".into());
        let cart = WatchStatus::new("cart");
        let now = Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 1).unwrap();
        let doc = StatusDocument {
            watches: vec![WatchSummary::of(&cart), WatchSummary::of(&shop)],
            next: None,
            fleet: Some(FleetView {
                node: "node-a".into(),
                nodes: vec![
                    crate::status::NodeView {
                        name: "node-a".into(),
                        alive: true,
                        heartbeat_at: now,
                        owns: 0,
                    },
                    crate::status::NodeView {
                        name: "node-b".into(),
                        alive: false,
                        heartbeat_at: now,
                        owns: 1,
                    },
                ],
                unowned: vec!["cart".into()],
            }),
        };
        let html = page(&doc, now).into_string();
        assert!(html.contains("on node node-b"), "{html}");
        assert!(html.contains("⚠ no node is watching it"));
        assert!(html.contains("⚠ no node holds the lease of: cart"));
        assert!(html.contains("no: its watches are taken over"));
        assert!(html.contains("this page is served by node-a"));
    }
}
