use chrono::{DateTime, Duration, Utc};

use super::*;
use crate::sinks::{testing, AlertKind};

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + Duration::seconds(secs)
}

fn sample(secs: i64, fail: bool) -> Sample {
    Sample {
        at: t(secs),
        value: Some(secs as f64),
        outcome: if fail {
            Outcome::Fail {
                limit: "value > max".into(),
            }
        } else {
            Outcome::Pass
        },
        mixed: false,
        note: None,
        alerts: Vec::new(),
    }
}

fn ordered(s: &[Sample]) -> bool {
    s.windows(2).all(|w| w[0].at < w[1].at)
}

#[test]
fn downsampling_honours_the_cap_keeps_order_failures_and_the_run() {
    // 10,000 samples; every 97th fails; the run is the last 30.
    let samples: Vec<Sample> = (0..10_000).map(|i| sample(i, i % 97 == 0)).collect();
    let run = Span {
        from: t(9_970),
        to: t(9_999),
    };
    let out = downsample(samples.clone(), 500, Some(&run));
    assert!(out.len() <= 500 && out.len() > 400, "{}", out.len());
    assert!(ordered(&out));
    let failures = samples
        .iter()
        .filter(|s| s.at.timestamp() % 97 == 0)
        .count();
    assert_eq!(
        out.iter()
            .filter(|s| matches!(s.outcome, Outcome::Fail { .. }))
            .count(),
        failures
    );
    assert_eq!(out.iter().filter(|s| run.contains(s.at)).count(), 30);
    assert_eq!(out.first().unwrap().at, t(0), "the first is kept");
    // The rest is spread evenly in time: no gap much wider than the average.
    let gaps: Vec<i64> = out
        .windows(2)
        .map(|w| (w[1].at - w[0].at).num_seconds())
        .collect();
    assert!(*gaps.iter().max().unwrap() <= 2 * 10_000 / 400, "{gaps:?}");
}

#[test]
fn downsampling_below_the_cap_changes_nothing_and_too_many_failures_are_thinned() {
    let few: Vec<Sample> = (0..10).map(|i| sample(i, false)).collect();
    assert_eq!(downsample(few.clone(), 10, None), few);
    let all_failing: Vec<Sample> = (0..100).map(|i| sample(i, true)).collect();
    let run = Span {
        from: t(90),
        to: t(99),
    };
    let out = downsample(all_failing, 20, Some(&run));
    assert_eq!(out.len(), 20);
    assert!(ordered(&out));
    assert_eq!(out.iter().filter(|s| run.contains(s.at)).count(), 10);
    assert!(downsample((0..5).map(|i| sample(i, true)).collect(), 0, None).is_empty());
}

#[test]
fn carry_survives_a_restart_and_a_reordering_reload() {
    let ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
    let mut stored = ev.checks.clone();
    stored[0].series = (0..50).map(|i| sample(i, false)).collect();
    stored[1].before = Some(BeforeSeries {
        from: t(-600),
        to: t(0),
        points: vec![(t(-600), 0.1), (t(-300), 0.12)],
    });
    // After a restart the tracker holds the newest samples again, some already stored; a
    // reload put the checks in another order.
    let mut fresh = vec![ev.checks[1].clone(), ev.checks[0].clone()];
    fresh[1].track.samples = (45..60).map(|i| sample(i, i >= 57)).collect();
    carry(&stored, &mut fresh, &[]);
    let health = &fresh[1];
    // What the tracker holds, for the store to append (it keeps what it already has).
    assert_eq!(
        health.series,
        health.track.samples.iter().cloned().collect::<Vec<_>>()
    );
    assert!(ordered(&health.series));
    assert_eq!(
        fresh[0].before, stored[1].before,
        "kept from the stored document"
    );
    assert!(health.before.is_none());
    // A before fetched this round replaces the stored one, capped.
    let big = BeforeSeries {
        from: t(-5_000),
        to: t(0),
        points: (0..5_000).map(|i| (t(i - 5_000), i as f64)).collect(),
    };
    carry(&stored, &mut fresh, &[("latency".into(), big)]);
    let b = fresh[0].before.as_ref().unwrap();
    assert_eq!(b.points.len(), MAX_BEFORE);
    assert_eq!(b.points[0].0, t(-5_000));
    assert_eq!(b.points.last().unwrap().0, t(-1));
}

#[test]
fn the_new_fields_round_trip_and_old_documents_still_read() {
    let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
    let old = serde_json::to_value(&ev).unwrap();
    assert!(old["checks"][0].get("series").is_none());
    assert!(old["checks"][0].get("before").is_none());
    let back: crate::evidence::Evidence = serde_json::from_value(old).unwrap();
    assert_eq!(back, ev);
    ev.checks[0].series = vec![sample(1, true)];
    ev.checks[0].track.condemning = Some(Span {
        from: t(1),
        to: t(1),
    });
    ev.checks[1].before = Some(BeforeSeries {
        from: t(-60),
        to: t(0),
        points: vec![(t(-60), 0.5)],
    });
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["checks"][0]["series"][0]["value"], 1.0);
    assert_eq!(v["checks"][0]["series"][0]["result"], "fail");
    assert_eq!(v["checks"][0]["condemning"]["from"], "1970-01-01T00:00:01Z");
    assert_eq!(
        v["checks"][1]["before"]["points"][0],
        serde_json::json!(["1969-12-31T23:59:00Z", 0.5])
    );
    let back: crate::evidence::Evidence = serde_json::from_value(v).unwrap();
    assert_eq!(back, ev);
}

#[test]
fn the_series_keeps_an_alert_checks_counts_not_its_label_sets() {
    let mut with_alerts = sample(1, true);
    with_alerts.alerts = vec![crate::judge::alerts::SeenAlert {
        name: "ShopDown".into(),
        labels: [("service".to_string(), "shop".to_string())].into(),
        since: t(0),
        seen: crate::judge::alerts::Seen::New,
    }];
    let ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
    let mut fresh = ev.checks.clone();
    fresh[0].track.samples = [with_alerts.clone()].into();
    carry(&ev.checks, &mut fresh, &[]);
    assert_eq!(fresh[0].series.len(), 1);
    assert!(fresh[0].series[0].alerts.is_empty());
    assert_eq!(fresh[0].series[0].value, with_alerts.value);
    assert_eq!(fresh[0].series[0].outcome, with_alerts.outcome);
    assert_eq!(fresh[0].track.samples[0].alerts.len(), 1, "kept in samples");
}
