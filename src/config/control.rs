//! `control_query` and its keys (prometheus and scrape checks): the same signal for something
//! this deployment did not touch, so a failure the whole world shares is not blamed on the
//! release (see `engine::lifecycle::control`).

use super::fields::Table;
use super::{ControlConfig, Probe};

/// The keys that only mean something with `control_query`.
const KEYS: [&str; 2] = ["control_url", "control_tolerance"];

/// The default `control_tolerance`: the control must have moved at least half as far as the
/// check (on a log scale) to excuse it.
pub const DEFAULT_TOLERANCE: f64 = 0.5;

/// Parses `control_query`, `control_url` and `control_tolerance` of a prometheus or scrape
/// check (`scrape` says which) whose probe is `probe` (`None` when the probe itself was
/// invalid: the control's keys are still checked). The control's baseline covers the check's
/// own `baseline_window` (defaulted when `control_query` is set).
pub(super) fn control(t: &Table, scrape: bool, probe: Option<&Probe>) -> Option<ControlConfig> {
    let Some(query) = t.string("control_query") else {
        for key in KEYS {
            if t.has(key) {
                t.error(key, "has no effect without control_query");
                super::validate::consume(t, key);
            }
        }
        return None;
    };
    // Parsed here, so a typo is a config error, not a round of unexcused failures.
    let query = match crate::judge::lookback::lookback(&query) {
        Ok(_) => Some(query),
        Err(e) => {
            t.error("control_query", format!("is not valid PromQL: {e}"));
            None
        }
    };
    let own_url = match probe {
        Some(Probe::Prometheus { url, .. }) => Some(url.clone()),
        _ => None,
    };
    let url = if t.has("control_url") || scrape {
        if !t.has("control_url") {
            t.error(
                "control_url",
                "is required with control_query on a scrape check: the Prometheus that answers the control query (a scrape check has none of its own)",
            );
            None
        } else {
            super::validate::http_url(t, "control_url")
        }
    } else {
        own_url
    };
    let tolerance = match t.number("control_tolerance") {
        None => DEFAULT_TOLERANCE,
        Some(v) if (0.0..1.0).contains(&v) => v,
        Some(v) => {
            t.error(
                "control_tolerance",
                format!("{v} is outside [0, 1): 0 asks the control to have moved as far as the check, 1 would excuse any move"),
            );
            DEFAULT_TOLERANCE
        }
    };
    let (timeout, baseline_window) = match probe {
        Some(Probe::Prometheus {
            timeout,
            baseline_window,
            ..
        }) => (*timeout, *baseline_window),
        Some(Probe::Scrape(s)) => (s.timeout, s.baseline_window),
        _ => return None,
    };
    Some(ControlConfig {
        query: query?,
        url: url?,
        tolerance,
        baseline_window: baseline_window?,
        timeout,
    })
}

#[cfg(test)]
#[path = "control_tests.rs"]
mod tests;
