//! What a real Prometheus answers, from the generated scrapes: instant and range queries of
//! the three queries every policy here reads, with PromQL's semantics where they decide
//! anything (range selectors over `(t − 1m, t]`, `rate()`'s counter resets and extrapolation,
//! series that do not exist yet, `histogram_quantile`'s interpolation, NaN from 0/0, an empty
//! result when no series has two samples in the window, a server that does not answer).

use std::collections::HashMap;

use crate::generate::{Scrape, Telemetry, BOUNDS, NB};
use crate::scenario::Outage;

/// The queries, as a user writes them (the config's text is matched against these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Query {
    /// `sum(rate(5xx[1m])) / sum(rate(all[1m]))`.
    ErrorRatio,
    /// `(sum(rate(5xx[1m])) or vector(0)) / sum(rate(all[1m]))`: the same, 0 rather than an
    /// empty result while no 5xx series exists (no error since the restart).
    ErrorRatioOrZero,
    /// `histogram_quantile(0.9, sum by (le) (rate(..._bucket[1m])))`.
    LatencyP90,
    /// `sum(rate(http_requests_total[1m]))`: requests per second.
    Traffic,
}

impl Query {
    pub const ERROR_RATIO: &str =
        r#"sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))"#;
    pub const ERROR_RATIO_OR_ZERO: &str = r#"(sum(rate(http_requests_total{code=~"5.."}[1m])) or vector(0)) / sum(rate(http_requests_total[1m]))"#;
    pub const LATENCY_P90: &str =
        "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))";
    pub const TRAFFIC: &str = "sum(rate(http_requests_total[1m]))";

    pub fn text(self) -> &'static str {
        match self {
            Query::ErrorRatio => Self::ERROR_RATIO,
            Query::ErrorRatioOrZero => Self::ERROR_RATIO_OR_ZERO,
            Query::LatencyP90 => Self::LATENCY_P90,
            Query::Traffic => Self::TRAFFIC,
        }
    }

    pub fn parse(text: &str) -> Option<Query> {
        [
            Query::ErrorRatio,
            Query::ErrorRatioOrZero,
            Query::LatencyP90,
            Query::Traffic,
        ]
        .into_iter()
        .find(|q| q.text() == text)
    }
}

/// The range of every query's selectors, seconds.
pub const RANGE: f64 = 60.0;

/// Why a query gave no number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Prometheus did not answer.
    Down,
    /// It answered with an empty vector: no series.
    Empty,
    /// It answered NaN (0/0: no requests in the window).
    NaN,
}

impl Failure {
    pub fn text(self) -> &'static str {
        match self {
            Failure::Down => "prometheus unreachable: connection refused",
            Failure::Empty => "query returned no data",
            Failure::NaN => "query returned NaN, not a number",
        }
    }
}

/// A Prometheus over one deployment's telemetry. Evaluations are cached by time: a range
/// query re-read every round costs one evaluation per new point.
pub struct Prom<'a> {
    tel: &'a Telemetry,
    cache: HashMap<(Query, i64), Option<f64>>,
}

impl<'a> Prom<'a> {
    pub fn new(tel: &'a Telemetry) -> Self {
        Prom {
            tel,
            cache: HashMap::new(),
        }
    }

    /// Whether the server answers a request made at `at`.
    pub fn down(&self, at: f64) -> bool {
        matches!(self.tel.outage, Some(Outage::Server { from, to }) if at >= from && at < to)
    }

    /// An instant query evaluated at `t` (asked at `t`).
    pub fn instant(&mut self, q: Query, t: f64) -> Result<f64, Failure> {
        if self.down(t) {
            return Err(Failure::Down);
        }
        match self.eval(q, t) {
            None => Err(Failure::Empty),
            Some(v) if v.is_nan() => Err(Failure::NaN),
            Some(v) => Ok(v),
        }
    }

    /// A `query_range` from `start` to `end` every `step`, asked at `asked`: the finite
    /// values, oldest first (NaN points dropped, as backstop's client drops them); `Empty`
    /// when no point had a series at all (an empty matrix).
    pub fn range(
        &mut self,
        q: Query,
        start: f64,
        end: f64,
        step: f64,
        asked: f64,
    ) -> Result<Vec<f64>, Failure> {
        if self.down(asked) {
            return Err(Failure::Down);
        }
        let mut any = false;
        let mut out = Vec::new();
        let mut k = 0.0;
        loop {
            let t = start + k * step;
            if t > end + 1e-9 {
                break;
            }
            k += 1.0;
            if let Some(v) = self.eval(q, t) {
                any = true;
                if v.is_finite() {
                    out.push(v);
                }
            }
        }
        if any {
            Ok(out)
        } else {
            Err(Failure::Empty)
        }
    }

    /// The query's value at `t`: `None` for an empty vector.
    fn eval(&mut self, q: Query, t: f64) -> Option<f64> {
        let key = (q, (t * 1000.0).round() as i64);
        if let Some(v) = self.cache.get(&key) {
            return *v;
        }
        let v = evaluate(self.tel, q, t);
        self.cache.insert(key, v);
        v
    }
}

/// Evaluates `q` at `t` over the telemetry, uncached.
pub fn evaluate(tel: &Telemetry, q: Query, t: f64) -> Option<f64> {
    let windows: Vec<&[Scrape]> = tel.series.iter().map(|s| window(s, t)).collect();
    let sum = |f: &dyn Fn(&Scrape) -> f64| -> Option<f64> {
        windows
            .iter()
            .filter_map(|w| rate(w.iter().map(|s| (s.t, f(s))), t))
            .fold(None, |acc: Option<f64>, r| Some(acc.unwrap_or(0.0) + r))
    };
    match q {
        Query::Traffic => sum(&|s| s.requests),
        Query::ErrorRatio => {
            let errors = sum(&|s| s.errors)?;
            let all = sum(&|s| s.requests)?;
            Some(errors / all)
        }
        Query::ErrorRatioOrZero => {
            let errors = sum(&|s| s.errors).unwrap_or(0.0);
            let all = sum(&|s| s.requests)?;
            Some(errors / all)
        }
        Query::LatencyP90 => {
            let mut buckets = [0.0; NB];
            let mut any = false;
            for (k, b) in buckets.iter_mut().enumerate() {
                if let Some(v) = sum(&|s| s.buckets[k]) {
                    *b = v;
                    any = true;
                }
            }
            any.then(|| histogram_quantile(0.9, &buckets))
        }
    }
}

/// The scrapes inside the range selector `(t − 1m, t]`.
fn window(series: &[Scrape], t: f64) -> &[Scrape] {
    let from = series.partition_point(|s| s.t <= t - RANGE);
    let to = series.partition_point(|s| s.t <= t);
    &series[from..to.max(from)]
}

/// PromQL's `rate()` of a counter over `(t − 1m, t]` from its samples (NaN = the series was
/// absent from that scrape: skipped): counter resets add the value before the reset; the
/// increase is extrapolated to the window's edges unless a sample is further from an edge
/// than 1.1 average intervals (then by half an interval), and never back past zero.
/// `None` with fewer than two samples (no result for this series).
pub fn rate(samples: impl Iterator<Item = (f64, f64)>, t: f64) -> Option<f64> {
    let points: Vec<(f64, f64)> = samples.filter(|(_, v)| !v.is_nan()).collect();
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut increase = last.1 - first.1;
    for w in points.windows(2) {
        if w[1].1 < w[0].1 {
            increase += w[0].1;
        }
    }
    let start = t - RANGE;
    let sampled = last.0 - first.0;
    let average = sampled / (points.len() - 1) as f64;
    let mut to_start = first.0 - start;
    let to_end = t - last.0;
    if increase > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / increase);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut extrapolated = sampled;
    extrapolated += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    extrapolated += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(increase * (extrapolated / sampled) / RANGE)
}

/// PromQL's `histogram_quantile(q, ...)` over cumulative bucket rates (`le` as [`BOUNDS`]):
/// NaN without observations; counts made monotonic; the quantile interpolated linearly in its
/// bucket (from 0 in the first); in the `+Inf` bucket, the highest finite bound.
pub fn histogram_quantile(q: f64, cumulative: &[f64; NB]) -> f64 {
    let mut counts = *cumulative;
    for k in 1..NB {
        if counts[k] < counts[k - 1] {
            counts[k] = counts[k - 1];
        }
    }
    let total = counts[NB - 1];
    if total <= 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let rank = q * total;
    let b = counts.iter().position(|c| *c >= rank).unwrap_or(NB - 1);
    if b == NB - 1 {
        return BOUNDS[NB - 2];
    }
    let (lower, below) = if b == 0 {
        (0.0, 0.0)
    } else {
        (BOUNDS[b - 1], counts[b - 1])
    };
    let in_bucket = counts[b] - below;
    if in_bucket <= 0.0 {
        return BOUNDS[b];
    }
    lower + (BOUNDS[b] - lower) * (rank - below) / in_bucket
}
