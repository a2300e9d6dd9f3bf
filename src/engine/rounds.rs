//! One sample round's I/O: baselines still missing and every check, concurrently.

use chrono::{DateTime, Utc};

use super::lifecycle::{CheckResult, RoundResult};
use super::watch::WatchActor;
use crate::checks;

impl WatchActor {
    pub(super) async fn round(&self, scheduled: DateTime<Utc>) -> RoundResult {
        let Some(obs) = &self.record.observation else {
            return RoundResult {
                scheduled,
                checks: Vec::new(),
            };
        };
        let http = &self.shared.http;
        let since = obs.deployed_at;
        let results = futures_util::future::join_all(self.cfg.checks.iter().map(|c| {
            let collector = self
                .collectors
                .iter()
                .find(|(n, _)| *n == c.name)
                .and_then(|(_, col)| col.as_ref());
            let need = c.rules.iter().any(|r| r.needs_baseline())
                && obs
                    .tracker
                    .checks
                    .iter()
                    .find(|t| t.name == c.name)
                    .is_none_or(|t| t.baseline.is_none());
            async move {
                let baseline = if need {
                    Some(
                        checks::baseline(http, &c.probe, since, collector)
                            .await
                            .map_err(|e| e.to_string()),
                    )
                } else {
                    None
                };
                let reading = checks::sample(http, &c.probe, collector, since)
                    .await
                    .map_err(|e| e.to_string());
                if let Err(reason) = &reading {
                    tracing::debug!(watch = %self.cfg.name, check = %c.name, %reason, "check error");
                }
                CheckResult { name: c.name.clone(), baseline, reading }
            }
        }))
        .await;
        RoundResult {
            scheduled,
            checks: results,
        }
    }
}
