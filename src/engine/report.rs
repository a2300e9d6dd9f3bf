//! What the watch actor reports: evidence documents (built from the lifecycle's patches) and
//! notifications (through the outbox).

use chrono::{DateTime, Utc};

use super::lifecycle::{Effect, EvidencePatch};
use super::watch::WatchActor;
use crate::checks;
use crate::config::Probe;
use crate::evidence::{CheckEvidence, DeployFacts, DeploymentFacts, Evidence, Link, TimelineEntry};
use crate::model::{ObservationRecord, WatchRecord};
use crate::secret::redact_url;
use crate::sinks::Alert;
use crate::store::OutboxItem;

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
            .filter_map(|track| {
                // By name: a reload may have reordered the checks.
                let cfg = self.cfg.checks.iter().find(|c| c.name == track.name)?;
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
                Some(CheckEvidence {
                    kind: kind.into(),
                    url,
                    query,
                    track: track.clone(),
                })
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
                source: obs.source,
                kind: obs.kind,
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

    /// The durable parts of a transition: evidence documents with the patches applied, and
    /// the outbox items of its notifications (with their evidence attached).
    pub(super) fn durable_parts(
        &self,
        next: &WatchRecord,
        effects: &[Effect],
    ) -> (Vec<Evidence>, Vec<OutboxItem>) {
        let mut docs: Vec<Evidence> = Vec::new();
        for e in effects {
            let Effect::Evidence(p) = e else { continue };
            let pos = docs.iter().position(|d| d.id == p.observation_id);
            let mut doc = match pos {
                Some(i) => docs.remove(i),
                None => match self.shared.store.evidence(&p.observation_id).ok().flatten() {
                    Some(d) => d,
                    None => match p.observation.as_ref().or(next.observation.as_ref()) {
                        Some(o) if o.id == p.observation_id => self.evidence_for(o),
                        _ => continue,
                    },
                },
            };
            self.apply(&mut doc, p, next);
            docs.push(doc);
        }
        let outbox = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Notify(n) => Some(n),
                _ => None,
            })
            .map(|n| {
                let evidence = n.evidence.as_ref().and_then(|id| {
                    docs.iter()
                        .find(|d| &d.id == id)
                        .cloned()
                        .or_else(|| self.shared.store.evidence(id).ok().flatten())
                });
                OutboxItem {
                    id: n.id.clone(),
                    sinks: self.cfg.notify.clone(),
                    alert: Alert {
                        id: n.id.clone(),
                        kind: n.kind,
                        watch: self.cfg.name.clone(),
                        release: n.release.clone(),
                        summary: n.summary.clone(),
                        at: Utc::now(),
                        evidence,
                    },
                }
            })
            .collect();
        (docs, outbox)
    }

    /// Merges a patch into an evidence document.
    fn apply(&self, doc: &mut Evidence, p: &EvidencePatch, next: &WatchRecord) {
        if let Some(o) = &p.observation {
            let fresh = self.evidence_for(o);
            doc.checks = fresh.checks;
            doc.deployment = fresh.deployment;
            for l in fresh.links {
                if !doc.links.iter().any(|x| x.url == l.url) {
                    doc.links.push(l);
                }
            }
        }
        if let Some(v) = &p.verdict {
            doc.verdict = Some(v.clone());
        }
        if let Some(a) = &p.action {
            let mut a = a.clone();
            if let Some(old) = doc.action.as_ref() {
                a.command = a.command.or(old.command.clone());
            }
            doc.action = Some(a);
        }
        if let Some(d) = &p.deploy {
            let mut d = d.clone();
            d.deployer = self.deployer.name().to_string();
            if let Some(a) = doc.action.as_mut() {
                a.deploy = Some(d.clone());
            }
            self.deploy_links(doc, &d, next);
        }
        if let Some(c) = &p.command {
            if let Some(a) = doc.action.as_mut() {
                a.command = Some(c.clone());
            }
        }
        for (at, text) in &p.notes {
            doc.timeline.push(TimelineEntry {
                at: *at,
                event: text.clone(),
            });
        }
    }

    /// Links to the deployment and task an intent made.
    fn deploy_links(&self, doc: &mut Evidence, d: &DeployFacts, next: &WatchRecord) {
        let mut add = |name: String, url: String| {
            if !doc.links.iter().any(|l| l.url == url) {
                doc.links.push(Link { name, url });
            }
        };
        if let (Some(task), crate::deployer::Deployer::Octopus(c)) = (&d.task_id, &self.deployer) {
            let url = format!("{}/app#/{}/tasks/{task}", c.config().url, c.config().space);
            let url = redact_url(&url);
            add(format!("Octopus task {task}"), url);
        }
        if let Some(dep) = &d.deployment_id {
            if let Some(url) = self.deployer.link(&self.target(), dep) {
                let kind = next
                    .intent
                    .as_ref()
                    .map(|i| i.kind.as_str())
                    .unwrap_or("deployment");
                add(format!("{kind} deployment {dep}"), url);
            }
        }
    }

    /// Hands an outbox item to the sinks; marked delivered once every sink took it. One that
    /// some sink refused stays in the outbox and is sent again (same id) by [`Self::redeliver`].
    pub(super) fn deliver(&self, item: OutboxItem) {
        let store = self.shared.store.clone();
        let id = item.id.clone();
        let in_flight = self.in_flight.clone();
        {
            let mut set = in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if !set.insert(id.clone()) {
                return; // already on its way
            }
        }
        self.shared.sinks.send_then(&item.sinks, &item.alert, move |ok| {
            if ok {
                if let Err(e) = store.delivered(&id) {
                    tracing::warn!(error = %e, notification = %id, "cannot mark a notification delivered");
                }
            } else {
                tracing::warn!(notification = %id, "notification not taken by every sink; it stays in the outbox and is sent again");
            }
            in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        });
    }

    /// Notifications recorded and not delivered (before a crash, or refused by a sink): sent
    /// again, with the same id.
    pub(super) fn redeliver(&self) {
        match self.shared.store.undelivered(self.name()) {
            Ok(items) => {
                for item in items {
                    tracing::info!(watch = %self.name(), notification = %item.id, "delivering a notification from the outbox");
                    self.deliver(item);
                }
            }
            Err(e) => {
                tracing::error!(watch = %self.name(), error = %e, "cannot read the notification outbox")
            }
        }
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
