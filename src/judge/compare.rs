//! `compare = "mann-whitney"`: the post-deployment samples of a check against its
//! pre-deployment samples, judged as a whole every round (so the verdict firms up as data
//! comes in). Thresholds catch loud failures; this catches the quiet ones, a latency 40%
//! higher that never crosses a fixed `max`.
//!
//! A comparison fails when the difference is both **significant** (the Mann-Whitney p-value
//! under `direction` is below `1 − confidence`) and **large enough to matter** (the mean ratio
//! post/pre beyond `allowed_increase` or `allowed_decrease`): with hundreds of samples a 3%
//! rise is significant, and rolling back for it would be noise. Too few samples on either side
//! is no data, neither for nor against the release. The statistics are in [`super::stats`].

use serde::{Deserialize, Serialize};

use super::stats::{hodges_lehmann, mann_whitney, normal_sf, Alternative, MannWhitney};
use super::{num, Outcome};

/// Samples compared at most, per side: the newest. Bounds the work (the Hodges-Lehmann
/// estimate looks at every pair: 500 × 500 differences) and keeps the test about the present.
pub const MAX_SAMPLES: usize = 500;

/// Samples kept per side in the evidence (the newest).
pub const EVIDENCE_SAMPLES: usize = 200;

/// The only comparison today; an enum so that the next one is a variant, not a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    MannWhitney,
}

/// `direction`: which change is a regression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Post above pre is bad (latency, errors): the default.
    Increase,
    /// Post below pre is bad (throughput, success rate).
    Decrease,
    /// Any change is bad: a two-sided test.
    Either,
}

impl Direction {
    fn alternative(self) -> Alternative {
        match self {
            Direction::Increase => Alternative::Greater,
            Direction::Decrease => Alternative::Less,
            Direction::Either => Alternative::TwoSided,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Direction::Increase => "post > pre",
            Direction::Decrease => "post < pre",
            Direction::Either => "post ≠ pre",
        }
    }
}

/// A check's comparison rule, validated (see the config for each key's default and range).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Compare {
    pub method: Method,
    pub direction: Direction,
    /// In (0.5, 1): significant means `p < 1 − confidence`.
    pub confidence: f64,
    /// ≥ 1: a significant rise whose mean ratio is at most this is not a failure.
    pub allowed_increase: f64,
    /// In [0, 1]: a significant fall whose mean ratio is at least this is not a failure.
    pub allowed_decrease: f64,
    /// ≥ 2: samples needed on each side before the test says anything.
    pub min_samples: u32,
    /// How many consecutive samples share one look-back window (≥ 1; a prometheus check's
    /// W / step, from the query and `step`): neighbours that read mostly the same data are not
    /// independent, so the test's variance is inflated by this much (see [`judge`]).
    #[serde(default = "independent")]
    pub overlap: f64,
}

fn independent() -> f64 {
    1.0
}

/// One round's comparison: the evidence behind the outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Comparison {
    pub rule: Compare,
    /// Samples compared (after dropping non-finite values and capping at [`MAX_SAMPLES`]).
    pub n_pre: usize,
    pub n_post: usize,
    /// U1, the Mann-Whitney statistic of the post samples.
    pub u: f64,
    pub p_value: f64,
    /// Hodges-Lehmann shift of post over pre (median of the pairwise differences), with its
    /// interval at `confidence`.
    pub shift: f64,
    pub shift_low: f64,
    pub shift_high: f64,
    pub mean_pre: f64,
    pub mean_post: f64,
    /// mean(post) / mean(pre); `None` when mean(pre) ≤ 0, where a ratio means nothing (then
    /// any significant change in the direction watched counts as beyond the allowance: from
    /// no errors to some is a regression whatever the ratio).
    pub mean_ratio: Option<f64>,
    pub significant: bool,
    /// Significant and beyond the allowance: the sample fails.
    pub failed: bool,
    /// The newest [`EVIDENCE_SAMPLES`] of each side, oldest first.
    pub pre: Vec<f64>,
    pub post: Vec<f64>,
}

impl Comparison {
    /// One line for people: `mann-whitney: post > pre, p = 0.0004 (needs < 0.02), shift +0.12
    /// [0.08, 0.17], mean ×1.45 (allowed ×1.2): FAIL`.
    pub fn describe(&self) -> String {
        let r = &self.rule;
        let ratio = match self.mean_ratio {
            Some(m) => format!("×{}", num(m)),
            None => format!("{} → {}", num(self.mean_pre), num(self.mean_post)),
        };
        let allowed = match r.direction {
            Direction::Increase => format!("×{}", num(r.allowed_increase)),
            Direction::Decrease => format!("×{}", num(r.allowed_decrease)),
            Direction::Either => {
                format!("×{}..×{}", num(r.allowed_decrease), num(r.allowed_increase))
            }
        };
        let sign = if self.shift > 0.0 { "+" } else { "" };
        format!(
            "mann-whitney: {}, p = {} (needs < {}), shift {sign}{} [{}, {}], mean {ratio} (allowed {allowed}), n = {} pre / {} post{}: {}",
            r.direction.symbol(),
            num(self.p_value),
            num(1.0 - r.confidence),
            num(self.shift),
            num(self.shift_low),
            num(self.shift_high),
            self.n_pre,
            self.n_post,
            if r.overlap > 1.0 {
                format!(
                    " (each sample overlaps ×{}: weighed as n / {})",
                    num(r.overlap),
                    num(r.overlap)
                )
            } else {
                String::new()
            },
            match (self.failed, self.significant) {
                (true, _) => "FAIL",
                (false, true) => "pass (significant, but within the allowance)",
                (false, false) => "pass",
            }
        )
    }
}

/// Compares `post` with `pre` (each oldest first). Non-finite values are dropped and each side
/// is capped at its newest [`MAX_SAMPLES`]. Fewer than `min_samples` on a side: no data, with
/// the counts, and no comparison.
pub fn judge(rule: &Compare, pre: &[f64], post: &[f64]) -> (Outcome, Option<Comparison>) {
    let pre = newest_finite(pre, MAX_SAMPLES);
    let post = newest_finite(post, MAX_SAMPLES);
    let need = rule.min_samples as usize;
    if pre.len() < need || post.len() < need {
        return (
            Outcome::NoData {
                reason: format!(
                    "too few samples to compare: {} pre-deployment, {} post-deployment, {need} needed on each side (compare_min_samples)",
                    pre.len(),
                    post.len()
                ),
            },
            None,
        );
    }
    let mut test = mann_whitney(&post, &pre, rule.direction.alternative());
    test.p = dependent_p(test, rule);
    let Some(shift) = hodges_lehmann(&post, &pre, rule.confidence) else {
        return (
            Outcome::NoData {
                reason: "no samples to compare".into(),
            },
            None,
        );
    };
    let (mean_pre, mean_post) = (mean(&pre), mean(&post));
    let mean_ratio = (mean_pre > 0.0).then(|| mean_post / mean_pre);
    let significant = test.p < 1.0 - rule.confidence;
    let rose = mean_ratio.map_or(mean_post > mean_pre, |m| m > rule.allowed_increase);
    let fell = mean_ratio.map_or(mean_post < mean_pre, |m| m < rule.allowed_decrease);
    let beyond = match rule.direction {
        Direction::Increase => rose,
        Direction::Decrease => fell,
        Direction::Either => rose || fell,
    };
    let c = Comparison {
        rule: *rule,
        n_pre: pre.len(),
        n_post: post.len(),
        u: test.u,
        p_value: test.p,
        shift: shift.estimate,
        shift_low: shift.low,
        shift_high: shift.high,
        mean_pre,
        mean_post,
        mean_ratio,
        significant,
        failed: significant && beyond,
        pre: newest(&pre, EVIDENCE_SAMPLES),
        post: newest(&post, EVIDENCE_SAMPLES),
    };
    let outcome = if c.failed {
        Outcome::Fail {
            limit: c.describe(),
        }
    } else {
        Outcome::Pass
    };
    (outcome, Some(c))
}

/// The p-value of the test with the samples' overlap accounted for. A 1-minute rate sampled
/// every 10 s shares 5/6 of its data with its neighbour: n such points carry about
/// n / overlap independent values, and the Mann-Whitney statistic of a moving average has
/// about `overlap` times the variance the test assumes (the variance of a mean of k equally
/// correlated neighbours grows k-fold). So z is divided by √overlap, the effective sample size
/// n·step/W of the textbook correction, and the scipy-verified statistic itself is untouched.
fn dependent_p(test: MannWhitney, rule: &Compare) -> f64 {
    if rule.overlap.is_nan() || rule.overlap <= 1.0 || !test.z.is_finite() {
        return test.p;
    }
    let factor = match rule.direction {
        Direction::Either => 2.0,
        Direction::Increase | Direction::Decrease => 1.0,
    };
    (factor * normal_sf(test.z / rule.overlap.sqrt())).clamp(0.0, 1.0)
}

/// The newest `cap` finite values, oldest first.
fn newest_finite(values: &[f64], cap: usize) -> Vec<f64> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    newest(&finite, cap)
}

fn newest(values: &[f64], cap: usize) -> Vec<f64> {
    values[values.len().saturating_sub(cap)..].to_vec()
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
