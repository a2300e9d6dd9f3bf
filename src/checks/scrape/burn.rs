//! The pure part of slo checks over scrapes: how many good and total events each burn window
//! holds, from a collector's history. The windows and the verdict are [`crate::judge::burn`]'s,
//! the same as for the PromQL form; only where the counts come from differs.
//!
//! The collector records `good` and `total` as a ratio's numerator and denominator (see
//! [`super::collected`]), so each point holds both counters' increases since the previous
//! successful scrape, per series and then summed: a counter reset (the process restarted)
//! counts its new value, a series that appears late counts from its first value, exactly as
//! for `mode = "ratio"`.
//!
//! A window's counts run from the newest successful scrape at or before its start to the
//! newest scrape: the window is rounded out to whole scrapes. A short window of 1 s under a
//! 2 s scrape period thus spans the last two scrapes instead of holding one (where
//! Prometheus' `increase()` would have no answer, and every early sample would be an error).
//! The caller passes only the scrapes taken since the deployment, so no window reaches before
//! it: the first of them is where the long window starts, and its own increase (which spans
//! the deployment) is left out.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::maths::{fresh, Measure, Point, ScrapeError};
use crate::judge::burn::{BurnReading, WindowCounts, Windows};

/// Where `good` and `total` are in a point of an slo check's collector (the ratio's
/// numerator and denominator).
const GOOD: usize = 0;
const TOTAL: usize = 1;

/// An slo sample at `now` from `points` (the scrapes since the deployment, oldest first): the
/// counts of both windows. The newest scrape must be at most two `interval`s old and
/// successful, as a scrape check's value must.
pub fn reading(
    points: &[Point],
    now: DateTime<Utc>,
    interval: Duration,
    objective: f64,
    windows: Windows,
) -> Result<BurnReading, ScrapeError> {
    fresh(points, now, interval)?;
    if let Some(Err(e)) = points.last().map(|p| &p.measures) {
        return Err(e.clone());
    }
    Ok(BurnReading {
        objective,
        long: counts(points, windows.long)?,
        short: counts(points, windows.short)?,
    })
}

/// The good and total events over `window` ending at the newest successful point: the
/// increases of the points after the newest successful one at or before the window's start
/// (or after the oldest, when the window reaches further back). A point whose increase is
/// unknown (the first scrape, or the first after backstop restarted) cannot be counted
/// across, so the window starts there at the latest. Fewer than two usable points is an
/// error: nothing was counted, which is not the same as no traffic.
pub fn counts(points: &[Point], window: Duration) -> Result<WindowCounts, ScrapeError> {
    let ok: Vec<(DateTime<Utc>, &[Measure])> = points
        .iter()
        .filter_map(|p| p.measures.as_ref().ok().map(|m| (p.at, m.as_slice())))
        .collect();
    let Some(&(end, _)) = ok.last() else {
        return Err(ScrapeError::NotYet);
    };
    let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    let rounded_out = ok.iter().rposition(|(at, _)| *at <= start).unwrap_or(0);
    let known_from = ok
        .iter()
        .rposition(|(_, m)| m.iter().any(|m| m.increase.is_none()))
        .unwrap_or(0);
    let from = rounded_out.max(known_from);
    if from + 1 >= ok.len() {
        return Err(ScrapeError::TooFewScrapes(window));
    }
    let sum = |i: usize| -> f64 {
        ok[from + 1..]
            .iter()
            .map(|(_, m)| m.get(i).and_then(|m| m.increase).unwrap_or(0.0))
            .sum()
    };
    Ok(WindowCounts {
        window_secs: window.as_secs(),
        good: sum(GOOD),
        total: sum(TOTAL),
    })
}

#[cfg(test)]
#[path = "burn_tests.rs"]
mod tests;
