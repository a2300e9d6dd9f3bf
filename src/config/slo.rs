//! `kind = "slo"` checks: the objective, the good and total events (PromQL with a `$window`
//! placeholder, or scrape selections backstop counts itself), the allowed burn rate and the
//! cap of the long window.

use std::time::Duration;

use super::fields::Table;
use super::{Probe, SeriesSelector, SloEvents, SloProbe};
use crate::judge::Rule;

/// The placeholder backstop replaces with each window (`240s`) in `good` and `total`.
pub const WINDOW: &str = "$window";

/// The SRE workbook's page threshold: 2% of a 30-day budget spent in one hour.
const DEFAULT_BURN_RATE: f64 = 14.4;

/// The SRE workbook's long window for that threshold.
const DEFAULT_LONG_WINDOW: Duration = Duration::from_secs(3600);

/// Parses the slo-specific keys of a check; `url` and `timeout` are already read. The rule is
/// the allowed burn rate (no threshold keys: those are reported as misplaced). `unreachable`
/// is read by the caller; it only means something when backstop scrapes the service.
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
    let events = events(t);
    if matches!(events, Some(SloEvents::Query { .. })) && t.has("unreachable") {
        t.error(
            "unreachable",
            "only applies when good and total are scrape selections: a Prometheus not answering is always an error, never the application's failure",
        );
        super::validate::consume(t, "unreachable");
    }
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
    let probe = match (url, objective, events) {
        (Some(url), Some(objective), Some(events)) => Some(Probe::Slo(SloProbe {
            url: url.trim_end_matches('/').to_string(),
            objective,
            events,
            long_window,
            timeout,
        })),
        _ => None,
    };
    (probe, vec![Rule::BurnRate(burn_rate)])
}

/// One of `good` and `total` as given: a PromQL string or a scrape selection (a table);
/// `None` inside when that form is invalid (already reported).
enum Side {
    Query(Option<String>),
    Series(Option<SeriesSelector>),
}

impl Side {
    fn form(&self) -> &'static str {
        match self {
            Side::Query(_) => "a PromQL string",
            Side::Series(_) => "a scrape selection (a table)",
        }
    }
}

/// `good` and `total`: both PromQL over `$window` (`url` is a Prometheus) or both scrape
/// selections (`url` is the service's `/metrics`). One of each is an error: the two counts
/// must come from the same place to be divided.
fn events(t: &Table) -> Option<SloEvents> {
    let good = side(t, "good");
    let total = side(t, "total");
    match (good?, total?) {
        (Side::Query(good), Side::Query(total)) => Some(SloEvents::Query {
            good: good?,
            total: total?,
        }),
        (Side::Series(good), Side::Series(total)) => {
            let (good, total) = (good?, total?);
            if good == total {
                t.error(
                    "total",
                    "selects the same series as good: no event could ever be bad; select every event in total and the good ones in good, e.g. labels = { code = { not_regex = \"5..\" } }",
                );
                return None;
            }
            Some(SloEvents::Scrape { good, total })
        }
        (good, total) => {
            t.error(
                "total",
                format!(
                    "is {} but good is {}: give both as PromQL over {WINDOW} (url is then the Prometheus) or both as scrape selections such as {{ metric = \"http_requests_total\" }} (url is then the service's /metrics)",
                    total.form(),
                    good.form()
                ),
            );
            None
        }
    }
}

/// `good` or `total`, required, in either form.
fn side(t: &Table, key: &str) -> Option<Side> {
    if let Some(sub) = t.table_if_table(key) {
        let s = super::scrape::selector(&sub);
        sub.finish();
        return Some(Side::Series(s));
    }
    if !t.has(key) {
        t.error(
            key,
            format!("is required: PromQL counting the events over {WINDOW}, e.g. sum(increase(http_requests_total[{WINDOW}])), or a scrape selection such as {{ metric = \"http_requests_total\" }}"),
        );
        return None;
    }
    Some(Side::Query(query(t, key)))
}

/// `good` / `total` as PromQL: must use `$window`, and must be valid PromQL once it is
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
