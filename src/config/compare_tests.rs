//! `compare` and its keys: defaults, ranges, and every mistake named by its key.

use std::time::Duration;

use crate::config::Probe;
use crate::judge::compare::{Direction, Method};

use crate::config::one_check::{check, errors};

const PROM: &str = "kind = \"prometheus\"\nurl = \"http://prom:9090\"\nquery = \"latency\"\n";
const SCRAPE: &str = "kind = \"scrape\"\nurl = \"http://app/metrics\"\nmetric = \"latency\"\n";

#[test]
fn compare_alone_is_a_rule_with_its_defaults() {
    let c = check(&format!("{PROM}compare = \"mann-whitney\""));
    assert!(c.rules.is_empty());
    let cmp = c.compare.expect("compare");
    assert_eq!(cmp.rule.method, Method::MannWhitney);
    assert_eq!(cmp.rule.direction, Direction::Increase);
    assert_eq!(cmp.rule.confidence, 0.98);
    assert_eq!(cmp.rule.allowed_increase, 1.2);
    assert_eq!(cmp.rule.allowed_decrease, 0.8);
    assert_eq!(cmp.rule.min_samples, 10);
    assert_eq!(cmp.step, Duration::from_secs(5), "the watch's interval");
    match c.probe {
        Probe::Prometheus {
            baseline_window, ..
        } => assert_eq!(baseline_window, Some(Duration::from_secs(600))),
        _ => panic!("prometheus"),
    }
}

#[test]
fn every_key_is_read() {
    let c = check(&format!(
        "{PROM}compare = \"mann-whitney\"\ndirection = \"either\"\nconfidence = 0.95\nallowed_increase = 1.5\nallowed_decrease = 0.5\ncompare_min_samples = 20\nstep = \"15s\"\nbaseline_window = \"30m\"\nmax = 2"
    ));
    let cmp = c.compare.unwrap();
    assert_eq!(cmp.rule.direction, Direction::Either);
    assert_eq!(
        (
            cmp.rule.confidence,
            cmp.rule.allowed_increase,
            cmp.rule.allowed_decrease
        ),
        (0.95, 1.5, 0.5)
    );
    assert_eq!(cmp.rule.min_samples, 20);
    assert_eq!(cmp.step, Duration::from_secs(15));
    assert_eq!(c.rules.len(), 1, "compare plus a threshold");
    let s = check(&format!(
        "{SCRAPE}compare = \"mann-whitney\"\ndirection = \"decrease\""
    ));
    assert_eq!(s.compare.unwrap().rule.direction, Direction::Decrease);
}

#[test]
fn mistakes_are_named_by_key() {
    for (keys, needle) in [
        (
            "compare = \"t-test\"",
            "check[0].compare: unknown comparison \"t-test\"",
        ),
        (
            "compare = \"mann-whitney\"\ndirection = \"up\"",
            "check[0].direction: expected \"increase\"",
        ),
        (
            "compare = \"mann-whitney\"\nconfidence = 1.0",
            "check[0].confidence: 1 is out of range",
        ),
        (
            "compare = \"mann-whitney\"\nconfidence = 0.5",
            "check[0].confidence: 0.5 is out of range",
        ),
        (
            "compare = \"mann-whitney\"\nallowed_increase = 0.9",
            "check[0].allowed_increase: 0.9 is out of range",
        ),
        (
            "compare = \"mann-whitney\"\nallowed_decrease = 1.1",
            "check[0].allowed_decrease: 1.1 is out of range",
        ),
        (
            "compare = \"mann-whitney\"\ncompare_min_samples = 1",
            "check[0].compare_min_samples: must be at least 2",
        ),
        (
            "compare = \"mann-whitney\"\nstep = \"0s\"",
            "check[0].step:",
        ),
        (
            "direction = \"increase\"\nmax = 1",
            "check[0].direction: has no effect without compare",
        ),
        (
            "confidence = 0.9\nmax = 1",
            "check[0].confidence: has no effect without compare",
        ),
        (
            "step = \"5s\"\nmax = 1",
            "check[0].step: has no effect without compare",
        ),
        (
            "compare_min_samples = 5\nmax = 1",
            "check[0].compare_min_samples: has no effect without compare",
        ),
        (
            "baseline_window = \"5m\"\nmax = 1",
            "check[0].baseline_window: has no effect without max_ratio, min_ratio, compare or control_query",
        ),
    ] {
        let e = errors(&format!("{PROM}{keys}"));
        assert!(e.contains(needle), "{keys}: missing {needle:?} in:\n{e}");
    }
    let e = errors(&format!(
        "{SCRAPE}compare = \"mann-whitney\"\nstep = \"5s\""
    ));
    assert!(
        e.contains("check[0].step: is not a setting of scrape checks"),
        "{e}"
    );
    let e = errors("kind = \"http\"\nurl = \"http://app\"\ncompare = \"mann-whitney\"");
    assert!(
        e.contains("check[0].compare: is not a setting of http checks"),
        "{e}"
    );
    let e = errors(PROM);
    assert!(
        e.contains("set max, min, max_ratio, min_ratio or compare"),
        "{e}"
    );
}
