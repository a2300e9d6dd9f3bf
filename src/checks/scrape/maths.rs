//! The pure part of scrape checks: selecting series, the history of scrapes, and the values
//! judged (gauge, rate, ratio) and their baseline. Points in, numbers out; no I/O, no clock.
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

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::parse::{Exposition, Series};
use crate::config::{ScrapeMode, SeriesSelector};

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
}

/// The selected series of one selector in one scrape, keyed by their labels.
pub type Snapshot = BTreeMap<String, f64>;

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
}

/// One scrape: per selector (in [`ScrapeMode::selectors`] order) a measure, or why not.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub measures: Result<Vec<Measure>, ScrapeError>,
}

fn label<'a>(s: &'a Series, name: &str) -> &'a str {
    s.labels
        .iter()
        .find(|(l, _)| l == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Whether `sel` selects `s`: same name, and every label matcher holds (as in PromQL, a
/// missing label has the value `""`).
pub fn matches(sel: &SeriesSelector, s: &Series) -> bool {
    s.name == sel.metric && sel.labels.iter().all(|(k, m)| m.matches(label(s, k)))
}

/// `a="1",b="2"`: labels sorted and escaped as in the exposition format.
fn label_text<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `metric{a="1"}`, or `metric` without labels.
pub fn selector_text(sel: &SeriesSelector) -> String {
    if sel.labels.is_empty() {
        sel.metric.clone()
    } else {
        let matchers: Vec<String> = sel
            .labels
            .iter()
            .map(|(k, m)| format!("{k}{}", m.text()))
            .collect();
        format!("{}{{{}}}", sel.metric, matchers.join(","))
    }
}

/// The series `sel` selects. A NaN or infinite value cannot be judged or counted: an error.
pub fn select(exp: &Exposition, sel: &SeriesSelector) -> Result<Snapshot, ScrapeError> {
    let mut out = Snapshot::new();
    for s in exp.series.iter().filter(|s| matches(sel, s)) {
        let key = label_text(s.labels.iter().map(|(k, v)| (k, v)));
        if !s.value.is_finite() {
            return Err(ScrapeError::NotANumber {
                series: format!("{}{{{key}}}", s.name),
                value: s.value,
            });
        }
        out.insert(key, s.value);
    }
    Ok(out)
}

/// Counter increase from `prev` to `cur`, summed over the series present in both: a decrease
/// is a reset (the increase is the new value); a series absent from `prev` counts nothing.
pub fn increase(prev: &Snapshot, cur: &Snapshot) -> f64 {
    cur.iter()
        .filter_map(|(k, &v)| prev.get(k).map(|&p| if v >= p { v - p } else { v }))
        .sum()
}

/// The scrapes of one check, newest last, bounded.
#[derive(Debug, Clone)]
pub struct History {
    points: VecDeque<Point>,
    capacity: usize,
    /// Selected series of the newest successful scrape, to difference the next one against.
    last: Option<Vec<Snapshot>>,
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
        selectors: &[&SeriesSelector],
    ) {
        let snapshots = scrape.and_then(|exp| {
            selectors
                .iter()
                .map(|sel| select(exp, sel))
                .collect::<Result<Vec<_>, _>>()
        });
        let measures = snapshots.map(|cur| {
            let measures = cur
                .iter()
                .enumerate()
                .map(|(i, snap)| Measure {
                    sum: snap.values().sum(),
                    series: snap.len(),
                    increase: self
                        .last
                        .as_ref()
                        .and_then(|prev| prev.get(i))
                        .map(|prev| increase(prev, snap)),
                })
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
    let last = points.last().ok_or(ScrapeError::NotYet)?;
    let age = (now - last.at).to_std().unwrap_or(Duration::ZERO);
    if age > interval * 2 {
        return Err(ScrapeError::Stale(age));
    }
    value(points, mode, rate_window)
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
    }
}

/// Per selector, the increase over the successful points within `window` of the newest, and
/// the seconds from the oldest of them to the newest.
fn increase_over(points: &[Point], window: Duration) -> Result<(Vec<f64>, f64), ScrapeError> {
    let Some(end) = points.last().map(|p| p.at) else {
        return Err(ScrapeError::NotYet);
    };
    let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    // Newest first. A point whose increase is unknown (the first scrape, or the first after a
    // restart) is where the known increases begin: counting the time before it as no
    // increase would dilute the rate with the time backstop was not looking.
    let mut good: Vec<(DateTime<Utc>, &Vec<Measure>)> = points
        .iter()
        .rev()
        .take_while(|p| p.at >= start)
        .filter_map(|p| p.measures.as_ref().ok().map(|m| (p.at, m)))
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
    // The oldest point's own increase happened before the window: leave it out.
    let inc = (0..good[0].1.len())
        .map(|i| {
            good[..good.len() - 1]
                .iter()
                .map(|(_, m)| m[i].increase.unwrap_or(0.0))
                .sum()
        })
        .collect();
    Ok((inc, secs))
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
    let values: Vec<f64> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.at >= from && p.at <= to && p.measures.is_ok())
        .filter_map(|(i, _)| value(&points[..=i], mode, rate_window).ok())
        .collect();
    crate::judge::baseline::mean(&values).ok_or(ScrapeError::NoBaseline)
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
    }
}

#[cfg(test)]
#[path = "maths_tests.rs"]
mod tests;
