//! `GET /ui/verdicts/{id}`: one decision and its evidence. The check that decided comes first;
//! each check is charted against its limits, with its value, limit and counts in text beside
//! the chart and every sample in a table under it.

use maud::{html, Markup};

use super::chart::{self, Chart};
use super::layout::{self, crumb, verdict_badge};
use super::series::{self, Extras};
use crate::evidence::{CheckEvidence, Evidence};
use crate::judge::num;

pub fn page(ev: &Evidence) -> Markup {
    let d = &ev.deployment;
    let extras = Extras::of(ev);
    let name = d.version.as_deref().unwrap_or(&d.release);
    let verdict = ev.verdict.as_ref().map(|v| v.verdict);
    layout::page(
        &format!("{} {name}", verdict.map_or("observing", |v| v.as_str())),
        ev.verdict.is_none(),
        html! { (crumb(Some(&super::watch_href(&ev.watch)), &ev.watch)) (crumb(None, &ev.id)) },
        html! {
            h1 { "Release " (name) " " (verdict_badge(verdict)) }
            @if let Some(v) = &ev.verdict {
                p class="summary" { (v.summary) }
            }
            (facts(ev))
            section class="checks" aria-label="checks" {
                h2 { "Checks" }
                (chart::legend())
                @for (n, i) in series::order(&ev.checks).into_iter().enumerate() {
                    (check(n, ev, &ev.checks[i], &extras[i]))
                }
            }
            @if !ev.timeline.is_empty() {
                section aria-label="timeline" {
                    h2 { "Timeline" }
                    ol class="timeline" {
                        @for e in &ev.timeline {
                            li { (layout::clock(e.at)) " " (e.event) }
                        }
                    }
                }
            }
            @if !ev.links.is_empty() {
                section aria-label="links" {
                    h2 { "Where to look next" }
                    ul {
                        @for l in &ev.links {
                            li {
                                @if l.url.starts_with("http://") || l.url.starts_with("https://") {
                                    a href=(l.url) rel="noreferrer" { (l.name) }
                                } @else {
                                    (l.name) ": " (l.url)
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn facts(ev: &Evidence) -> Markup {
    let d = &ev.deployment;
    html! {
        dl class="facts" {
            dt { "Watch" } dd { a href=(super::watch_href(&ev.watch)) { (ev.watch) } }
            dt { "Release" }
            dd {
                (d.release)
                @if let Some(v) = &d.version { " (version " (v) ")" }
                @if let Some(id) = &d.deployment_id { ", deployment " (id) }
            }
            dt { "Observed" } dd { (d.kind.as_str()) ", learned by " (d.source.as_str()) }
            dt { "Deployed" } dd { (layout::time(d.deployed_at)) " UTC" }
            dt { "Judged" } dd { "from " (layout::clock(d.judging_from)) " to " (layout::clock(d.window_ends)) " UTC" }
            @if let Some(v) = &ev.verdict {
                dt { "Decided" } dd { (layout::time(v.decided_at)) " UTC" }
            }
            @if d.rollback_safe == Some(false) {
                dt { "Rollback" } dd { "marked not safe to roll back from" }
            }
            @if let Some(f) = &d.failure {
                dt { "Deployment" }
                dd class="bad-text" {
                    "FAILED: " (f.summary())
                    @if !f.log_tail.is_empty() {
                        pre { (f.log_tail.join("\n")) }
                    }
                }
            }
            @if let Some(a) = &ev.action {
                dt { "Action" }
                dd {
                    strong { (a.chosen.as_str()) }
                    @if a.dry_run { " (dry run: nothing called)" }
                    " — " (a.why)
                    @if let Some(t) = &a.target_release {
                        "; target " (t)
                        @if let Some(w) = &a.target_why { " (" (w) ")" }
                    }
                    @if let Some(dep) = &a.deploy {
                        "; deploy via " (dep.deployer) ": " (dep.state.as_str())
                        @if let Some(id) = &dep.deployment_id { ", " (id) }
                    }
                    @if let Some(c) = &a.command {
                        "; command: " (c.describe())
                    }
                }
            }
        }
    }
}

/// The value to show beside the chart: the newest failure's, else the newest sample's.
fn shown_value(c: &Chart) -> Option<&chart::Point> {
    c.points
        .iter()
        .rev()
        .find(|p| p.state == chart::State::Fail)
        .or_else(|| c.points.last())
}

fn check(n: usize, ev: &Evidence, c: &CheckEvidence, x: &Extras) -> Markup {
    let t = &c.track;
    let chart = series::chart(&format!("chart-{n}"), ev, c, x);
    let condemning = series::condemned_by(c);
    let rules: Vec<String> = t.rules.iter().map(|r| r.to_string()).collect();
    let shown = shown_value(&chart);
    let status = if condemning {
        "condemned the release"
    } else if t.limit_hit.is_some() {
        "could not be judged"
    } else if t.failures > 0 {
        "failed some samples"
    } else {
        "held"
    };
    html! {
        article class="check" id=(format!("check-{n}")) data-check=(t.name) data-condemning=(condemning) {
            h3 {
                (t.name) " "
                span class="kind" { (c.kind) } " "
                span class=(if condemning { "verdict-text bad-text" } else { "verdict-text" }) { (status) }
            }
            div class="check-body" {
                figure {
                    (chart::render(&chart))
                    figcaption { (chart.describe()) }
                }
                aside class="numbers" aria-label=(format!("{} in numbers", t.name)) {
                    dl {
                        dt { @if shown.is_some_and(|p| p.state == chart::State::Fail) { "Failing value" } @else { "Last value" } }
                        dd class="value" {
                            @match shown {
                                Some(p) => {
                                    (p.value.map(num).unwrap_or_else(|| "no value".into()))
                                    " " span class="unit" { (chart.unit) }
                                    span class="at" { " at " (layout::clock(p.at)) " UTC" }
                                }
                                None => "no samples",
                            }
                        }
                        dt { "Limit" }
                        dd class="limit" { (rules.join("; ")) }
                        @for th in &chart.thresholds {
                            @if th.label.contains("baseline") {
                                dd class="limit-value" { (th.label) }
                            }
                        }
                        @if let Some(p) = shown.filter(|p| p.state == chart::State::Fail) {
                            dt { "Broken by" } dd class="broken" { (p.text) }
                        }
                        @if let Some(b) = t.baseline {
                            dt { "Baseline" }
                            dd class="baseline" {
                                (num(b))
                                @if let Some(bw) = chart.baseline.as_ref().and_then(|b| b.window) {
                                    " over " (layout::clock(bw.0)) "–" (layout::clock(bw.1))
                                }
                            }
                        }
                        @if let Some(b) = t.control_baseline {
                            dt { "Control baseline" } dd { (num(b)) }
                        }
                        dt { "Samples" }
                        dd { (t.passes) " pass, " (t.failures) " fail, " (t.errors) " error, " (t.no_data) " no data" }
                        dt { "Condemns after" } dd { (t.failure_limit) " failures in a row" }
                        @if let Some(hit) = &t.limit_hit {
                            dt { "Limit hit" } dd class="limit-hit" { (hit) }
                        }
                    }
                }
            }
            p class="probe" {
                (c.url)
                @if let Some(q) = &c.query { " · " code { (q) } }
                @if let Some(ctl) = &c.control { " · control " (ctl) }
            }
            @if let Some(cmp) = &t.comparison {
                p class="comparison" { (cmp.describe()) }
            }
            (samples_table(&chart))
        }
    }
}

fn samples_table(c: &Chart) -> Markup {
    html! {
        details {
            summary { "The " (c.points.len()) " samples as a table" }
            table class="samples" {
                thead {
                    tr {
                        th scope="col" { "Time (UTC)" }
                        th scope="col" { "Value" }
                        th scope="col" { "Result" }
                        th scope="col" { "Evidence" }
                    }
                }
                tbody {
                    @for p in &c.points {
                        tr class=(p.state.class()) {
                            td { (p.at.format("%H:%M:%S%.3f")) }
                            td { (p.value.map(num).unwrap_or_else(|| "—".into())) }
                            td {
                                (p.state.as_str())
                                @if p.mixed { ", mixed look-back" }
                                @if p.condemning { ", condemning" }
                            }
                            td { (p.text) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Outcome;

    /// The outcome names the table uses are the evidence's.
    fn outcome_name(o: &Outcome) -> &'static str {
        match o {
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::Error { .. } => "error",
            Outcome::NoData { .. } => "no data",
        }
    }
    use crate::sinks::{testing, AlertKind};

    #[test]
    fn the_condemning_check_comes_first_with_its_value_and_limit() {
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        ev.checks.swap(0, 1);
        let html = page(&ev).into_string();
        let first = html.find("class=\"check\"").unwrap();
        assert!(
            html[first..].starts_with(
                "class=\"check\" id=\"check-0\" data-check=\"health\" data-condemning=\"true\""
            ),
            "{}",
            &html[first..first + 120]
        );
        let health = &html[first..html.find("id=\"check-1\"").unwrap()];
        assert!(
            health.contains("<dd class=\"value\">503 <span class=\"unit\">HTTP status</span>"),
            "{health}"
        );
        assert!(
            health.contains("<dd class=\"limit\">status in [200]</dd>"),
            "{health}"
        );
        assert!(health.contains("status 503 not in [200]"));
        assert_eq!(health.matches("class=\"sample ").count(), 4);
        assert!(html.contains(">condemned</span>"));
        assert!(
            !html.contains("data-live"),
            "a decided verdict does not refresh"
        );
    }

    #[test]
    fn an_observation_in_progress_refreshes_live() {
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        ev.verdict = None;
        let html = page(&ev).into_string();
        assert!(html.contains("<main data-live=\"on\">"));
        assert!(html.contains("/ui/live.js"));
        assert!(html.contains(">observing</span>"));
    }

    #[test]
    fn the_samples_table_says_each_outcome_in_words() {
        let ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        let html = page(&ev).into_string();
        for s in &ev.checks[1].track.samples {
            assert!(html.contains(&format!("<td>{}", outcome_name(&s.outcome))));
        }
    }
}
