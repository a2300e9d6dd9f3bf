//! Which of a watch's checks can be replayed from history, and why the others cannot. Pure.
//!
//! Replayed: `prometheus` checks (every query is range-evaluated: the value, `min_traffic`,
//! `control_query`, `compare`'s samples, the baseline) and `alert` checks reading a
//! Prometheus (its `ALERTS` series). The rest are skipped, each with its reason, and the
//! replay runs on a copy of the watch without them: a check that never reports would make
//! every verdict inconclusive (it would lack `min_samples`).

use serde::Serialize;

use crate::config::{AlertSource, Probe, WatchConfig};

/// How a replayed check is read from history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replayed {
    /// Its query (and traffic, control, compare queries) over the observation.
    Prometheus,
    /// The `ALERTS` series matching its labels.
    Alerts,
}

/// A check left out of the replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Skipped {
    pub name: String,
    pub kind: &'static str,
    pub reason: &'static str,
}

/// A check in the replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Kept {
    pub name: String,
    pub kind: &'static str,
}

/// The watch's checks sorted into those replayed and those skipped.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The watch with only the replayed checks.
    pub watch: WatchConfig,
    pub replayed: Vec<Kept>,
    pub skipped: Vec<Skipped>,
}

/// The `kind` key of a probe.
pub fn kind(p: &Probe) -> &'static str {
    match p {
        Probe::Http { .. } => "http",
        Probe::Prometheus { .. } => "prometheus",
        Probe::Scrape(_) => "scrape",
        Probe::Alert(_) => "alert",
        Probe::Slo(_) => "slo",
    }
}

/// How a probe is replayed, or why it cannot be.
pub fn replayable(p: &Probe) -> Result<Replayed, &'static str> {
    match p {
        Probe::Prometheus { .. } => Ok(Replayed::Prometheus),
        Probe::Alert(a) => match a.source {
            AlertSource::Prometheus => Ok(Replayed::Alerts),
            AlertSource::Alertmanager => Err("Alertmanager keeps no history of alerts"),
        },
        Probe::Http { .. } => Err("needs the live service; a request now says nothing about then"),
        Probe::Scrape(_) => {
            Err("needs the live service; backstop scrapes it itself and no Prometheus keeps the series")
        }
        Probe::Slo(_) => Err(
            "its burn-rate windows grow with the time since the deployment, which a range query cannot evaluate",
        ),
    }
}

/// Sorts the watch's checks.
pub fn plan(watch: &WatchConfig) -> Plan {
    let mut kept = watch.clone();
    let mut replayed = Vec::new();
    let mut skipped = Vec::new();
    kept.checks.retain(|c| match replayable(&c.probe) {
        Ok(_) => {
            replayed.push(Kept {
                name: c.name.clone(),
                kind: kind(&c.probe),
            });
            true
        }
        Err(reason) => {
            skipped.push(Skipped {
                name: c.name.clone(),
                kind: kind(&c.probe),
                reason,
            });
            false
        }
    });
    Plan {
        watch: kept,
        replayed,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_checks_are_skipped_and_prometheus_ones_kept() {
        // health (http) and errors (prometheus).
        let w = crate::engine::lifecycle::test_config("");
        let p = plan(&w);
        assert_eq!(p.watch.checks.len(), 1);
        assert_eq!(p.watch.checks[0].name, "errors");
        assert_eq!(
            p.replayed,
            vec![Kept {
                name: "errors".into(),
                kind: "prometheus"
            }]
        );
        assert_eq!(p.skipped.len(), 1);
        assert_eq!(p.skipped[0].name, "health");
        assert!(p.skipped[0].reason.contains("live service"));
    }
}
