//! The judgement defaults derived from a check's query: `min_failure_for` from its look-back,
//! `compare`'s overlap, and `baseline_floor`.

use std::time::Duration;

use crate::config::one_check::{check, errors};

const PROM: &str = r#"kind = "prometheus"
url = "http://prom:9090"
"#;

#[test]
fn a_range_query_must_fail_for_half_its_look_back_by_default() {
    let c = check(&format!("{PROM}query = 'sum(rate(e[1m]))'\nmax = 1"));
    assert_eq!(c.min_failure_for, Duration::from_secs(30), "1m / 2");
    // An instant query reads new data every round: the fast confirmation stays.
    let c = check(&format!("{PROM}query = 'up'\nmax = 1"));
    assert_eq!(
        c.min_failure_for,
        Duration::from_secs(2),
        "2 x 1s fast rounds"
    );
    // Never more than half the window (10m here).
    let c = check(&format!("{PROM}query = 'sum(rate(e[1h]))'\nmax = 1"));
    assert_eq!(c.min_failure_for, Duration::from_secs(300));
    // An explicit value wins, shorter or longer.
    let c = check(&format!(
        "{PROM}query = 'sum(rate(e[1m]))'\nmax = 1\nmin_failure_for = \"5s\""
    ));
    assert_eq!(c.min_failure_for, Duration::from_secs(5));
    // http checks keep the fast confirmation: a dead application is rolled back at once.
    let c = check("kind = \"http\"\nurl = \"http://app/health\"");
    assert_eq!(c.min_failure_for, Duration::from_secs(2));
}

#[test]
fn compare_counts_overlapping_points_by_look_back_over_step() {
    let c = check(&format!(
        "{PROM}query = 'sum(rate(e[1m]))'\ncompare = \"mann-whitney\"\nstep = \"10s\""
    ));
    assert_eq!(c.compare.unwrap().rule.overlap, 6.0);
    let c = check(&format!(
        "{PROM}query = 'sum(rate(e[1m]))'\ncompare = \"mann-whitney\"\nstep = \"2m\""
    ));
    assert_eq!(
        c.compare.unwrap().rule.overlap,
        1.0,
        "points that do not overlap"
    );
    let c = check(&format!("{PROM}query = 'up'\ncompare = \"mann-whitney\""));
    assert_eq!(c.compare.unwrap().rule.overlap, 1.0, "an instant query");
}

#[test]
fn baseline_floor_goes_with_a_ratio_rule() {
    let c = check(&format!(
        "{PROM}query = 'e'\nmax_ratio = 3\nbaseline_floor = 0.005"
    ));
    assert_eq!(c.baseline_floor, Some(0.005));
    assert_eq!(
        check(&format!("{PROM}query = 'e'\nmax_ratio = 3")).baseline_floor,
        None
    );
    let e = errors(&format!(
        "{PROM}query = 'e'\nmax = 3\nbaseline_floor = 0.005"
    ));
    assert!(
        e.contains("baseline_floor") && e.contains("without max_ratio"),
        "{e}"
    );
    let e = errors(&format!(
        "{PROM}query = 'e'\nmax_ratio = 3\nbaseline_floor = -1"
    ));
    assert!(e.contains("at least 0"), "{e}");
    let e = errors("kind = \"http\"\nurl = \"http://app/\"\nbaseline_floor = 1");
    assert!(e.contains("not a setting of http"), "{e}");
}
