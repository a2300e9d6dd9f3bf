//! Notification sinks (`[notify.NAME]`): every decision reaches humans through Slack-compatible
//! webhooks, generic JSON webhooks and Alertmanager.
//!
//! [`Sinks::send`] never blocks its caller (a watch actor in the middle of a decision): it
//! spawns one delivery task per named sink on the daemon's [`TaskTracker`], and each delivery
//! retries transient failures with capped backoff (`delivery`). Payloads are built by one file
//! per kind, as pure functions of the [`Alert`]: `slack`, `webhook`, `alertmanager`.

mod alertmanager;
mod delivery;

pub use delivery::Gate;
mod slack;
mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::SinkConfig;
use crate::evidence::Evidence;
use crate::metrics::Metrics;
use crate::secret::Secret;
use crate::text::truncate;

use delivery::{DeliveryError, Request};

/// What happened. Closed set; snake_case names appear in payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    Condemned,
    RolledBack,
    RollbackFailed,
    /// A deploy call may have landed but could not be confirmed: a human must look.
    RollbackUnknown,
    /// Two deployments carry one intent's marker: backstop deployed twice.
    DuplicateDeployment,
    /// A newer deployment by someone else replaced the condemned one; no deploy was made.
    Superseded,
    Inconclusive,
    Frozen,
    Paused,
    /// A deployment itself failed (its task ended Failed, TimedOut or Canceled), whatever the
    /// policy does about it; also sent when a failed deployment's service proved healthy.
    DeployFailed,
}

impl AlertKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertKind::Condemned => "condemned",
            AlertKind::RolledBack => "rolled_back",
            AlertKind::RollbackFailed => "rollback_failed",
            AlertKind::RollbackUnknown => "rollback_unknown",
            AlertKind::DuplicateDeployment => "duplicate_deployment",
            AlertKind::Superseded => "superseded",
            AlertKind::Inconclusive => "inconclusive",
            AlertKind::Frozen => "frozen",
            AlertKind::Paused => "paused",
            AlertKind::DeployFailed => "deploy_failed",
        }
    }
}

/// How a notification's delivery ended, best first (the worst of several sinks wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Delivered {
    /// Taken (or the sink is no longer configured: nothing to deliver to).
    Taken,
    /// The sink refused the payload (4xx) or it could not be built: retrying cannot help.
    GiveUp,
    /// Not taken after the sink's own retries (down, 5xx, timeouts): try again later.
    Retry,
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Stable across redeliveries after a crash: receivers deduplicate on it.
    pub id: String,
    pub kind: AlertKind,
    pub watch: String,
    pub release: String,
    /// One line for humans.
    pub summary: String,
    pub at: DateTime<Utc>,
    pub evidence: Option<Evidence>,
}

/// The configured sinks. Cheap to clone; clones share the configuration.
#[derive(Clone)]
pub struct Sinks {
    config: Arc<RwLock<BTreeMap<String, SinkConfig>>>,
    http: reqwest::Client,
    metrics: Metrics,
    tasks: TaskTracker,
}

impl Sinks {
    /// Deliveries are spawned on `tasks`, so the daemon's shutdown waits for those in flight.
    pub fn new(
        config: &BTreeMap<String, SinkConfig>,
        http: reqwest::Client,
        metrics: Metrics,
        tasks: TaskTracker,
    ) -> Self {
        Sinks {
            config: Arc::new(RwLock::new(config.clone())),
            http,
            metrics,
            tasks,
        }
    }

    /// Swaps in a reloaded configuration. Deliveries already started keep the old one.
    pub fn reconfigure(&self, config: &BTreeMap<String, SinkConfig>) {
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config.clone();
    }

    /// Delivers `alert` to the named sinks in the background; never blocks the caller. Names
    /// without a `[notify.NAME]` (possible only across a reload) are logged and skipped.
    /// Must be called inside the tokio runtime.
    pub fn send(&self, names: &[String], alert: &Alert) {
        self.send_then(names, alert, |_| {});
    }

    /// Like [`Sinks::send`], and calls `done` once every named sink's delivery has ended, with
    /// the worst of their results: the outbox keeps an alert to [`Delivered::Retry`] later, and
    /// drops one that was taken or that a sink refused for good.
    pub fn send_then(
        &self,
        names: &[String],
        alert: &Alert,
        done: impl FnOnce(Delivered) + Send + 'static,
    ) {
        self.send_gated(names, alert, Arc::new(|| true), done);
    }

    /// Like [`Sinks::send_then`], asking `gate` before every attempt (and retry) whether this
    /// node may still send for the watch: a fleet node frozen past its lease must not send
    /// after it wakes, not even a retry of a delivery it had started.
    pub fn send_gated(
        &self,
        names: &[String],
        alert: &Alert,
        gate: delivery::Gate,
        done: impl FnOnce(Delivered) + Send + 'static,
    ) {
        let config = self.config.read().unwrap_or_else(|e| e.into_inner());
        let alert = Arc::new(alert.clone());
        // A name listed twice is one destination: tell it once.
        let names: BTreeSet<&String> = names.iter().collect();
        let mut jobs = Vec::new();
        for name in names {
            let Some(sink) = config.get(name) else {
                tracing::warn!(sink = %name, event = alert.kind.as_str(), watch = %alert.watch,
                    "no [notify.{name}] is configured; notification skipped");
                continue;
            };
            let job = Delivery {
                name: name.clone(),
                sink: sink.clone(),
                alert: alert.clone(),
            };
            let http = self.http.clone();
            let metrics = self.metrics.clone();
            // The span names the sink in the per-attempt retry messages too.
            let span = tracing::info_span!("notify", sink = %name, event = alert.kind.as_str());
            let gate = gate.clone();
            jobs.push(async move { job.run(&http, &metrics, &gate).await }.instrument(span));
        }
        self.tasks.spawn(async move {
            let results = futures_util::future::join_all(jobs).await;
            done(results.into_iter().max().unwrap_or(Delivered::Taken));
        });
    }
}

/// One alert on its way to one sink.
struct Delivery {
    name: String,
    sink: SinkConfig,
    alert: Arc<Alert>,
}

impl Delivery {
    /// Delivers with retries; how it ended.
    async fn run(
        self,
        http: &reqwest::Client,
        metrics: &Metrics,
        gate: &delivery::Gate,
    ) -> Delivered {
        let event = self.alert.kind.as_str();
        let (attempts, result) = match self.request() {
            Ok(req) => delivery::deliver(http, &req, gate).await,
            Err(e) => (0, Err(e)),
        };
        match &result {
            Ok(()) => tracing::info!(sink = %self.name, kind = self.kind(), event,
                watch = %self.alert.watch, release = %self.alert.release, attempts,
                "notification delivered"),
            Err(e) => tracing::warn!(sink = %self.name, kind = self.kind(), event,
                watch = %self.alert.watch, release = %self.alert.release, attempts, error = %e,
                "notification not delivered"),
        }
        metrics.notification(&self.name, event, result.is_ok());
        match result {
            Ok(()) => Delivered::Taken,
            Err(e) if e.is_retryable() => Delivered::Retry,
            Err(_) => Delivered::GiveUp,
        }
    }

    fn kind(&self) -> &'static str {
        match self.sink {
            SinkConfig::Slack { .. } => "slack",
            SinkConfig::Webhook { .. } => "webhook",
            SinkConfig::Alertmanager { .. } => "alertmanager",
        }
    }

    fn request(&self) -> Result<Request, DeliveryError> {
        let alert = &self.alert;
        Ok(match &self.sink {
            SinkConfig::Slack { url, timeout } => Request {
                url: url.clone(),
                headers: HeaderMap::new(),
                body: slack::payload(alert),
                timeout: *timeout,
            },
            SinkConfig::Webhook {
                url,
                headers,
                secret_headers,
                timeout,
            } => Request {
                url: Secret::new(url.as_str()),
                headers: webhook::headers(headers, secret_headers)?,
                body: webhook::payload(alert),
                timeout: *timeout,
            },
            SinkConfig::Alertmanager {
                url,
                labels,
                timeout,
            } => Request {
                url: Secret::new(alertmanager::endpoint(url)),
                headers: HeaderMap::new(),
                body: alertmanager::payload(alert, labels),
                timeout: *timeout,
            },
        })
    }
}

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_stable_names() {
        for (kind, name) in [
            (AlertKind::Condemned, "condemned"),
            (AlertKind::RolledBack, "rolled_back"),
            (AlertKind::RollbackFailed, "rollback_failed"),
            (AlertKind::Inconclusive, "inconclusive"),
            (AlertKind::Frozen, "frozen"),
            (AlertKind::Paused, "paused"),
            (AlertKind::DeployFailed, "deploy_failed"),
        ] {
            assert_eq!(kind.as_str(), name);
            assert_eq!(serde_json::to_value(kind).unwrap(), name);
        }
    }
}
