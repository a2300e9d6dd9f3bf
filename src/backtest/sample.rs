//! A check's history, as fetched once per deployment, read back as the check result of a round
//! at any time: what the live probe would have measured then. Pure.
//!
//! The live probes ask instant queries; a range query evaluates the same expression at every
//! step, so the value at time `t` is the point at the newest step at or before `t` (the grid
//! starts where judging starts, so rounds fall on its steps). A step with no point is what an
//! instant query would have answered then: nothing (the series was absent or stale).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::checks::prometheus::RangeSeries;
use crate::checks::ProbeError;
use crate::engine::lifecycle::{CheckResult, CompareSamples, ControlReading, Unmeasured};
use crate::judge::alerts::{classify, Alert, AlertState};
use crate::judge::Reading;

/// A query evaluated every `step` from `start` (`query_range`), or why it could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    pub start: DateTime<Utc>,
    pub step: Duration,
    pub series: Result<Vec<RangeSeries>, ProbeError>,
}

/// One check's history around one deployment.
#[derive(Debug, Clone, PartialEq)]
pub enum History {
    Prometheus(Box<PromHistory>),
    Alerts(AlertHistory),
}

/// A prometheus check's queries over the observation.
#[derive(Debug, Clone, PartialEq)]
pub struct PromHistory {
    pub reading: Grid,
    /// The pre-deployment baseline, when a rule or the control needs one.
    pub baseline: Option<Result<Option<f64>, String>>,
    pub compare: Option<CompareHistory>,
    /// `min_traffic`'s query.
    pub traffic: Option<Grid>,
    /// `control_query`, and its pre-deployment baseline.
    pub control: Option<(Grid, Result<f64, String>)>,
}

/// A `compare` check's sample sets: the pre-deployment ones, and the post-deployment query
/// from where the live check starts them.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareHistory {
    pub pre: Result<Vec<f64>, String>,
    pub post: Grid,
    /// Post samples start here (judging, and the query's look-back past the deployment).
    pub from: DateTime<Utc>,
    /// The newest samples kept: `step` × [`crate::judge::compare::MAX_SAMPLES`].
    pub cap: Duration,
}

/// An alert check's `ALERTS` series, from before the deployment (so that an alert already
/// active then is seen as such).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertHistory {
    pub grid: Grid,
    pub labels: BTreeMap<String, String>,
    pub include_silenced: bool,
    pub deployed_at: DateTime<Utc>,
}

impl Grid {
    /// The points of each series at the newest step at or before `t`.
    fn points_at(&self, t: DateTime<Utc>) -> Result<Vec<(&RangeSeries, f64)>, ProbeError> {
        let series = self.series.as_ref().map_err(Clone::clone)?;
        let step = chrono::Duration::from_std(self.step).unwrap_or(chrono::Duration::MAX);
        // Times are whole milliseconds on both sides; 1 ms of slack for the rounding.
        let slack = chrono::Duration::milliseconds(1);
        Ok(series
            .iter()
            .filter_map(|s| {
                let i = s.points.partition_point(|(at, _)| *at <= t + slack);
                let (at, v) = *s.points.get(i.checked_sub(1)?)?;
                (t - at < step - slack).then_some((s, v))
            })
            .collect())
    }

    /// What an instant query at `t` would have returned.
    pub fn value_at(&self, t: DateTime<Utc>) -> Result<f64, ProbeError> {
        match self.points_at(t)?.as_slice() {
            [] => Err(ProbeError::NoData),
            [(_, v)] if v.is_finite() => Ok(*v),
            [(_, v)] => Err(ProbeError::NotANumber(not_a_number(*v))),
            many => Err(ProbeError::MultipleSeries(many.len())),
        }
    }

    /// The finite values from `from` to `to` of a single series, oldest first (a range query
    /// over that span).
    fn values_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<f64>, ProbeError> {
        let series = self.series.as_ref().map_err(Clone::clone)?;
        let slack = chrono::Duration::milliseconds(1);
        let inside: Vec<Vec<f64>> = series
            .iter()
            .map(|s| {
                s.points
                    .iter()
                    .filter(|(at, _)| *at + slack >= from && *at <= to + slack)
                    .map(|(_, v)| *v)
                    .collect::<Vec<f64>>()
            })
            .filter(|v| !v.is_empty())
            .collect();
        match inside.as_slice() {
            [] => Err(ProbeError::NoData),
            [one] => Ok(one.iter().copied().filter(|v| v.is_finite()).collect()),
            many => Err(ProbeError::MultipleSeries(many.len())),
        }
    }
}

/// How Prometheus writes a non-finite value.
fn not_a_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v > 0.0 {
        "+Inf".into()
    } else {
        "-Inf".into()
    }
}

/// A probe error as the round records it: telemetry, never the application down.
fn unmeasured(e: ProbeError) -> Unmeasured {
    Unmeasured {
        empty: e.is_no_data(),
        ..Unmeasured::other(e.to_string())
    }
}

/// The check's result in a round at `t`, as the live probes would have given it.
pub fn check_result(name: &str, history: &History, t: DateTime<Utc>) -> CheckResult {
    let mut r = CheckResult {
        name: name.to_string(),
        baseline: None,
        before: None,
        reading: Err(Unmeasured::other("not read")),
        lag: std::time::Duration::ZERO,
        traffic: None,
        compare: None,
        control: None,
    };
    match history {
        History::Prometheus(h) => {
            r.reading = h
                .reading
                .value_at(t)
                .map(Reading::Value)
                .map_err(unmeasured);
            r.baseline = h.baseline.clone();
            r.traffic = h
                .traffic
                .as_ref()
                .map(|g| g.value_at(t).map_err(|e| e.to_string()));
            r.control = h.control.as_ref().map(|(g, baseline)| ControlReading {
                now: g.value_at(t).map_err(|e| e.to_string()),
                baseline: Some(baseline.clone()),
            });
            r.compare = h.compare.as_ref().map(|c| CompareSamples {
                pre: Some(c.pre.clone()),
                post: post_samples(c, t).map_err(|e| e.to_string()),
            });
        }
        History::Alerts(h) => {
            r.reading = alerts_at(&h.grid, t)
                .map(|alerts| {
                    Reading::Alerts(classify(
                        &alerts,
                        &h.labels,
                        h.deployed_at,
                        h.include_silenced,
                    ))
                })
                .map_err(unmeasured);
        }
    }
    r
}

/// The post-deployment samples a round at `t` would have fetched: from `from` to `t`, the
/// newest `cap` of them.
fn post_samples(c: &CompareHistory, t: DateTime<Utc>) -> Result<Vec<f64>, ProbeError> {
    if c.from >= t {
        return Ok(Vec::new());
    }
    let cap = chrono::Duration::from_std(c.cap).unwrap_or(chrono::Duration::MAX);
    let from = c.from.max(t.checked_sub_signed(cap).unwrap_or(c.from));
    c.post.values_between(from, t)
}

/// The alerts active at `t`: each `ALERTS` series with a point at that step, active since the
/// first step of its unbroken run (pending, then firing, counts as one run, as `activeAt`).
pub fn alerts_at(grid: &Grid, t: DateTime<Utc>) -> Result<Vec<Alert>, ProbeError> {
    let present = grid.points_at(t)?;
    let all = grid.series.as_ref().map_err(Clone::clone)?;
    let step = chrono::Duration::from_std(grid.step).unwrap_or(chrono::Duration::MAX);
    let slack = chrono::Duration::milliseconds(1);
    let mut alerts = Vec::new();
    for (series, _) in present {
        let state = match series.labels.get("alertstate").map(String::as_str) {
            Some("firing") => AlertState::Firing,
            Some("pending") => AlertState::Pending,
            _ => continue,
        };
        let labels = identity(&series.labels);
        // Every step at which this alert (in either state) was active, up to `t`.
        let mut times: Vec<DateTime<Utc>> = all
            .iter()
            .filter(|s| identity(&s.labels) == labels)
            .flat_map(|s| s.points.iter().map(|(at, _)| *at))
            .filter(|at| *at <= t + slack)
            .collect();
        times.sort();
        times.dedup();
        let Some(mut since) = times.last().copied() else {
            continue;
        };
        for at in times.iter().rev().skip(1) {
            if since - *at > step + slack {
                break;
            }
            since = *at;
        }
        alerts.push(Alert {
            labels,
            state,
            active_at: since,
        });
    }
    Ok(alerts)
}

/// An `ALERTS` series' labels without the ones Prometheus adds (name and state): the alert.
fn identity(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| k.as_str() != "alertstate" && k.as_str() != "__name__")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
#[path = "sample_tests.rs"]
mod tests;
