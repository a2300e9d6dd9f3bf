//! The quantile of a classic (bucketed) histogram, computed as PromQL's `histogram_quantile`
//! computes it, so a scrape check's p90 matches the dashboard's to the last digit.
//!
//! The steps are Prometheus' `bucketQuantile` (promql/quantile.go): buckets sorted by upper
//! bound, equal bounds merged, the `+Inf` bucket required, counts within a relative 1e-12 of
//! their predecessor treated as equal (float noise from summing rates) and then made
//! monotonic (a bucket never holds fewer observations than a narrower one), the rank
//! `q × total` located by binary search, and a linear interpolation inside that bucket. The
//! first bucket's lower bound is 0 when its upper bound is positive; a quantile in the `+Inf`
//! bucket is the highest finite bound (nothing better is known). Where PromQL answers NaN
//! this answers why, so the check reports an error a user can act on.

/// Why a histogram has no quantile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoQuantile {
    /// No `le="+Inf"` bucket: the total number of observations is unknown.
    NoInfBucket,
    /// Only the `+Inf` bucket: no finite bound to place the quantile at.
    NoFiniteBucket,
    /// No observations in the buckets (no traffic).
    Empty,
}

/// Relative difference below which two successive cumulative counts are the same count.
const PRECISION: f64 = 1e-12;

/// The `q` quantile of a histogram given as cumulative counts per finite upper bound
/// (`finite`, in any order, bounds may repeat) and the count of the `+Inf` bucket (`None`
/// when the histogram has none). `q` outside [0, 1] gives -Inf or +Inf, NaN gives NaN, as in
/// PromQL.
pub fn bucket_quantile(q: f64, finite: &[(f64, f64)], inf: Option<f64>) -> Result<f64, NoQuantile> {
    if q.is_nan() {
        return Ok(f64::NAN);
    }
    if q < 0.0 {
        return Ok(f64::NEG_INFINITY);
    }
    if q > 1.0 {
        return Ok(f64::INFINITY);
    }
    let inf = inf.ok_or(NoQuantile::NoInfBucket)?;
    let mut buckets = merge(finite.iter().copied());
    buckets.push((f64::INFINITY, inf));
    if buckets.len() < 2 {
        return Err(NoQuantile::NoFiniteBucket);
    }
    settle_precision(&mut buckets);
    make_monotonic(&mut buckets);
    let total = buckets[buckets.len() - 1].1;
    if total <= 0.0 {
        return Err(NoQuantile::Empty);
    }
    let rank = q * total;
    let last = buckets.len() - 1;
    // The first bucket holding the rank; the +Inf bucket when no finite one does.
    let b = buckets[..last].partition_point(|&(_, count)| count < rank);
    if b == last {
        return Ok(buckets[last - 1].0);
    }
    let (upper, count) = buckets[b];
    if b == 0 && upper <= 0.0 {
        return Ok(upper);
    }
    let (lower, below) = if b == 0 { (0.0, 0.0) } else { buckets[b - 1] };
    let inside = count - below;
    if inside <= 0.0 {
        // Only when q = 0 and the first bucket is empty (PromQL: 0/0, NaN): its lower bound.
        return Ok(lower);
    }
    Ok(lower + (upper - lower) * ((rank - below) / inside))
}

/// Sorts `(bound, count)` pairs by bound and sums the counts of equal bounds: the per-bound
/// total over series and over scrapes.
pub fn merge(pairs: impl IntoIterator<Item = (f64, f64)>) -> Vec<(f64, f64)> {
    let mut all: Vec<(f64, f64)> = pairs.into_iter().collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, f64)> = Vec::with_capacity(all.len());
    for (bound, count) in all {
        match out.last_mut() {
            Some(last) if last.0 == bound => last.1 += count,
            _ => out.push((bound, count)),
        }
    }
    out
}

/// A count that differs from the previous kept count by a relative [`PRECISION`] or less is
/// float noise: it takes that count, so noise never looks like a (non-)monotonic step.
fn settle_precision(buckets: &mut [(f64, f64)]) {
    let mut kept = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        let delta = (b.1 - kept).abs();
        if delta == 0.0 {
            continue;
        }
        if delta / b.1 <= PRECISION {
            b.1 = kept;
        } else {
            kept = b.1;
        }
    }
}

/// Cumulative counts never decrease with the bound; where they do (inconsistent data, a
/// bucket series reset apart from its neighbours), the envelope is used: the binary search
/// needs monotonic counts.
fn make_monotonic(buckets: &mut [(f64, f64)]) {
    let mut max = buckets[0].1;
    for b in buckets.iter_mut().skip(1) {
        if b.1 > max {
            max = b.1;
        } else {
            b.1 = max;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    fn q(q: f64, finite: &[(f64, f64)], inf: f64) -> f64 {
        bucket_quantile(q, finite, Some(inf)).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// 100 observations: 50 ≤ 0.1, 90 ≤ 0.5, 100 ≤ 1.
    const LATENCY: [(f64, f64); 3] = [(0.1, 50.0), (0.5, 90.0), (1.0, 100.0)];

    #[test]
    fn a_quantile_inside_a_bucket_is_interpolated_linearly() {
        // p75: rank 75, in (0.1, 0.5] which holds 40 of them, 25 in: 0.1 + 0.4 × 25/40.
        assert!(close(q(0.75, &LATENCY, 100.0), 0.35));
        // p90 is exactly the upper bound of its bucket.
        assert!(close(q(0.9, &LATENCY, 100.0), 0.5));
        // p99: rank 99 in (0.5, 1], 9 of 10: 0.5 + 0.5 × 0.9.
        assert!(close(q(0.99, &LATENCY, 100.0), 0.95));
    }

    #[test]
    fn the_first_bucket_starts_at_zero_unless_its_bound_is_not_positive() {
        // p25: rank 25 of the first bucket's 50, between 0 and 0.1.
        assert!(close(q(0.25, &LATENCY, 100.0), 0.05));
        assert_eq!(q(0.0, &LATENCY, 100.0), 0.0);
        // A first bound at or below zero is returned as is.
        assert_eq!(q(0.1, &[(-1.0, 10.0), (1.0, 20.0)], 20.0), -1.0);
        assert_eq!(q(0.1, &[(0.0, 10.0), (1.0, 20.0)], 20.0), 0.0);
        // q = 0 with an empty first bucket: its lower bound (PromQL: NaN).
        assert_eq!(q(0.0, &[(0.1, 0.0), (1.0, 5.0)], 5.0), 0.0);
    }

    #[test]
    fn a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() {
        // 10 of 100 observations above 1s: p95 is somewhere above 1s, reported as 1s.
        assert_eq!(q(0.95, &[(0.5, 80.0), (1.0, 90.0)], 100.0), 1.0);
        assert_eq!(q(1.0, &[(0.5, 80.0), (1.0, 90.0)], 100.0), 1.0);
    }

    #[test]
    fn buckets_are_sorted_and_equal_bounds_merged() {
        let shuffled = [(1.0, 100.0), (0.1, 50.0), (0.5, 90.0)];
        assert!(close(q(0.75, &shuffled, 100.0), 0.35));
        // Two series' buckets, summed per bound: the same histogram.
        let two = [
            (0.1, 20.0),
            (0.5, 40.0),
            (1.0, 50.0),
            (0.1, 30.0),
            (0.5, 50.0),
            (1.0, 50.0),
        ];
        assert!(close(q(0.75, &two, 100.0), 0.35));
        assert_eq!(
            merge([(0.5, 1.0), (0.1, 2.0), (0.5, 3.0), (INF, 4.0)]),
            vec![(0.1, 2.0), (0.5, 4.0), (INF, 4.0)]
        );
    }

    #[test]
    fn non_monotonic_counts_use_the_envelope() {
        // 0.5 claims fewer observations than 0.1: taken as 50, so p75 lands in (0.5, 1].
        let broken = [(0.1, 50.0), (0.5, 40.0), (1.0, 100.0)];
        // rank 75: bucket (0.5, 1] holds 100 - 50 = 50, 25 in: 0.5 + 0.5 × 0.5.
        assert!(close(q(0.75, &broken, 100.0), 0.75));
        // An +Inf count below the finite ones is raised to them: p100 is 1s, not 0.05s.
        assert!(close(q(1.0, &[(0.1, 10.0), (1.0, 20.0)], 5.0), 1.0));
    }

    #[test]
    fn float_noise_is_not_a_bucket_step() {
        // 50 and 50 + 1e-13 are the same count: (0.1, 0.5] is empty, and a rank just above 50
        // lands at the start of (0.5, 1], not in the middle of a 1e-13-wide step.
        let noisy = [(0.1, 50.0), (0.5, 50.0 + 1e-13), (1.0, 100.0)];
        let v = q(0.5 + 5e-16, &noisy, 100.0);
        assert!((v - 0.5).abs() < 1e-6, "{v}");
    }

    #[test]
    fn missing_inf_only_inf_and_no_observations_are_reasons_not_numbers() {
        assert_eq!(
            bucket_quantile(0.9, &LATENCY, None),
            Err(NoQuantile::NoInfBucket)
        );
        assert_eq!(
            bucket_quantile(0.9, &[], Some(10.0)),
            Err(NoQuantile::NoFiniteBucket)
        );
        assert_eq!(
            bucket_quantile(0.9, &[(0.1, 0.0), (1.0, 0.0)], Some(0.0)),
            Err(NoQuantile::Empty)
        );
    }

    #[test]
    fn quantiles_outside_zero_to_one_are_infinite_as_in_promql() {
        assert_eq!(q(-0.1, &LATENCY, 100.0), f64::NEG_INFINITY);
        assert_eq!(q(1.1, &LATENCY, 100.0), INF);
        assert!(q(f64::NAN, &LATENCY, 100.0).is_nan());
    }
}
