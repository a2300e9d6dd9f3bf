//! The evidence document: everything a human needs to understand one decision.
//!
//! One document per observation, stored in the state database, served at
//! `GET /v1/verdicts/{id}`, attached to notifications, summarised in the deployer's comments and
//! written to a file for `[watch.command]` programs. The schema is versioned (`schema`); fields
//! are only ever added.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::command::CommandResult;
use crate::judge::observation::{CheckTrack, Sample, VerdictKind};
use crate::model::{BeforeSeries, Chosen, IntentState, ObservationKind, Source};

/// Current schema version of [`Evidence`].
pub const SCHEMA: u32 = 1;

/// The evidence of one observation and what was done about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Evidence {
    pub schema: u32,
    /// The observation id (also the verdict id).
    pub id: String,
    pub watch: String,
    pub deployment: DeploymentFacts,
    pub verdict: Option<VerdictFacts>,
    /// Per check: probe, rules, baseline, counters, recent samples with timestamps, limit hit.
    pub checks: Vec<CheckEvidence>,
    pub action: Option<ActionFacts>,
    /// What happened when, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Where to look next: the deployer's task, a Prometheus graph of each query.
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeploymentFacts {
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    /// announce, webhook, poll, rollback, retry.
    pub source: Source,
    /// deployment, rollback, retry.
    pub kind: ObservationKind,
    pub deployed_at: DateTime<Utc>,
    pub judging_from: DateTime<Utc>,
    pub window_ends: DateTime<Utc>,
    /// false when the release is marked as not safe to roll back from; null when unknown.
    pub rollback_safe: Option<bool>,
    /// The deployment itself failed: the deployer's account (error, failed step and machine,
    /// log tail). Absent when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::model::DeployFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerdictFacts {
    pub verdict: VerdictKind,
    pub decided_at: DateTime<Utc>,
    /// Which check hit which limit.
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckEvidence {
    /// `http`, `prometheus`, `scrape`, `alert` or `slo`.
    pub kind: String,
    /// The probed URL (http), the Prometheus server (prometheus, slo over PromQL), the
    /// /metrics URL (scrape, slo over scrape selections) or the alert server (alert).
    pub url: String,
    /// What is asked: the query (prometheus), what is computed (scrape), the source and label
    /// matchers (alert), the objective and the good and total queries or scrape selections
    /// (slo; each sample's note gives both windows' burn rates).
    pub query: Option<String>,
    /// With `control_query` (prometheus and scrape checks): the control's query, the
    /// Prometheus answering it and the tolerance, e.g. `max(world_latency_seconds) at
    /// http://prometheus:9090, tolerance 0.5`. Absent without a control (and in documents
    /// written before it was added).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(flatten)]
    pub track: CheckTrack,
    /// The check's whole observation, oldest first, shaped like `samples` (which keeps only
    /// the newest): each round's samples are appended as the document is updated, and beyond
    /// [`crate::series::MAX_SERIES`] it is thinned evenly in time, always keeping failures and
    /// the condemning run. Empty in documents written before it was added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<Sample>,
    /// The pre-deployment series behind the baseline (prometheus and scrape checks with a
    /// `baseline_window`), at most [`crate::series::MAX_BEFORE`] points. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<BeforeSeries>,
}

/// What backstop chose to do, why, and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActionFacts {
    /// The configured policy (`on_failure`, or the `then` of a retry).
    pub policy: String,
    /// What was chosen: rollback, retry, notify, command, freeze, pause, dry_run, none.
    pub chosen: Chosen,
    /// Why this and not something else.
    pub why: String,
    pub target_release: Option<String>,
    /// Why this target (last verified; newest successful other release; the same release).
    pub target_why: Option<String>,
    pub dry_run: bool,
    pub deploy: Option<DeployFacts>,
    pub command: Option<CommandResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployFacts {
    pub deployer: String,
    pub deployment_id: Option<String>,
    pub task_id: Option<String>,
    /// pending, created, succeeded, failed.
    pub state: IntentState,
    pub detail: Option<String>,
    /// The deployment backstop made ran and failed: the deployer's account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::model::DeployFailure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Link {
    pub name: String,
    pub url: String,
}

impl Evidence {
    /// The document as notifications carry it: without each check's whole `series` and
    /// `before` (up to 3,000 points a check, hundreds of kB a message). The newest samples, the
    /// condemning run and the numbers stay; the full document is one `GET /v1/verdicts/{id}`
    /// (or `backstop explain`) away.
    pub fn for_notification(mut self) -> Self {
        for c in &mut self.checks {
            c.series = Vec::new();
            c.before = None;
        }
        self
    }

    pub fn note(&mut self, event: impl Into<String>) {
        self.timeline.push(TimelineEntry {
            at: Utc::now(),
            event: event.into(),
        });
    }

    /// Masks credentials in the URLs of checks and links. Documents are written redacted; this
    /// is for those stored before they were.
    pub fn redact_urls(&mut self) {
        for c in &mut self.checks {
            c.url = crate::secret::redact_url(&c.url);
        }
        for l in &mut self.links {
            l.url = crate::secret::redact_url(&l.url);
        }
    }

    /// A readable report for `backstop explain`.
    pub fn report(&self) -> String {
        /// The newest comparison: its verdict line, then each sample set in brief (the JSON
        /// evidence has the sets themselves).
        fn comparison_report(c: &crate::judge::compare::Comparison) -> String {
            let brief = |v: &[f64]| {
                let mut sorted = v.to_vec();
                sorted.sort_by(f64::total_cmp);
                let at = |q: f64| {
                    sorted
                        .get(((sorted.len() - 1) as f64 * q).round() as usize)
                        .map_or("-".to_string(), |x| crate::judge::num(*x))
                };
                let newest: Vec<String> = v
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .map(|x| crate::judge::num(*x))
                    .collect();
                if sorted.is_empty() {
                    return "none".to_string();
                }
                format!(
                    "min {}, median {}, p90 {}, max {}, mean {}; newest {}",
                    at(0.0),
                    at(0.5),
                    at(0.9),
                    at(1.0),
                    crate::judge::num(v.iter().sum::<f64>() / v.len() as f64),
                    newest.join(" ")
                )
            };
            format!(
                "    {}\n      U = {}\n      pre  (newest {} of {}): {}\n      post (newest {} of {}): {}\n",
                c.describe(),
                crate::judge::num(c.u),
                c.pre.len(),
                c.n_pre,
                brief(&c.pre),
                c.post.len(),
                c.n_post,
                brief(&c.post),
            )
        }

        /// The deployer's account of a failed deployment, indented.
        fn failure_report(f: &crate::model::DeployFailure) -> String {
            let mut out = format!("  {}\n", f.summary());
            if let Some(t) = &f.task {
                out.push_str(&format!(
                    "  task {t}{}\n",
                    f.state
                        .as_deref()
                        .map(|s| format!(" ended {s}"))
                        .unwrap_or_default()
                ));
            }
            if !f.log_tail.is_empty() {
                out.push_str("  log tail:\n");
                for line in &f.log_tail {
                    out.push_str(&format!("    | {line}\n"));
                }
            }
            if let Some(why) = &f.details_unavailable {
                out.push_str(&format!(
                    "  (the task's details could not be read: {why})\n"
                ));
            }
            out
        }

        let mut out = String::new();
        let d = &self.deployment;
        out.push_str(&format!(
            "Observation {} of watch {}\n  release {}{} ({}, {}), deployed {}\n  judged {} .. {}\n",
            self.id,
            self.watch,
            d.release,
            d.version
                .as_deref()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default(),
            d.kind,
            d.source,
            d.deployed_at.format("%Y-%m-%d %H:%M:%S UTC"),
            d.judging_from.format("%H:%M:%S"),
            d.window_ends.format("%H:%M:%S"),
        ));
        if d.rollback_safe == Some(false) {
            out.push_str("  marked NOT safe to roll back from\n");
        }
        if let Some(f) = &d.failure {
            out.push_str("\nThe deployment FAILED:\n");
            out.push_str(&failure_report(f));
        }
        match &self.verdict {
            Some(v) => out.push_str(&format!(
                "\nVerdict: {} at {}\n  {}\n",
                v.verdict.as_str().to_uppercase(),
                v.decided_at.format("%H:%M:%S"),
                v.summary
            )),
            None => out.push_str("\nVerdict: none yet (observing)\n"),
        }
        out.push_str("\nChecks:\n");
        for c in &self.checks {
            let t = &c.track;
            let rules: Vec<String> = t.rules.iter().map(|r| r.to_string()).collect();
            out.push_str(&format!(
                "  {} ({} {}{}{}): {}\n    {} pass, {} fail, {} error; failure_limit {}{}\n",
                t.name,
                c.kind,
                c.url,
                c.query
                    .as_deref()
                    .map(|q| match c.kind.as_str() {
                        "alert" | "slo" => format!(": {q}"),
                        _ => format!(" query {q}"),
                    })
                    .unwrap_or_default(),
                c.control
                    .as_deref()
                    .map(|ctl| format!("; control {ctl}"))
                    .unwrap_or_default(),
                rules.join(", "),
                t.passes,
                t.failures,
                t.errors,
                t.failure_limit,
                t.baseline
                    .map(|b| format!("; baseline {}", crate::judge::num(b)))
                    .unwrap_or_default(),
            ));
            if let Some(b) = t.control_baseline {
                // Each sample the control judged says the control's value beside this.
                out.push_str(&format!("    control baseline {}\n", crate::judge::num(b)));
            }
            if let Some(hit) = &t.limit_hit {
                out.push_str(&format!("    LIMIT HIT: {hit}\n"));
            }
            out.push_str(&crate::sparkline::chart(c));
            if let Some(cmp) = &t.comparison {
                out.push_str(&comparison_report(cmp));
            }
            for s in t
                .samples
                .iter()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
            {
                let what = match &s.outcome {
                    crate::judge::Outcome::Pass => "pass".to_string(),
                    crate::judge::Outcome::Fail { limit } => format!("FAIL {limit}"),
                    crate::judge::Outcome::Error { reason, .. } => format!("error: {reason}"),
                    crate::judge::Outcome::NoData { reason } => format!("no data: {reason}"),
                };
                let what = if s.mixed {
                    format!("{what} [mixed]")
                } else {
                    what
                };
                out.push_str(&format!(
                    "    {}  {:>10}  {what}\n",
                    s.at.format("%H:%M:%S%.3f"),
                    s.value.map(crate::judge::num).unwrap_or_else(|| "-".into())
                ));
                if let Some(note) = &s.note {
                    out.push_str(&format!("{:>32}note: {note}\n", ""));
                }
            }
            // The alerts behind an alert check's newest sample, one per line.
            if let Some(s) = t.samples.back().filter(|s| !s.alerts.is_empty()) {
                out.push_str(&format!(
                    "    matching alerts at {}:\n",
                    s.at.format("%H:%M:%S")
                ));
                for a in &s.alerts {
                    out.push_str(&format!(
                        "      {:<9} {}  since {}\n",
                        a.seen.as_str(),
                        a.title(),
                        a.since.format("%Y-%m-%d %H:%M:%S UTC")
                    ));
                }
            }
        }
        if let Some(a) = &self.action {
            out.push_str(&format!(
                "\nAction: {}{} (policy {})\n  why: {}\n",
                a.chosen,
                if a.dry_run {
                    " [dry run: nothing called]"
                } else {
                    ""
                },
                a.policy,
                a.why
            ));
            if let Some(t) = &a.target_release {
                out.push_str(&format!(
                    "  target: {t}{}\n",
                    a.target_why
                        .as_deref()
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                ));
            }
            if let Some(d) = &a.deploy {
                out.push_str(&format!(
                    "  deploy via {}: {}{}{}\n",
                    d.deployer,
                    d.state,
                    d.deployment_id
                        .as_deref()
                        .map(|i| format!(", deployment {i}"))
                        .unwrap_or_default(),
                    d.detail
                        .as_deref()
                        .map(|i| format!(", {i}"))
                        .unwrap_or_default()
                ));
            }
            if let Some(f) = a.deploy.as_ref().and_then(|d| d.failure.as_ref()) {
                out.push_str("  the deployment backstop made FAILED:\n");
                out.push_str(&failure_report(f));
            }
            if let Some(c) = &a.command {
                out.push_str(&format!("  command {:?}: {}\n", c.argv, c.describe()));
            }
        }
        out.push_str("\nTimeline:\n");
        for e in &self.timeline {
            out.push_str(&format!("  {}  {}\n", e.at.format("%H:%M:%S%.3f"), e.event));
        }
        if !self.links.is_empty() {
            out.push_str("\nLinks:\n");
            for l in &self.links {
                out.push_str(&format!("  {}: {}\n", l.name, l.url));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::sinks::{testing, AlertKind};

    #[test]
    fn redact_urls_masks_checks_and_links_only_where_needed() {
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        ev.checks[0].url = "http://user:s3cr3t@app/health".into();
        ev.links.push(super::Link {
            name: "graph".into(),
            url: "http://prom/graph?g0.expr=up&token=s3cr3t".into(),
        });
        let clean = ev.checks[1].url.clone();
        ev.redact_urls();
        assert_eq!(ev.checks[0].url, "http://***@app/health");
        assert_eq!(ev.checks[1].url, clean);
        assert_eq!(
            ev.links.last().unwrap().url,
            "http://prom/graph?g0.expr=up&token=***"
        );
    }

    #[test]
    fn notifications_carry_the_numbers_not_the_whole_series() {
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        let kept = ev.checks[0].track.samples.clone();
        ev.checks[0].series = vec![kept[0].clone(); 2000];
        ev.checks[0].before = Some(crate::model::BeforeSeries {
            from: chrono::Utc::now(),
            to: chrono::Utc::now(),
            points: vec![(chrono::Utc::now(), 1.0); 1000],
        });
        let sent = ev.for_notification();
        assert!(sent
            .checks
            .iter()
            .all(|c| c.series.is_empty() && c.before.is_none()));
        assert_eq!(sent.checks[0].track.samples, kept);
    }

    /// The README's worked example, as `backstop explain` prints it.
    #[test]
    fn explain_shows_the_comparison_readably() {
        use crate::judge::compare::{judge, Compare, Direction, Method};
        let pre = [
            0.2, 0.206, 0.195, 0.183, 0.191, 0.181, 0.201, 0.229, 0.19, 0.188, 0.21, 0.207, 0.202,
            0.182, 0.199, 0.214, 0.175, 0.191, 0.165, 0.176, 0.166, 0.195, 0.176, 0.205, 0.203,
            0.196, 0.155, 0.19, 0.199, 0.202, 0.172, 0.191, 0.181, 0.184, 0.222, 0.184, 0.199,
            0.218, 0.189, 0.198,
        ];
        let post = [
            0.293, 0.292, 0.257, 0.292, 0.332, 0.248, 0.316, 0.293, 0.272, 0.354, 0.313, 0.257,
        ];
        let rule = Compare {
            method: Method::MannWhitney,
            direction: Direction::Increase,
            confidence: 0.98,
            allowed_increase: 1.2,
            allowed_decrease: 0.8,
            min_samples: 10,
            overlap: 1.0,
        };
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        ev.checks[1].track.comparison = judge(&rule, &pre, &post).1;
        let report = ev.report();
        for line in [
            "    mann-whitney: post > pre, p = 0.000000097787 (needs < 0.02), shift +0.0985 [0.076, 0.121], mean ×1.5214 (allowed ×1.2), n = 40 pre / 12 post: FAIL\n",
            "      U = 480\n",
            "      pre  (newest 40 of 40): min 0.155, median 0.195, p90 0.21, max 0.229, mean 0.19275; newest 0.181 0.184 0.222 0.184 0.199 0.218 0.189 0.198\n",
            "      post (newest 12 of 12): min 0.248, median 0.293, p90 0.332, max 0.354, mean 0.29325; newest 0.332 0.248 0.316 0.293 0.272 0.354 0.313 0.257\n",
        ] {
            assert!(report.contains(line), "missing {line:?} in:\n{report}");
        }
    }
}
