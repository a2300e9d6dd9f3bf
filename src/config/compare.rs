//! `compare = "mann-whitney"` and its keys (prometheus and scrape checks): the
//! post-deployment samples against the pre-deployment ones (see [`crate::judge::compare`]).

use std::time::Duration;

use super::fields::Table;
use super::CompareConfig;
use crate::judge::compare::{Compare, Direction, Method};

/// The keys that only mean something with `compare`.
pub(super) const KEYS: [&str; 6] = [
    "direction",
    "confidence",
    "allowed_increase",
    "allowed_decrease",
    "compare_min_samples",
    "step",
];

/// Parses `compare` and its keys. `interval` is the watch's: the default `step`; `prometheus`
/// says whether the check has a `step` (scrape checks are told so by the kind-key table).
/// Without `compare`, each of its keys is an error naming the key (it would silently do
/// nothing).
pub(super) fn compare(t: &Table, interval: Duration, prometheus: bool) -> Option<CompareConfig> {
    let Some(method) = t.string("compare") else {
        for key in KEYS {
            if t.has(key) && (prometheus || key != "step") {
                t.error(key, "has no effect without compare = \"mann-whitney\"");
                super::validate::consume(t, key);
            }
        }
        return None;
    };
    let method = match method.as_str() {
        "mann-whitney" => Some(Method::MannWhitney),
        other => {
            t.error(
                "compare",
                format!("unknown comparison {other:?}; expected \"mann-whitney\""),
            );
            None
        }
    };
    let direction = match t.string("direction").as_deref() {
        None | Some("increase") => Direction::Increase,
        Some("decrease") => Direction::Decrease,
        Some("either") => Direction::Either,
        Some(other) => {
            t.error(
                "direction",
                format!("expected \"increase\", \"decrease\" or \"either\", found {other:?}"),
            );
            Direction::Increase
        }
    };
    let confidence = bounded(
        t,
        "confidence",
        0.98,
        |v| v > 0.5 && v < 1.0,
        "between 0.5 and 1, exclusive (0.98: significant when p < 0.02)",
    );
    let allowed_increase = bounded(
        t,
        "allowed_increase",
        1.2,
        |v| v >= 1.0,
        "at least 1 (1.2: a rise under 20% is not a failure)",
    );
    let allowed_decrease = bounded(
        t,
        "allowed_decrease",
        0.8,
        |v| (0.0..=1.0).contains(&v),
        "between 0 and 1 (0.8: a fall under 20% is not a failure)",
    );
    let min_samples = t.count("compare_min_samples").unwrap_or(10);
    if min_samples < 2 {
        t.error(
            "compare_min_samples",
            "must be at least 2: one sample has no distribution",
        );
    }
    // The step is the query_range resolution (prometheus only: a scrape check compares its
    // own scrapes); the duration parser already refuses zero.
    let step = if prometheus {
        t.duration("step").unwrap_or(interval)
    } else {
        interval
    };
    Some(CompareConfig {
        rule: Compare {
            method: method?,
            direction,
            confidence,
            allowed_increase,
            allowed_decrease,
            min_samples: min_samples.max(2),
            overlap: 1.0,
        },
        step,
    })
}

/// A number in range, else an error naming the key and the default.
fn bounded(t: &Table, key: &str, default: f64, ok: impl Fn(f64) -> bool, range: &str) -> f64 {
    match t.number(key) {
        None => default,
        Some(v) if ok(v) => v,
        Some(v) => {
            t.error(key, format!("{v} is out of range: must be {range}"));
            default
        }
    }
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
