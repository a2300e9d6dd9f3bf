//! `GET /ui/watches/{name}`: one watch now, and what happened to it, newest first: deployments,
//! verdicts, rollbacks, retries, pauses and notifications, each linking to its evidence.

use chrono::{DateTime, Utc};
use maud::{html, Markup};

use super::layout::{self, crumb, state_badge, verdict_badge};
use crate::evidence::Evidence;
use crate::sinks::AlertKind;
use crate::status::{ObservationSummary, WatchStatus};
use crate::store::{HistoryEntry, OutboxItem};

/// One line of the timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub at: DateTime<Utc>,
    /// deployment, rollback, retry, verdict, action, pause, notification, note.
    pub kind: &'static str,
    pub text: String,
    /// The observation whose evidence tells more.
    pub evidence: Option<String>,
}

/// What a timeline note is about, from its wording (see the notes in `engine::lifecycle`).
fn classify(text: &str) -> &'static str {
    let starts = |p: &str| text.starts_with(p);
    if starts("deployment of") {
        if text.ends_with("(rollback)") {
            "rollback"
        } else if text.ends_with("(retry)") {
            "retry"
        } else {
            "deployment"
        }
    } else if starts("verified")
        || starts("condemned")
        || starts("inconclusive")
        || starts("superseded")
    {
        "verdict"
    } else if starts("decision") {
        "action"
    } else if starts("rolled back") || starts("deploying") {
        "rollback"
    } else if starts("redeployed") {
        "retry"
    } else if text.contains("paused") {
        "pause"
    } else {
        "note"
    }
}

/// Every event known of a watch, newest first.
pub fn events(
    history: &[HistoryEntry],
    evidence: &[Option<Evidence>],
    notifications: &[(OutboxItem, bool)],
) -> Vec<Event> {
    let mut out = Vec::new();
    for (h, ev) in history.iter().zip(evidence) {
        match ev {
            Some(ev) => out.extend(ev.timeline.iter().map(|e| Event {
                at: e.at,
                kind: classify(&e.event),
                text: e.event.clone(),
                evidence: Some(h.id.clone()),
            })),
            None => {
                out.push(Event {
                    at: h.deployed_at,
                    kind: match h.kind {
                        crate::model::ObservationKind::Deployment => "deployment",
                        crate::model::ObservationKind::Rollback => "rollback",
                        crate::model::ObservationKind::Retry => "retry",
                    },
                    text: format!("{} of {}", h.kind.as_str(), h.release),
                    evidence: Some(h.id.clone()),
                });
                if let (Some(v), Some(at)) = (h.verdict, h.decided_at) {
                    out.push(Event {
                        at,
                        kind: "verdict",
                        text: format!("{}: {}", v.as_str(), h.summary.as_deref().unwrap_or("")),
                        evidence: Some(h.id.clone()),
                    });
                }
            }
        }
    }
    for (n, delivered) in notifications {
        let a = &n.alert;
        out.push(Event {
            at: a.at,
            kind: if a.kind == AlertKind::Paused {
                "pause"
            } else {
                "notification"
            },
            text: format!(
                "{} notification to {}{}: {}",
                a.kind.as_str(),
                n.sinks.join(", "),
                if *delivered {
                    ""
                } else {
                    " (not delivered yet)"
                },
                a.summary
            ),
            evidence: a.evidence.as_ref().map(|e| e.id.clone()),
        });
    }
    // Newest first; equal times keep their order reversed too, so a verdict reads above the
    // judging that led to it.
    out.reverse();
    out.sort_by_key(|e| std::cmp::Reverse(e.at));
    out
}

pub fn page(
    w: &WatchStatus,
    history: &[HistoryEntry],
    evidence: &[Option<Evidence>],
    notifications: &[(OutboxItem, bool)],
    now: DateTime<Utc>,
) -> Markup {
    let events = events(history, evidence, notifications);
    layout::page(
        &format!("Watch {}", w.name),
        true,
        crumb(None, &w.name),
        html! {
            h1 { "Watch " (w.name) " " (state_badge(w.state)) }
            dl class="facts" {
                dt { "Current release" } dd { (w.current_release.as_deref().unwrap_or("—")) }
                dt { "Last good release" } dd { (w.last_good_release.as_deref().unwrap_or("—")) }
                dt { "Observation" }
                dd {
                    @match &w.observation {
                        Some(o) => (super::overview::progress(&ObservationSummary::of(o), &o.checks, now)),
                        None => "none in progress",
                    }
                }
                dt { "Last verdict" }
                dd {
                    @match &w.last_verdict {
                        Some(v) => {
                            a href=(super::verdict_href(&v.observation_id)) { (verdict_badge(Some(v.verdict))) " " (v.version.as_deref().unwrap_or(&v.release)) }
                            " at " (layout::time(v.decided_at)) ": " (v.summary)
                        }
                        None => "none yet",
                    }
                }
                @if let Some(a) = &w.attention {
                    dt { "Attention" } dd class="bad-text" { "⚠ " (a) }
                }
            }
            h2 { "Timeline, newest first" }
            @if events.is_empty() {
                p { "Nothing has happened to this watch yet." }
            } @else {
                ol class="timeline" {
                    @for e in &events {
                        li data-kind=(e.kind) {
                            (layout::time(e.at))
                            " "
                            span class=(format!("tag {}", e.kind)) { (e.kind) }
                            " "
                            span class="text" { (e.text) }
                            @if let Some(id) = &e.evidence {
                                " "
                                a href=(super::verdict_href(id)) { "evidence" }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;
    use crate::evidence::TimelineEntry;
    use crate::sinks::{testing, Alert};

    #[test]
    fn notes_are_classified_by_their_wording() {
        for (text, kind) in [
            ("deployment of Releases-3 (poll)", "deployment"),
            ("deployment of Releases-2 (rollback)", "rollback"),
            ("condemned: check errors failure_limit 3 reached", "verdict"),
            ("superseded: observation stopped: watch paused", "verdict"),
            (
                "decision: rollback — release Releases-3 condemned",
                "action",
            ),
            ("rolled back from Releases-3 to Releases-2", "rollback"),
            ("redeployed Releases-3 (retry)", "retry"),
            ("judging starts (after warmup)", "note"),
        ] {
            assert_eq!(classify(text), kind, "{text}");
        }
    }

    #[test]
    fn events_merge_evidence_history_and_notifications_newest_first() {
        let t0 = Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap();
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        ev.timeline = vec![
            TimelineEntry {
                at: t0,
                event: "deployment of Releases-2 (poll)".into(),
            },
            TimelineEntry {
                at: t0 + Duration::seconds(5),
                event: "condemned: check health".into(),
            },
        ];
        let entry = |id: &str, at| HistoryEntry {
            id: id.into(),
            watch: "shop".into(),
            release: "Releases-1".into(),
            kind: crate::model::ObservationKind::Deployment,
            deployed_at: at,
            verdict: None,
            decided_at: None,
            summary: None,
            action: None,
            outcome: Default::default(),
            failure: None,
        };
        let history = [entry("obs-42", t0), entry("obs-1", t0 - Duration::hours(1))];
        let note = OutboxItem {
            id: "n".into(),
            sinks: vec!["ops".into()],
            alert: Alert {
                id: "n".into(),
                kind: AlertKind::Paused,
                watch: "shop".into(),
                release: "Releases-2".into(),
                summary: "watch shop paused by an operator".into(),
                at: t0 + Duration::seconds(9),
                evidence: None,
            },
        };
        let e = events(&history, &[Some(ev), None], &[(note, true)]);
        let kinds: Vec<&str> = e.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["pause", "verdict", "deployment", "deployment"]);
        assert_eq!(e[1].evidence.as_deref(), Some("obs-42"));
        assert_eq!(e[3].text, "deployment of Releases-1");
        assert!(e[0].text.starts_with("paused notification to ops: "));
    }
}
