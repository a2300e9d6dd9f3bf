//! Kayenta-style automated canary analysis, from the Netflix ACA judge's defaults: each metric
//! (the 5xx ratio, the p90; direction "increase", as a user sets it for both) is fetched as a
//! range at a 10 s step for the experiment (the new release since the analysis began) and for
//! a control: the same window shifted back by an offset, before the deployment (Kayenta's
//! time-shifted comparison when there is no baseline cluster). NaN is removed, outliers beyond
//! 3 IQR dropped; the metric is High when the lower end of the 98% Hodges-Lehmann interval of
//! the shift lies above 0.25 × |shift estimate| (the judge's tolerance), i.e. a significant
//! increase. No data on either side is Nodata. Each metric is its own group of equal weight;
//! a group without data scores nothing. The canary stage judges every `interval` (2 m) over
//! the data so far (growing lookback) after a 1 m warmup (the queries' 1 m range must have
//! left the old release behind): an intermediate score under the marginal threshold (75) fails
//! at once, the last one (at the 10 m lifetime) must reach the pass threshold (95). A fetch
//! that fails (Prometheus down) makes the metric Nodata. The Hodges-Lehmann interval is
//! backstop's own (`judge::stats`, checked against scipy), not Kayenta's R-derived one.

use super::{Judgement, Verdict};
use crate::generate::Deployment;
use crate::prom::{Prom, Query};

const WARMUP: f64 = 60.0;
const INTERVAL: f64 = 120.0;
const LIFETIME: f64 = 600.0;
/// The step of the table's row: 50 points over a 10-minute analysis (Spinnaker's guidance).
pub const STEP: f64 = 10.0;
/// The diagnostic row's: one point per 1-minute window, so that points do not overlap.
pub const MINUTE_STEP: f64 = 60.0;
/// The control is the experiment's window this much earlier: all of it before the deployment.
const OFFSET: f64 = WARMUP + LIFETIME;
const CONFIDENCE: f64 = 0.98;
const TOLERANCE: f64 = 0.25;
const IQR_FACTOR: f64 = 3.0;
const MARGINAL: f64 = 75.0;
const PASS: f64 = 95.0;

/// One metric's classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Pass,
    High,
    Nodata,
}

/// Judges `d` with range queries at `step` seconds.
pub fn judge(d: &Deployment, step: f64) -> Judgement {
    let mut prom = Prom::new(&d.telemetry);
    let runs = (LIFETIME / INTERVAL).round() as u32;
    for k in 1..=runs {
        let t = WARMUP + INTERVAL * f64::from(k);
        let classes = [Query::ErrorRatio, Query::LatencyP90].map(|q| {
            let exp = prom.range(q, WARMUP, t, step, t);
            let ctl = prom.range(q, WARMUP - OFFSET, t - OFFSET, step, t);
            match (exp, ctl) {
                (Ok(e), Ok(c)) => classify(&e, &c),
                _ => Class::Nodata,
            }
        });
        let score: f64 = classes
            .iter()
            .map(|c| if *c == Class::Pass { 50.0 } else { 0.0 })
            .sum();
        // The first metric that was not a pass: High names its signal, Nodata is no data.
        let cause = match classes {
            [Class::High, _] => "errors",
            [_, Class::High] => "latency",
            _ => "no_data",
        };
        if k < runs && score < MARGINAL {
            return Judgement::at(Verdict::RolledBack, t).because(cause);
        }
        if k == runs {
            return if score >= PASS {
                Judgement::at(Verdict::Verified, t)
            } else {
                Judgement::at(Verdict::RolledBack, t).because(cause)
            };
        }
    }
    unreachable!("the last run decides")
}

/// The Mann-Whitney classifier of the Netflix ACA judge, direction increase.
fn classify(experiment: &[f64], control: &[f64]) -> Class {
    let e = without_outliers(experiment);
    let c = without_outliers(control);
    if e.is_empty() || c.is_empty() {
        return Class::Nodata;
    }
    let mut se = e.clone();
    let mut sc = c.clone();
    se.sort_by(f64::total_cmp);
    sc.sort_by(f64::total_cmp);
    if se == sc || se.iter().chain(&sc).all(|v| *v == se[0]) {
        return Class::Pass;
    }
    let Some(shift) = backstop::judge::stats::hodges_lehmann(&e, &c, CONFIDENCE) else {
        return Class::Nodata;
    };
    if shift.low > TOLERANCE * shift.estimate.abs() {
        Class::High
    } else {
        Class::Pass
    }
}

/// Drops values beyond `IQR_FACTOR` interquartile ranges from the quartiles (none when the
/// quartiles are equal: nothing to measure outliers by).
fn without_outliers(values: &[f64]) -> Vec<f64> {
    if values.len() < 4 {
        return values.to_vec();
    }
    let mut s = values.to_vec();
    s.sort_by(f64::total_cmp);
    let quantile = |p: f64| {
        let x = p * (s.len() - 1) as f64;
        let (lo, hi) = (x.floor() as usize, x.ceil() as usize);
        s[lo] + (s[hi] - s[lo]) * (x - lo as f64)
    };
    let (q1, q3) = (quantile(0.25), quantile(0.75));
    let iqr = q3 - q1;
    if iqr <= 0.0 {
        return values.to_vec();
    }
    let (lo, hi) = (q1 - IQR_FACTOR * iqr, q3 + IQR_FACTOR * iqr);
    values
        .iter()
        .copied()
        .filter(|v| *v >= lo && *v <= hi)
        .collect()
}
