//! The statistics against scipy: `tests/data/mannwhitney.json`, written by
//! `tests/data/gen_mannwhitney.py` (scipy's `mannwhitneyu` with `method="asymptotic"` and
//! `use_continuity=True`, numpy's median of the pairwise differences).

use serde::Deserialize;

use super::*;

/// Agreement demanded with scipy: U, p and the shift estimate.
const TOLERANCE: f64 = 1e-9;

#[derive(Deserialize)]
struct Vectors {
    cases: Vec<Case>,
    sf: Vec<(f64, f64)>,
    ppf: Vec<(f64, f64)>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    x: Vec<f64>,
    y: Vec<f64>,
    hl: f64,
    interval_90: (f64, f64),
    interval_98: (f64, f64),
    greater: Expected,
    less: Expected,
    #[serde(rename = "two-sided")]
    two_sided: Expected,
}

#[derive(Deserialize)]
struct Expected {
    u: f64,
    p: f64,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("../../tests/data/mannwhitney.json"))
        .expect("tests/data/mannwhitney.json parses")
}

fn close(what: &str, case: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{case}: {what} = {got}, scipy says {want} (diff {:e})",
        (got - want).abs()
    );
}

#[test]
fn u_and_p_match_scipy_for_every_alternative() {
    let v = vectors();
    assert!(v.cases.len() >= 50, "{} cases", v.cases.len());
    for c in &v.cases {
        for (alt, want, label) in [
            (Alternative::Greater, &c.greater, "greater"),
            (Alternative::Less, &c.less, "less"),
            (Alternative::TwoSided, &c.two_sided, "two-sided"),
        ] {
            let got = mann_whitney(&c.x, &c.y, alt);
            close(&format!("U ({label})"), &c.name, got.u, want.u);
            close(&format!("p ({label})"), &c.name, got.p, want.p);
        }
    }
}

#[test]
fn hodges_lehmann_matches_the_median_of_pairwise_differences() {
    for c in &vectors().cases {
        let s90 = hodges_lehmann(&c.x, &c.y, 0.9).expect("non-empty");
        close("HL estimate", &c.name, s90.estimate, c.hl);
        close("90% low", &c.name, s90.low, c.interval_90.0);
        close("90% high", &c.name, s90.high, c.interval_90.1);
        let s98 = hodges_lehmann(&c.x, &c.y, 0.98).expect("non-empty");
        close("98% low", &c.name, s98.low, c.interval_98.0);
        close("98% high", &c.name, s98.high, c.interval_98.1);
        assert!(s98.low <= s90.low && s90.high <= s98.high, "{}", c.name);
        assert!(
            s90.low <= s90.estimate && s90.estimate <= s90.high,
            "{}",
            c.name
        );
    }
}

#[test]
fn the_normal_distribution_matches_scipy() {
    let v = vectors();
    for (z, want) in v.sf {
        let got = normal_sf(z);
        // Relative as well: the tails are where small p-values live.
        assert!(
            (got - want).abs() <= TOLERANCE && (got - want).abs() <= 1e-12 * want.max(1e-300),
            "sf({z}) = {got}, scipy {want}"
        );
    }
    for (p, want) in v.ppf {
        close("ppf", &p.to_string(), normal_quantile(p), want);
    }
}

#[test]
fn empty_sides_and_edges_do_not_panic() {
    assert_eq!(mann_whitney(&[], &[1.0], Alternative::Greater).p, 1.0);
    assert_eq!(hodges_lehmann(&[1.0], &[], 0.9), None);
    assert_eq!(erfc(0.0), 1.0);
    assert_eq!(erfc(f64::INFINITY), 0.0);
    assert_eq!(erfc(f64::NEG_INFINITY), 2.0);
    assert!(normal_quantile(0.0).is_infinite() && normal_quantile(1.0).is_infinite());
}
