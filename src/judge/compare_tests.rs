use super::*;

fn rule(direction: Direction) -> Compare {
    Compare {
        method: Method::MannWhitney,
        direction,
        confidence: 0.98,
        allowed_increase: 1.2,
        allowed_decrease: 0.8,
        min_samples: 10,
        overlap: 1.0,
    }
}

/// A deterministic noisy series around `level` (±10%).
fn noisy(level: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| level * (0.9 + 0.2 * rng.f64())).collect()
}

#[test]
fn a_fifty_percent_rise_fails_with_readable_evidence() {
    let (o, c) = judge(
        &rule(Direction::Increase),
        &noisy(0.1, 30, 1),
        &noisy(0.15, 20, 2),
    );
    let c = c.expect("compared");
    assert!(c.significant && c.failed, "{c:?}");
    let Outcome::Fail { limit } = o else {
        panic!("{o:?}")
    };
    assert!(
        limit.starts_with("mann-whitney: post > pre, p = "),
        "{limit}"
    );
    assert!(limit.contains("(needs < 0.02)"), "{limit}");
    assert!(limit.contains("(allowed ×1.2)"), "{limit}");
    assert!(limit.ends_with("FAIL"), "{limit}");
    assert!(
        c.shift > 0.03 && c.shift_low > 0.0 && c.shift_high < 0.08,
        "{c:?}"
    );
    assert_eq!((c.n_pre, c.n_post), (30, 20));
}

#[test]
fn a_significant_but_small_rise_passes() {
    let pre = noisy(0.1, 400, 3);
    let post = noisy(0.11, 400, 4);
    let (o, c) = judge(&rule(Direction::Increase), &pre, &post);
    let c = c.expect("compared");
    assert!(c.significant, "{c:?}");
    assert_eq!(o, Outcome::Pass);
    assert!(c.describe().contains("within the allowance"));
}

#[test]
fn unchanged_passes_and_direction_matters() {
    let pre = noisy(0.1, 50, 5);
    let (o, c) = judge(&rule(Direction::Increase), &pre, &noisy(0.1, 50, 6));
    assert_eq!(o, Outcome::Pass);
    assert!(!c.unwrap().significant);
    let down = noisy(0.05, 30, 7);
    assert_eq!(
        judge(&rule(Direction::Increase), &pre, &down).0,
        Outcome::Pass
    );
    assert!(matches!(
        judge(&rule(Direction::Decrease), &pre, &down).0,
        Outcome::Fail { .. }
    ));
    assert!(matches!(
        judge(&rule(Direction::Either), &pre, &down).0,
        Outcome::Fail { .. }
    ));
    assert!(matches!(
        judge(&rule(Direction::Either), &pre, &noisy(0.3, 30, 8)).0,
        Outcome::Fail { .. }
    ));
}

#[test]
fn too_few_samples_is_no_data_with_the_counts() {
    let (o, c) = judge(
        &rule(Direction::Increase),
        &noisy(0.1, 30, 9),
        &[0.5, 0.6, f64::NAN, f64::INFINITY],
    );
    assert!(c.is_none());
    let Outcome::NoData { reason } = o else {
        panic!("{o:?}")
    };
    assert!(
        reason.contains("30 pre-deployment, 2 post-deployment"),
        "{reason}"
    );
}

#[test]
fn from_zero_a_significant_rise_fails_and_all_zero_passes() {
    let zeros = vec![0.0; 20];
    let (o, c) = judge(&rule(Direction::Increase), &zeros, &noisy(0.01, 20, 10));
    assert!(matches!(o, Outcome::Fail { .. }), "{o:?}");
    let c = c.unwrap();
    assert_eq!(c.mean_ratio, None);
    assert!(c.describe().contains("mean 0 → "), "{}", c.describe());
    let (o, c) = judge(&rule(Direction::Either), &zeros, &zeros);
    assert_eq!(o, Outcome::Pass);
    assert_eq!(c.unwrap().p_value, 1.0);
}

#[test]
fn sample_sets_are_capped_newest_first() {
    let pre: Vec<f64> = (0..2000).map(f64::from).collect();
    let (_, c) = judge(&rule(Direction::Either), &pre, &pre);
    let c = c.unwrap();
    assert_eq!((c.n_pre, c.n_post), (MAX_SAMPLES, MAX_SAMPLES));
    assert_eq!(c.pre.len(), EVIDENCE_SAMPLES);
    assert_eq!(c.pre.last(), Some(&1999.0));
    assert_eq!(c.pre[0], 1800.0);
}

#[test]
fn overlapping_points_weigh_as_fewer_independent_ones() {
    // A rise significant for 30 and 20 independent points...
    let (pre, post) = (noisy(0.1, 30, 1), noisy(0.105, 20, 2));
    let independent = rule(Direction::Increase);
    let (_, c) = judge(&independent, &pre, &post);
    let c = c.expect("compared");
    assert!(c.significant, "{c:?}");
    // ...is not when every six neighbours read one window (1m rates at a 10s step).
    let overlapping = Compare {
        overlap: 6.0,
        ..independent
    };
    let (o, d) = judge(&overlapping, &pre, &post);
    let d = d.expect("compared");
    assert!(!d.significant && o == Outcome::Pass, "{d:?}");
    assert!(d.p_value > c.p_value);
    assert_eq!(d.u, c.u, "the statistic itself is unchanged");
    assert!(d.describe().contains("overlaps ×6"), "{}", d.describe());
}
