use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::sinks::{testing, AlertKind};

fn evidence() -> Evidence {
    testing::alert(AlertKind::Condemned).evidence.unwrap()
}

fn sample(secs: i64, outcome: Outcome) -> Sample {
    Sample {
        at: Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap() + Duration::seconds(secs),
        value: Some(1.0),
        outcome,
        mixed: false,
        note: None,
        alerts: vec![],
    }
}

fn fail() -> Outcome {
    Outcome::Fail { limit: "x".into() }
}

#[test]
fn the_condemning_run_goes_back_to_the_last_pass_through_errors() {
    let err = || Outcome::Error {
        reason: "e".into(),
        late: false,
    };
    let s = [
        sample(0, fail()),
        sample(1, Outcome::Pass),
        sample(2, fail()),
        sample(3, err()),
        sample(4, fail()),
        sample(5, fail()),
        sample(6, err()),
    ];
    let run = condemning_run(&s).unwrap();
    assert_eq!((run.from, run.to), (s[2].at, s[5].at));
    assert_eq!(condemning_run(&s[..2]), None);
}

#[test]
fn thresholds_follow_the_rules_and_ratios_need_the_baseline() {
    let rules = [
        Rule::Max(0.5),
        Rule::MaxRatio(2.0),
        Rule::ExpectStatus(vec![200, 204]),
    ];
    let t = thresholds(&rules, Some(0.12));
    let values: Vec<f64> = t.iter().map(|t| t.value).collect();
    assert_eq!(values, [0.5, 0.24, 200.0, 204.0]);
    assert_eq!(t[1].label, "max 2 × baseline = 0.24");
    assert_eq!(t[2].bound, Bound::Expected);
    assert_eq!(thresholds(&rules, None).len(), 3);
    assert_eq!(thresholds(&[Rule::Min(3.0)], None)[0].bound, Bound::Lower);
}

#[test]
fn a_chart_falls_back_to_the_recent_samples_and_finds_the_condemning_run() {
    let ev = evidence();
    let c = chart("chart-0", &ev, &ev.checks[0], &Extras::default());
    assert_eq!(c.points.len(), 4);
    assert_eq!(c.unit, "HTTP status");
    assert_eq!(c.thresholds[0].label, "expected 200");
    let (from, to) = c.condemning.unwrap();
    assert_eq!((from, to), (c.points[1].at, c.points[3].at));
    assert_eq!(c.points.iter().filter(|p| p.condemning).count(), 3);
    assert!(!c.points[0].condemning);
    assert_eq!(c.moments[0].label, "deployed Releases-2");
    // The latency check: no condemning run, its error in the lane, the ratio limit drawn.
    let l = chart("chart-1", &ev, &ev.checks[1], &Extras::default());
    assert_eq!(l.condemning, None);
    assert_eq!(l.points[1].value, None);
    assert_eq!(l.points[1].state, State::Error);
    assert_eq!(l.baseline.as_ref().unwrap().window, None);
    assert_eq!(l.thresholds.len(), 2);
}

#[test]
fn the_contracts_fuller_fields_are_used_when_present() {
    let ev = evidence();
    let mut doc = serde_json::to_value(&ev).unwrap();
    let series: Vec<Value> = (0..30)
        .map(|i| {
            json!({"at": format!("2024-05-01T11:59:{:02}Z", i), "value": 0.1, "result": "pass"})
        })
        .collect();
    doc["checks"][1]["series"] = json!(series);
    doc["checks"][1]["before"] = json!({
        "from": "2024-05-01T11:57:00Z", "to": "2024-05-01T11:59:00Z",
        "points": [["2024-05-01T11:57:00Z", 0.11], ["2024-05-01T11:58:00Z", 0.13]]
    });
    doc["checks"][1]["condemning"] =
        json!({"from": "2024-05-01T11:59:10Z", "to": "2024-05-01T11:59:20Z"});
    doc["checks"][0]["series"] = json!("not a list");
    let x1 = Extras::read(&doc["checks"][1]);
    assert_eq!(x1.series.as_ref().unwrap().len(), 30);
    assert_eq!(x1.before.as_ref().unwrap().points.len(), 2);
    assert!(x1.condemning.is_some());
    let x0 = Extras::read(&doc["checks"][0]);
    assert_eq!(x0, Extras::default(), "a malformed field is ignored alone");
    let c = chart("chart-1", &ev, &ev.checks[1], &x1);
    assert_eq!(c.points.len(), 30);
    let b = c.baseline.unwrap();
    assert_eq!(b.points.len(), 2);
    assert_eq!(
        b.window.unwrap().0,
        Utc.with_ymd_and_hms(2024, 5, 1, 11, 57, 0).unwrap()
    );
    assert!(c.condemning.is_some());
    // Today's documents have none of them.
    assert_eq!(Extras::of(&ev), vec![Extras::default(), Extras::default()]);
}

#[test]
fn the_deciding_check_comes_first() {
    let mut ev = evidence();
    ev.checks.swap(0, 1);
    assert_eq!(order(&ev.checks), [1, 0]);
    ev.checks[1].track.limit_hit = None;
    ev.checks[1].track.failures = 0;
    assert_eq!(order(&ev.checks), [0, 1]);
}

#[test]
fn units_say_what_is_measured() {
    assert_eq!(unit("http", None), "HTTP status");
    assert_eq!(
        unit(
            "prometheus",
            Some("histogram_quantile(0.9, rate(x_seconds_bucket[1m]))")
        ),
        "seconds"
    );
    assert_eq!(unit("scrape", Some("ratio of a / b")), "ratio");
    assert_eq!(unit("prometheus", Some("up")), "value");
    assert_eq!(unit("slo", Some("99.9%")), "error-budget burn rate (×)");
}

#[test]
fn the_rollback_moment_comes_from_the_timeline() {
    let mut ev = evidence();
    assert_eq!(rollback_moment(&ev), None);
    let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 1).unwrap();
    ev.timeline.push(crate::evidence::TimelineEntry {
        at,
        event: "deploying: policy rollback (condemned Releases-2)".into(),
    });
    let m = rollback_moment(&ev).unwrap();
    assert_eq!((m.at, m.label.as_str()), (at, "rollback"));
}
