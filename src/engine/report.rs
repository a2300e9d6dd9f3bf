//! What the watch actor reports: evidence documents and notifications.

use chrono::{DateTime, Utc};

use super::watch::WatchActor;
use crate::checks;
use crate::config::Probe;
use crate::evidence::{CheckEvidence, DeploymentFacts, Evidence, Link, TimelineEntry};
use crate::secret::redact_url;
use crate::sinks::{Alert, AlertKind};
use crate::store::ObservationRecord;

impl WatchActor {
    /// The evidence document of an observation as it stands (no verdict or action yet).
    pub(super) fn evidence_for(&self, obs: &ObservationRecord) -> Evidence {
        let mut links = Vec::new();
        if let Some(dep) = &obs.deployment_id {
            if let Some(url) = self.deployer.link(&self.target(), dep) {
                links.push(Link {
                    name: format!("deployment {dep}"),
                    url,
                });
            }
        }
        let checks = obs
            .tracker
            .checks
            .iter()
            .zip(&self.cfg.checks)
            .map(|(track, cfg)| {
                // Evidence is stored, served and sent: configured URLs go in redacted.
                let (kind, url, query) = match &cfg.probe {
                    Probe::Http { url, .. } => ("http", redact_url(url), None),
                    Probe::Prometheus { url, query, .. } => {
                        links.push(Link {
                            name: format!("graph of check {}", cfg.name),
                            url: graph_url(url, query, obs.deployed_at, obs.window_ends),
                        });
                        ("prometheus", redact_url(url), Some(query.clone()))
                    }
                    Probe::Scrape(s) => (
                        "scrape",
                        redact_url(&s.url),
                        Some(checks::scrape::describe(&s.mode, s.rate_window)),
                    ),
                };
                CheckEvidence {
                    kind: kind.into(),
                    url,
                    query,
                    track: track.clone(),
                }
            })
            .collect();
        let mut timeline = vec![
            TimelineEntry {
                at: obs.deployed_at,
                event: format!("deployment of {} ({})", obs.release, obs.source.as_str()),
            },
            TimelineEntry {
                at: obs.judging_from,
                event: "judging starts (after warmup)".into(),
            },
        ];
        if let Some(first_fail) = obs
            .tracker
            .checks
            .iter()
            .flat_map(|c| c.samples.iter().map(move |s| (c, s)))
            .filter(|(_, s)| matches!(s.outcome, crate::judge::Outcome::Fail { .. }))
            .min_by_key(|(_, s)| s.at)
        {
            timeline.push(TimelineEntry {
                at: first_fail.1.at,
                event: format!(
                    "first failed sample kept as evidence: check {}",
                    first_fail.0.name
                ),
            });
        }
        Evidence {
            schema: crate::evidence::SCHEMA,
            id: obs.id.clone(),
            watch: obs.watch.clone(),
            deployment: DeploymentFacts {
                release: obs.release.clone(),
                version: obs.version.clone(),
                deployment_id: obs.deployment_id.clone(),
                source: obs.source.as_str().into(),
                kind: obs.kind.as_str().into(),
                deployed_at: obs.deployed_at,
                judging_from: obs.judging_from,
                window_ends: obs.window_ends,
                rollback_safe: obs.rollback_safe,
            },
            verdict: None,
            checks,
            action: None,
            timeline,
            links,
        }
    }

    pub(super) fn save_evidence(&self, ev: &Evidence) {
        if let Err(e) = self.shared.store.save_evidence(ev) {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist evidence");
        }
    }

    /// Tells the watch's sinks.
    pub(super) fn alert(
        &self,
        kind: AlertKind,
        release: &str,
        summary: &str,
        evidence: Option<Evidence>,
    ) {
        if self.cfg.notify.is_empty() {
            return;
        }
        self.shared.sinks.send(
            &self.cfg.notify,
            &Alert {
                kind,
                watch: self.cfg.name.clone(),
                release: release.to_string(),
                summary: summary.to_string(),
                at: Utc::now(),
                evidence,
            },
        );
    }
}

/// A Prometheus graph of `query` over the observation, without the server's credentials.
fn graph_url(prom: &str, query: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let range = (to - from).num_seconds().max(60);
    reqwest::Url::parse_with_params(
        &format!("{prom}/graph"),
        &[
            ("g0.expr", query.to_string()),
            ("g0.tab", "0".to_string()),
            ("g0.range_input", format!("{range}s")),
            ("g0.end_input", to.format("%Y-%m-%d %H:%M:%S").to_string()),
        ],
    )
    .map(|u| redact_url(u.as_str()))
    .unwrap_or_else(|_| redact_url(prom))
}
