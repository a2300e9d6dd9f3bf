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
use crate::sinks::{Alert, Delivered};
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
                    Probe::Alert(a) => {
                        let page = match a.source {
                            crate::config::AlertSource::Prometheus => "alerts",
                            crate::config::AlertSource::Alertmanager => "#/alerts",
                        };
                        links.push(Link {
                            name: format!("alerts of check {}", cfg.name),
                            url: redact_url(&format!("{}/{page}", a.url)),
                        });
                        ("alert", redact_url(&a.url), Some(alert_description(a)))
                    }
                    Probe::Slo(s) => ("slo", redact_url(&s.url), Some(slo_description(s))),
                };
                Some(CheckEvidence {
                    kind: kind.into(),
                    url,
                    query,
                    control: cfg.control.as_ref().map(control_description),
                    track: track.clone(),
                    // Seeded with the tracker's samples; `apply` extends it each round.
                    series: track.samples.iter().cloned().collect(),
                    before: None,
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
                failure: obs.failure.clone(),
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
    pub(super) async fn durable_parts(
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
                None => match self.committed_evidence(&p.observation_id).await {
                    Ok(Some(d)) => d,
                    Ok(None) => match p.observation.as_ref().or(next.observation.as_ref()) {
                        Some(o) if o.id == p.observation_id => self.evidence_for(o),
                        _ => continue,
                    },
                    // A document that cannot be read now is kept as it is: writing a fresh one
                    // over it would lose its verdict, action and timeline. This patch is lost
                    // instead (the next round's brings the samples again).
                    Err(e) => {
                        tracing::error!(
                            watch = %self.cfg.name,
                            observation = %p.observation_id,
                            "evidence not updated: the stored document could not be read: {e}"
                        );
                        continue;
                    }
                },
            };
            self.apply(&mut doc, p, next);
            docs.push(doc);
        }
        let mut outbox = Vec::new();
        for n in effects.iter().filter_map(|e| match e {
            Effect::Notify(n) => Some(n),
            _ => None,
        }) {
            let evidence = match n.evidence.as_ref() {
                None => None,
                Some(id) => match docs.iter().find(|d| &d.id == id) {
                    Some(d) => Some(d.clone()),
                    // The committed document (in memory when this actor has it).
                    None => self.committed_evidence(id).await.ok().flatten(),
                },
            }
            .map(crate::evidence::Evidence::for_notification);
            let alert = Alert {
                id: n.id.clone(),
                kind: n.kind,
                watch: self.cfg.name.clone(),
                release: n.release.clone(),
                summary: n.summary.clone(),
                at: Utc::now(),
                evidence,
            };
            // One outbox row per sink: one that is down is retried alone.
            let sinks: std::collections::BTreeSet<&String> = self.cfg.notify.iter().collect();
            outbox.extend(sinks.into_iter().map(|sink| OutboxItem {
                id: format!("{}@{sink}", n.id),
                sinks: vec![sink.clone()],
                alert: alert.clone(),
            }));
        }
        (docs, outbox)
    }

    /// The stored evidence document (without its series) of an observation: the one this
    /// actor last committed when it has it, else read from the store.
    async fn committed_evidence(
        &self,
        id: &str,
    ) -> Result<Option<Evidence>, crate::store::StoreError> {
        match &self.evidence_doc {
            Some(d) if d.id == id => Ok(Some((**d).clone())),
            _ => {
                let id = id.to_string();
                self.shared
                    .store
                    .blocking(move |s| s.evidence_body(&id))
                    .await
            }
        }
    }

    /// Merges a patch into an evidence document.
    fn apply(&self, doc: &mut Evidence, p: &EvidencePatch, next: &WatchRecord) {
        if let Some(o) = &p.observation {
            let mut fresh = self.evidence_for(o);
            crate::series::carry(&doc.checks, &mut fresh.checks, &p.before);
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

    /// Hands an outbox item (one sink) to the sinks. Taken: marked delivered. Refused for good
    /// (4xx): dropped, loudly. Not taken after the sink's retries: kept, and sent again (same
    /// id) by [`Self::redeliver`] after a backoff that doubles from 30s to an hour.
    pub(super) fn deliver(&self, item: OutboxItem) {
        if !self.may_act() {
            // Fenced: the item stays in the outbox for the watch's owner to send.
            return;
        }
        let store = self.shared.store.clone();
        let id = item.id.clone();
        let outbox = self.shared.outbox.clone();
        {
            let mut st = outbox.lock().unwrap_or_else(|e| e.into_inner());
            let waiting = st
                .backoff
                .get(&id)
                .is_some_and(|(_, at)| *at > std::time::Instant::now());
            if waiting || !st.in_flight.insert(id.clone()) {
                return; // on its way, or not due yet
            }
        }
        let (leases, watch, epoch) = (
            self.shared.leases.clone(),
            self.cfg.name.clone(),
            self.epoch,
        );
        let gate: crate::sinks::Gate =
            std::sync::Arc::new(move || leases.may_act_as(&watch, epoch));
        self.shared.sinks.send_gated(&item.sinks, &item.alert, gate, move |how| {
            let mut st = outbox.lock().unwrap_or_else(|e| e.into_inner());
            st.in_flight.remove(&id);
            let done = match how {
                Delivered::Taken => true,
                Delivered::GiveUp => {
                    tracing::error!(notification = %id, "a sink refused the notification for good; it is dropped");
                    true
                }
                Delivered::Retry => {
                    let rounds = st.backoff.get(&id).map_or(0, |(n, _)| *n) + 1;
                    let wait = std::time::Duration::from_secs(30)
                        .saturating_mul(1 << rounds.min(7))
                        .min(std::time::Duration::from_secs(3600));
                    tracing::warn!(notification = %id, retry_in = ?wait, "notification not taken; it stays in the outbox");
                    st.backoff.insert(id.clone(), (rounds, std::time::Instant::now() + wait));
                    false
                }
            };
            if done {
                st.backoff.remove(&id);
                drop(st);
                if let Err(e) = store.in_place(|s| s.delivered(&id)) {
                    tracing::warn!(error = %e, notification = %id, "cannot mark a notification delivered");
                }
            }
        });
    }

    /// Notifications recorded and not delivered (before a crash, or refused by a sink): sent
    /// again, with the same id.
    pub(super) async fn redeliver(&self) {
        let name = self.name().to_string();
        match self
            .shared
            .store
            .blocking(move |s| s.undelivered(&name))
            .await
        {
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

/// What an slo check counts: its objective, good and total (PromQL over `$window`, or the
/// scrape selections as PromQL selectors) and the cap of its long window.
fn slo_description(s: &crate::config::SloProbe) -> String {
    let (good, total) = match &s.events {
        crate::config::SloEvents::Query { good, total } => (good.clone(), total.clone()),
        crate::config::SloEvents::Scrape { good, total } => (
            checks::scrape::selector_text(good),
            checks::scrape::selector_text(total),
        ),
    };
    format!(
        "objective {}%, good {good} / total {total}, long window up to {}",
        crate::judge::num(s.objective * 100.0),
        humantime::format_duration(s.long_window)
    )
}

/// What a check's control is: its query, the Prometheus answering it (redacted) and the
/// tolerance, so a reader of the evidence sees what a failure was compared with.
fn control_description(c: &crate::config::ControlConfig) -> String {
    format!(
        "{} at {}, tolerance {}",
        c.query,
        redact_url(&c.url),
        crate::judge::num(c.tolerance)
    )
}

/// What an alert check asks, for the evidence: `prometheus alerts matching {service="shop"}`,
/// and whether muted alerts count.
fn alert_description(a: &crate::config::AlertProbe) -> String {
    let labels: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    let muted = match (a.source, a.include_silenced) {
        (crate::config::AlertSource::Prometheus, _) => "",
        (_, false) => "; silenced and inhibited alerts ignored",
        (_, true) => "; silenced and inhibited alerts count (include_silenced)",
    };
    format!(
        "{} alerts matching {{{}}}{muted}",
        a.source.as_str(),
        labels.join(", ")
    )
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{control_description, slo_description};
    use crate::config::{ControlConfig, LabelMatch, SeriesSelector, SloEvents, SloProbe};

    fn slo(events: SloEvents) -> SloProbe {
        SloProbe {
            url: "http://app:8080/metrics".into(),
            objective: 0.999,
            events,
            long_window: Duration::from_secs(3600),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn an_slo_over_scrapes_is_described_like_one_over_promql() {
        let total = SeriesSelector {
            metric: "http_requests_total".into(),
            labels: Default::default(),
        };
        let mut good = total.clone();
        good.labels.insert(
            "code".into(),
            LabelMatch::NotRe(LabelMatch::anchored("5..").unwrap()),
        );
        assert_eq!(
            slo_description(&slo(SloEvents::Scrape { good, total })),
            r#"objective 99.9%, good http_requests_total{code!~"5.."} / total http_requests_total, long window up to 1h"#
        );
        assert_eq!(
            slo_description(&slo(SloEvents::Query {
                good: "sum(increase(ok_total[$window]))".into(),
                total: "sum(increase(all_total[$window]))".into(),
            })),
            "objective 99.9%, good sum(increase(ok_total[$window])) / total sum(increase(all_total[$window])), long window up to 1h"
        );
    }

    #[test]
    fn a_control_is_described_with_its_server_redacted() {
        let c = ControlConfig {
            query: "max(world_latency_seconds)".into(),
            url: "http://user:s3cr3t@prom-us:9090".into(),
            tolerance: 0.5,
            baseline_window: Duration::from_secs(600),
            timeout: Duration::from_secs(1),
        };
        assert_eq!(
            control_description(&c),
            "max(world_latency_seconds) at http://***@prom-us:9090/, tolerance 0.5"
        );
    }
}
