//! `kind = "slo"` checks: the objective, the good and total queries with their `$window`
//! placeholder, the allowed burn rate and the cap of the long window.

use std::time::Duration;

use super::fields::Table;
use super::{Probe, SloProbe};
use crate::judge::Rule;

/// The placeholder backstop replaces with each window (`240s`) in `good` and `total`.
pub const WINDOW: &str = "$window";

/// The SRE workbook's page threshold: 2% of a 30-day budget spent in one hour.
const DEFAULT_BURN_RATE: f64 = 14.4;

/// The SRE workbook's long window for that threshold.
const DEFAULT_LONG_WINDOW: Duration = Duration::from_secs(3600);

/// Parses the slo-specific keys of a check; `url` and `timeout` are already read. The rule is
/// the allowed burn rate (no threshold keys: those are reported as misplaced).
pub(super) fn slo(t: &Table, url: Option<String>, timeout: Duration) -> (Option<Probe>, Vec<Rule>) {
    let objective = match t.number("objective") {
        Some(o) if o > 0.0 && o < 1.0 => Some(o),
        Some(o) => {
            t.error(
                "objective",
                format!("{o} is not between 0 and 1 (exclusive): the share of good events, e.g. 0.999 for 99.9%"),
            );
            None
        }
        None => {
            if !t.has("objective") {
                t.error(
                    "objective",
                    "is required: the share of events that must be good, e.g. 0.999 for 99.9%",
                );
            }
            None
        }
    };
    let good = query(t, "good");
    let total = query(t, "total");
    let burn_rate = match t.number("burn_rate") {
        None => DEFAULT_BURN_RATE,
        Some(b) if b > 0.0 && b.is_finite() => b,
        Some(b) => {
            t.error(
                "burn_rate",
                format!("{b} must be greater than zero: how many times faster than the objective allows the budget may burn"),
            );
            DEFAULT_BURN_RATE
        }
    };
    // A burn rate of 1 / (1 - objective) or more means every event failing, which no sample
    // can exceed: the check could never fail.
    if let Some(o) = objective {
        let most = 1.0 / (1.0 - o);
        if burn_rate > most * (1.0 + 1e-9) {
            t.error(
                "burn_rate",
                format!(
                    "{burn_rate} can never be reached with objective {o}: even 100% errors burn the budget only {}x too fast",
                    crate::judge::num(most)
                ),
            );
        }
    }
    let long_window = match t.duration("long_window") {
        None => DEFAULT_LONG_WINDOW,
        Some(w) if w >= crate::judge::burn::MIN_WINDOW => w,
        Some(_) => {
            t.error(
                "long_window",
                "must be at least 1s: Prometheus needs two samples in a window to compute an increase",
            );
            DEFAULT_LONG_WINDOW
        }
    };
    let probe = match (url, objective, good, total) {
        (Some(url), Some(objective), Some(good), Some(total)) => Some(Probe::Slo(SloProbe {
            url: url.trim_end_matches('/').to_string(),
            objective,
            good,
            total,
            long_window,
            timeout,
        })),
        _ => None,
    };
    (probe, vec![Rule::BurnRate(burn_rate)])
}

/// `good` / `total`: required, must use `$window`, and must be valid PromQL once it is
/// replaced (parsed here, so a typo is a config error, not a round of errors).
fn query(t: &Table, key: &str) -> Option<String> {
    let q = t.required_string(key)?;
    if !q.contains(WINDOW) {
        t.error(
            key,
            format!(
                "must use {WINDOW} as its range, e.g. sum(increase(http_requests_total[{WINDOW}])): backstop substitutes each window, clipped to the deployment"
            ),
        );
        return None;
    }
    match crate::judge::lookback::lookback(&with_window(&q, Duration::from_secs(60))) {
        Ok(_) => Some(q),
        Err(e) => {
            t.error(
                key,
                format!("is not valid PromQL (with {WINDOW} = 60s): {e}"),
            );
            None
        }
    }
}

/// The query with its window substituted, in whole seconds.
pub fn with_window(query: &str, window: Duration) -> String {
    query.replace(WINDOW, &format!("{}s", window.as_secs()))
}
