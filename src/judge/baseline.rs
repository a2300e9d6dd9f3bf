//! The pre-deployment baseline: what "normal" looked like for this service.

/// Mean of the finite values; `None` when there are none (no data is not zero).
///
/// NaN and infinities are dropped rather than poisoning the mean: a `rate()` over a gap or a
/// division by zero traffic yields NaN for single points, and one bad point must not make the
/// whole baseline unusable.
pub fn mean(values: &[f64]) -> Option<f64> {
    let (sum, n) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_values() {
        assert_eq!(mean(&[1.0, 2.0, 3.0]), Some(2.0));
    }

    #[test]
    fn empty_is_none_not_zero() {
        assert_eq!(mean(&[]), None);
        assert_eq!(mean(&[f64::NAN, f64::INFINITY]), None);
    }

    #[test]
    fn non_finite_points_are_skipped() {
        assert_eq!(mean(&[2.0, f64::NAN, 4.0, f64::NEG_INFINITY]), Some(3.0));
    }
}
