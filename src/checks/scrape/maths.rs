//! The pure part of scrape checks: the history of scrapes, and the values judged (gauge,
//! rate, ratio, histogram quantile, and the `min_traffic` rate) and their baseline (selecting
//! the series is [`super::select`]). Points in, numbers out; no I/O, no clock.
//!
//! Counters are differenced per series, between successive successful scrapes, before they
//! are summed: a series whose value went down restarted from zero (a process restart), so
//! its increase is its new value, as in Prometheus' `rate()`; a series that appears late
//! starts from its first value, so the gap before it counts nothing. Summing first and
//! differencing afterwards would turn one restarted series, or a new one, into a huge jump.
//!
//! A history can continue from points stored before a restart ([`History::resume`]); their
//! increases are kept, and the first scrape after the restart, having nothing to be
//! differenced against, starts a new run of known increases (a rate never spans the gap).
//!
//! Histogram buckets are counters too: each bucket series is differenced the same way, and
//! the increases are then summed per bound (`le`), as `sum by (le) (rate(x_bucket[w]))`.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::parse::Exposition;
use super::quantile::{bucket_quantile, merge, NoQuantile};
use super::select::{selector_text, Counts, Selected, Selection};
use crate::config::ScrapeMode;

/// Why a scrape check has no value. None of these condemn a release.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScrapeError {
    #[error("scrape failed: {0}")]
    Failed(String),
    /// The endpoint did not answer: connection refused or reset, or no answer in time.
    #[error("scrape failed: {reason}")]
    Unreachable { reason: String, timed_out: bool },
    #[error("scrape failed: no scrape yet")]
    NotYet,
    #[error("scrape failed: the newest scrape is {} old", humantime::format_duration(*.0))]
    Stale(Duration),
    #[error("series {series} is {value}, not a number")]
    NotANumber { series: String, value: f64 },
    #[error("no series matches {0}")]
    NoSeries(String),
    #[error("fewer than two successful scrapes in the last {}: a rate needs two", humantime::format_duration(*.0))]
    TooFewScrapes(Duration),
    #[error("no traffic: {series} did not increase over the last {}", humantime::format_duration(*.window))]
    NoTraffic { series: String, window: Duration },
    #[error("no successful scrape before the deployment to compute a baseline from (backstop has to scrape for baseline_window before a deployment)")]
    NoBaseline,
    /// The selected bucket series do not make a histogram a quantile can be read from.
    #[error("histogram {series} {problem}")]
    Histogram { series: String, problem: String },
}

/// What one scrape gave for one selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    /// Sum of the selected series.
    pub sum: f64,
    /// How many series were selected.
    pub series: usize,
    /// Counter increase since the previous successful scrape (summed over series); `None` for
    /// the first scrape, and for the first after a restart (series snapshots are not stored).
    pub increase: Option<f64>,
    /// Histogram selectors ([`super::select::Keep::Buckets`]) only: per finite bucket bound
    /// (`le`), the increase since the previous successful scrape summed over the series with
    /// that bound, sorted by bound. Empty for other selectors and for the first scrape.
    pub buckets: Vec<(f64, f64)>,
    /// Histogram selectors only: the increase of the `le="+Inf"` bucket (every observation),
    /// apart from `buckets` so that every field stays a finite number (serialisable as
    /// JSON). `None` when the scrape had no `+Inf` bucket, for other selectors and for the
    /// first scrape.
    pub inf_bucket: Option<f64>,
}

/// One scrape: per selection (in [`super::select::selections`] order) a measure, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub measures: Result<Vec<Measure>, ScrapeError>,
}

/// The scrapes of one check, newest last, bounded.
#[derive(Debug, Clone)]
pub struct History {
    points: VecDeque<Point>,
    capacity: usize,
    /// Selected series of the newest successful scrape, to difference the next one against.
    last: Option<Vec<Selected>>,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        History {
            points: VecDeque::new(),
            capacity: capacity.max(2),
            last: None,
        }
    }

    /// Records a scrape taken at `at`. A failed scrape (or one with a non-number selected)
    /// is kept as a gap; the next successful one is differenced against the last good one.
    pub fn record(
        &mut self,
        at: DateTime<Utc>,
        scrape: Result<&Exposition, ScrapeError>,
        selections: &[Selection],
    ) {
        let selected = scrape.and_then(|exp| {
            selections
                .iter()
                .map(|s| Selected::take(exp, s))
                .collect::<Result<Vec<_>, _>>()
        });
        let measures = selected.map(|cur| {
            let measures = cur
                .iter()
                .enumerate()
                .map(|(i, sel)| sel.measure(self.last.as_ref().and_then(|prev| prev.get(i))))
                .collect();
            self.last = Some(cur);
            measures
        });
        self.points.push_back(Point { at, measures });
        while self.points.len() > self.capacity {
            self.points.pop_front();
        }
    }

    /// A history that continues from `points` (stored before a restart, oldest first), keeping
    /// the newest `capacity`. The series snapshots are not stored, so the next scrape has
    /// nothing to be differenced against: its increase is unknown (`None`), like the first
    /// scrape's, and rates do not reach back across it (see [`value`]).
    pub fn resume(capacity: usize, points: Vec<Point>) -> Self {
        let mut h = History::new(capacity);
        let skip = points.len().saturating_sub(h.capacity);
        h.points = points.into_iter().skip(skip).collect();
        h
    }

    /// The points, oldest first.
    pub fn points(&mut self) -> &[Point] {
        self.points.make_contiguous()
    }
}

/// The points worth keeping at `now`: taken within `keep` before it, oldest first. A point
/// stamped after `now` (the clock was set back since it was taken) is dropped: the history
/// must stay in time order.
pub fn recent(mut points: Vec<Point>, now: DateTime<Utc>, keep: Duration) -> Vec<Point> {
    let from = now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    points.retain(|p| p.at >= from && p.at <= now);
    points.sort_by_key(|p| p.at);
    points
}

/// The value judged now: that of the newest scrape, which must be recent (at most two
/// intervals old) and successful.
pub fn current(
    points: &[Point],
    now: DateTime<Utc>,
    interval: Duration,
    mode: &ScrapeMode,
    rate_window: Duration,
) -> Result<f64, ScrapeError> {
    fresh(points, now, interval)?;
    value(points, mode, rate_window)
}

/// The newest scrape exists and is at most two intervals old.
pub(super) fn fresh(
    points: &[Point],
    now: DateTime<Utc>,
    interval: Duration,
) -> Result<(), ScrapeError> {
    let last = points.last().ok_or(ScrapeError::NotYet)?;
    let age = (now - last.at).to_std().unwrap_or(Duration::ZERO);
    if age > interval * 2 {
        return Err(ScrapeError::Stale(age));
    }
    Ok(())
}

/// The `min_traffic` rate now: the per-second increase of the counter recorded at `index`
/// (see [`traffic_index`]) over `rate_window`. Under the same conditions as the value judged
/// (a recent, successful newest scrape, two scrapes in the window), so that an unknown
/// rate never turns a sample that could not be measured into "quiet".
pub fn traffic(
    points: &[Point],
    now: DateTime<Utc>,
    interval: Duration,
    index: usize,
    rate_window: Duration,
) -> Result<f64, ScrapeError> {
    fresh(points, now, interval)?;
    let last = points.last().ok_or(ScrapeError::NotYet)?;
    last.measures.as_ref().map_err(Clone::clone)?;
    let (inc, secs) = increase_over(points, rate_window)?;
    Ok(inc.get(index).copied().unwrap_or(0.0) / secs)
}

/// The value at the newest point of `points`: its gauge, or the rate or ratio over the
/// successful points within `rate_window` of it.
pub fn value(
    points: &[Point],
    mode: &ScrapeMode,
    rate_window: Duration,
) -> Result<f64, ScrapeError> {
    let last = points.last().ok_or(ScrapeError::NotYet)?;
    let measures = last.measures.as_ref().map_err(Clone::clone)?;
    match mode {
        ScrapeMode::Gauge(sel) => match measures.first() {
            Some(m) if m.series > 0 => Ok(m.sum),
            _ => Err(ScrapeError::NoSeries(selector_text(sel))),
        },
        ScrapeMode::Rate(_) => {
            let (inc, secs) = increase_over(points, rate_window)?;
            Ok(inc[0] / secs)
        }
        ScrapeMode::Ratio { denominator, .. } => {
            let (inc, _) = increase_over(points, rate_window)?;
            if inc[1] > 0.0 {
                Ok(inc[0] / inc[1])
            } else {
                Err(ScrapeError::NoTraffic {
                    series: selector_text(denominator),
                    window: rate_window,
                })
            }
        }
        ScrapeMode::Quantile { quantile, buckets } => {
            if measures.first().is_none_or(|m| m.series == 0) {
                return Err(ScrapeError::NoSeries(selector_text(buckets)));
            }
            let (finite, inf) = buckets_over(points, rate_window)?;
            let problem = |p: &str| ScrapeError::Histogram {
                series: selector_text(buckets),
                problem: p.into(),
            };
            bucket_quantile(*quantile, &finite, inf).map_err(|e| match e {
                NoQuantile::NoInfBucket => problem(
                    "has no le=\"+Inf\" bucket, which a quantile needs (it counts every observation)",
                ),
                NoQuantile::NoFiniteBucket => {
                    problem("has only the le=\"+Inf\" bucket: no bound to place a quantile at")
                }
                NoQuantile::Empty => ScrapeError::NoTraffic {
                    series: selector_text(buckets),
                    window: rate_window,
                },
            })
        }
    }
}

/// The measures of the successful points within `window` of the newest, newest first, less
/// the oldest (its own increase happened before the window), and the seconds from the oldest
/// to the newest.
fn within(points: &[Point], window: Duration) -> Result<(Vec<&[Measure]>, f64), ScrapeError> {
    let Some(end) = points.last().map(|p| p.at) else {
        return Err(ScrapeError::NotYet);
    };
    let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    // Newest first. A point whose increase is unknown (the first scrape, or the first after a
    // restart) is where the known increases begin: counting the time before it as no
    // increase would dilute the rate with the time backstop was not looking.
    let mut good: Vec<(DateTime<Utc>, &[Measure])> = points
        .iter()
        .rev()
        .take_while(|p| p.at >= start)
        .filter_map(|p| p.measures.as_ref().ok().map(|m| (p.at, m.as_slice())))
        .collect();
    if let Some(first) = good
        .iter()
        .position(|(_, m)| m.iter().any(|m| m.increase.is_none()))
    {
        good.truncate(first + 1);
    }
    let secs = good.last().map_or(0.0, |(oldest, _)| {
        (end - *oldest).num_milliseconds() as f64 / 1000.0
    });
    if good.len() < 2 || secs <= 0.0 {
        return Err(ScrapeError::TooFewScrapes(window));
    }
    good.pop();
    Ok((good.into_iter().map(|(_, m)| m).collect(), secs))
}

/// Per selector, the increase over the successful points within `window` of the newest, and
/// the seconds from the oldest of them to the newest.
fn increase_over(points: &[Point], window: Duration) -> Result<(Vec<f64>, f64), ScrapeError> {
    let (measures, secs) = within(points, window)?;
    let inc = (0..measures[0].len())
        .map(|i| {
            measures
                .iter()
                .map(|m| m.get(i).and_then(|m| m.increase).unwrap_or(0.0))
                .sum()
        })
        .collect();
    Ok((inc, secs))
}

/// The first selector's bucket increases over `window`, summed per bound over the scrapes:
/// the finite buckets sorted by bound, and the `+Inf` bucket (`None` when no scrape had one).
fn buckets_over(points: &[Point], window: Duration) -> Result<(Counts, Option<f64>), ScrapeError> {
    let (measures, _) = within(points, window)?;
    let first = || measures.iter().filter_map(|m| m.first());
    let finite = merge(first().flat_map(|m| m.buckets.iter().copied()));
    let inf = first()
        .filter_map(|m| m.inf_bucket)
        .fold(None, |sum: Option<f64>, i| Some(sum.unwrap_or(0.0) + i));
    Ok((finite, inf))
}

/// The baseline: mean of the values at each successful scrape in `[from, to]`; values that
/// cannot be computed (too few scrapes for a rate, no traffic) are left out.
pub fn baseline(
    points: &[Point],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mode: &ScrapeMode,
    rate_window: Duration,
) -> Result<f64, ScrapeError> {
    let values = values(points, from, to, mode, rate_window);
    crate::judge::baseline::mean(&values).ok_or(ScrapeError::NoBaseline)
}

/// [`values`] with each value's scrape time (the baseline's series, for the evidence).
pub fn timed_values(
    points: &[Point],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mode: &ScrapeMode,
    rate_window: Duration,
) -> Vec<(DateTime<Utc>, f64)> {
    points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.at >= from && p.at <= to && p.measures.is_ok())
        .filter_map(|(i, p)| Some((p.at, value(&points[..=i], mode, rate_window).ok()?)))
        .collect()
}

/// The values at each successful scrape in `[from, to]`, oldest first, each computed from the
/// points up to it (a rate reaches back `rate_window` into `points`, so pass only the points a
/// value may use); values that cannot be computed are left out. `compare`'s sample sets.
pub fn values(
    points: &[Point],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    mode: &ScrapeMode,
    rate_window: Duration,
) -> Vec<f64> {
    timed_values(points, from, to, mode, rate_window)
        .into_iter()
        .map(|(_, v)| v)
        .collect()
}

/// PromQL for what a scrape check computes, for evidence and logs (paste it into Prometheus
/// to graph the same thing).
pub fn describe(mode: &ScrapeMode, rate_window: Duration) -> String {
    let w = humantime::format_duration(rate_window)
        .to_string()
        .replace(' ', "");
    match mode {
        ScrapeMode::Gauge(s) => format!("sum({})", selector_text(s)),
        ScrapeMode::Rate(s) => format!("sum(rate({}[{w}]))", selector_text(s)),
        ScrapeMode::Ratio {
            numerator,
            denominator,
        } => format!(
            "sum(increase({}[{w}])) / sum(increase({}[{w}]))",
            selector_text(numerator),
            selector_text(denominator)
        ),
        ScrapeMode::Quantile { quantile, buckets } => format!(
            "histogram_quantile({quantile}, sum by (le) (rate({}[{w}])))",
            selector_text(buckets)
        ),
    }
}

#[cfg(test)]
#[path = "maths_tests.rs"]
mod tests;
