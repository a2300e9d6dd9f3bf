//! Rank statistics for `compare = "mann-whitney"`: the Mann-Whitney U test (tie-corrected
//! normal approximation with continuity correction), the Hodges-Lehmann shift estimate and its
//! distribution-free confidence interval, and the normal distribution functions they need.
//! Pure numbers in, numbers out; verified against scipy on `tests/data/mannwhitney.json`.
//!
//! The normal approximation is what scipy's `mannwhitneyu(x, y, method="asymptotic",
//! use_continuity=True)` computes, step for step, so that a p-value here can be checked there:
//!
//! - `U1 = R1 − n1(n1+1)/2`, `R1` the sum of the (tie-averaged) ranks of `x` in `x ∪ y`;
//!   `U2 = n1·n2 − U1`.
//! - greater: `U = U1`; less: `U = U2`; two-sided: `U = max(U1, U2)` and the p-value doubled.
//! - `σ = sqrt(n1·n2/12 · ((n+1) − Σ(t³−t)/(n(n−1))))` with `t` the size of each tie group,
//!   `z = (U − n1·n2/2 − 0.5) / σ`, `p = min(1, f · P(Z > z))`.
//!
//! With every value equal, `σ = 0`: `z = −∞` and `p = 1` (nothing to tell apart).

use std::cmp::Ordering;

/// Which way the test looks, from `x`'s side (`x` = post, `y` = pre in backstop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alternative {
    /// `x` tends to be greater than `y` (scipy `"greater"`).
    Greater,
    /// `x` tends to be less than `y` (scipy `"less"`).
    Less,
    /// Either way (scipy `"two-sided"`).
    TwoSided,
}

/// The result of a Mann-Whitney U test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitney {
    /// `U1`, the statistic of `x` (what scipy reports whatever the alternative).
    pub u: f64,
    /// The p-value under the chosen alternative.
    pub p: f64,
    /// The normal approximation's z (`p = f · P(Z > z)`), for callers that correct the
    /// variance (dependent samples: `judge::compare`); −∞ when every value is equal.
    pub z: f64,
}

/// Mann-Whitney U test of `x` against `y`. Both must be non-empty and finite (the caller
/// drops NaN and infinities); an empty side gives `p = 1`.
pub fn mann_whitney(x: &[f64], y: &[f64], alternative: Alternative) -> MannWhitney {
    let (n1, n2) = (x.len(), y.len());
    if n1 == 0 || n2 == 0 {
        return MannWhitney {
            u: 0.0,
            p: 1.0,
            z: f64::NEG_INFINITY,
        };
    }
    let (ranks, tie_term) = ranks(x, y);
    let r1: f64 = ranks[..n1].iter().sum();
    let (f1, f2) = (n1 as f64, n2 as f64);
    let u1 = r1 - f1 * (f1 + 1.0) / 2.0;
    let u2 = f1 * f2 - u1;
    let (u, factor) = match alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };
    let n = (n1 + n2) as f64;
    let mu = f1 * f2 / 2.0;
    let s = (f1 * f2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
    let numerator = u - mu - 0.5;
    let z = numerator / s;
    let p = (normal_sf(z) * factor).clamp(0.0, 1.0);
    MannWhitney {
        u: u1,
        p: if p.is_nan() { 1.0 } else { p },
        z,
    }
}

/// Average ranks (1-based) of `x` then `y` in their union, and the tie term `Σ(t³ − t)`.
fn ranks(x: &[f64], y: &[f64]) -> (Vec<f64>, f64) {
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_by(|&a, &b| all[a].total_cmp(&all[b]));
    let mut ranks = vec![0.0; all.len()];
    let mut tie_term = 0.0;
    let mut start = 0;
    while start < order.len() {
        let value = all[order[start]];
        let end = start + order[start..].partition_point(|&i| all[i] == value);
        // Positions start..end (0-based) share ranks start+1..=end: their average.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        let t = (end - start) as f64;
        tie_term += t * t * t - t;
        start = end;
    }
    (ranks, tie_term)
}

/// The Hodges-Lehmann estimate of the shift of `x` over `y` and its confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    /// The median of all pairwise differences `x_i − y_j`.
    pub estimate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
}

/// The Hodges-Lehmann shift of `x` over `y`, with its two-sided distribution-free confidence
/// interval at `confidence` (Moses; Hollander & Wolfe, *Nonparametric Statistical Methods*):
/// with the `N = n1·n2` pairwise differences sorted, `D(1) ≤ … ≤ D(N)`,
///
/// `k = ⌊N/2 − z · sqrt(n1·n2·(n1+n2+1)/12)⌋`, `z = Φ⁻¹((1 + confidence)/2)`, at least 1,
///
/// the interval is `[D(k), D(N+1−k)]`. It uses the normal approximation of U's null
/// distribution without tie correction (ties make it slightly conservative); rounding `k`
/// down widens it rather than claiming more confidence than the data give. When the samples
/// are too small for the confidence asked (`k < 1`) the interval is the whole range of
/// differences. `None` when either side is empty.
///
/// Selection rather than a full sort: three `O(N)` selections over at most 500 × 500
/// differences.
pub fn hodges_lehmann(x: &[f64], y: &[f64], confidence: f64) -> Option<Shift> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let mut d: Vec<f64> = x
        .iter()
        .flat_map(|a| y.iter().map(move |b| a - b))
        .collect();
    let n = d.len();
    let cmp = |a: &f64, b: &f64| a.total_cmp(b);
    let mut nth = |i: usize| *d.select_nth_unstable_by(i, cmp).1;
    let estimate = if n % 2 == 1 {
        nth(n / 2)
    } else {
        let lo = nth(n / 2 - 1);
        // After the selection, everything from n/2 on is ≥ lo: the upper middle is its minimum.
        let hi = d[n / 2..]
            .iter()
            .copied()
            .min_by(|a, b| a.total_cmp(b))
            .unwrap_or(lo);
        (lo + hi) / 2.0
    };
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let z = normal_quantile((1.0 + confidence) / 2.0);
    let k = (n as f64 / 2.0 - z * (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt()).floor();
    let k = if k.is_finite() && k >= 1.0 {
        (k as usize).min(n.div_ceil(2))
    } else {
        1
    };
    let mut nth = |i: usize| *d.select_nth_unstable_by(i, cmp).1;
    let low = nth(k - 1);
    let high = nth(n - k);
    Some(Shift {
        estimate,
        low,
        high,
    })
}

/// `P(Z > z)` for a standard normal `Z` (scipy `norm.sf`).
pub fn normal_sf(z: f64) -> f64 {
    if z.is_nan() {
        return f64::NAN;
    }
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The `p`-quantile of the standard normal (scipy `norm.ppf`), by bisection on [`normal_sf`]:
/// not fast, exact to the last bits, and called once per comparison.
pub fn normal_quantile(p: f64) -> f64 {
    if p.is_nan() || p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    let (mut lo, mut hi) = (-40.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = (lo + hi) / 2.0;
        // The CDF at mid is sf(−mid).
        match normal_sf(-mid).partial_cmp(&p) {
            Some(Ordering::Less) => lo = mid,
            _ => hi = mid,
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1e-300) {
            break;
        }
    }
    (lo + hi) / 2.0
}

/// The complementary error function, to about 1e-15 relative: below 2.5 from the series of
/// `erf` whose terms are all positive (no cancellation), `erf(x) = 2/√π · e^{−x²} ·
/// Σ 2ⁿx^{2n+1}/(1·3·…·(2n+1))`; above, from the continued fraction (Abramowitz & Stegun
/// 7.1.14) `erfc(x) = e^{−x²}/√π · 1/(x + ½/(x + 1/(x + (3/2)/(x + …))))`, evaluated with
/// Lentz's method. No constants to get wrong.
pub fn erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return 2.0 - erfc(-x);
    }
    if x.is_infinite() {
        return 0.0;
    }
    let two_over_sqrt_pi = std::f64::consts::FRAC_2_SQRT_PI;
    if x < 2.5 {
        let x2 = x * x;
        let (mut term, mut sum) = (x, x);
        let mut k = 0.0;
        while term > sum * 1e-17 {
            k += 1.0;
            term *= 2.0 * x2 / (2.0 * k + 1.0);
            sum += term;
        }
        return 1.0 - two_over_sqrt_pi * (-x2).exp() * sum;
    }
    let tiny = 1e-300;
    let mut f = x;
    let (mut c, mut d) = (f, 0.0);
    for k in 1..10_000 {
        let a = k as f64 / 2.0;
        d = x + a * d;
        d = if d.abs() < tiny { 1.0 / tiny } else { 1.0 / d };
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    two_over_sqrt_pi / 2.0 * (-x * x).exp() / f
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
