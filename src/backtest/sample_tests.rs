use super::*;
use crate::judge::alerts::Seen;

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> RangeSeries {
    RangeSeries {
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        points: points.iter().map(|(s, v)| (at(*s), *v)).collect(),
    }
}

/// A grid from t0 every 10s.
fn grid(s: Vec<RangeSeries>) -> Grid {
    Grid {
        start: t0(),
        step: Duration::from_secs(10),
        series: Ok(s),
    }
}

#[test]
fn the_value_at_a_time_is_the_point_of_the_newest_step_before_it() {
    let g = grid(vec![series(&[], &[(0, 1.0), (10, 2.0), (30, 4.0)])]);
    assert_eq!(g.value_at(at(0)).unwrap(), 1.0);
    assert_eq!(g.value_at(at(10)).unwrap(), 2.0);
    assert_eq!(g.value_at(at(15)).unwrap(), 2.0, "between steps");
    // The step at 20 has no point: an instant query then found nothing.
    assert_eq!(g.value_at(at(20)), Err(ProbeError::NoData));
    assert_eq!(g.value_at(at(25)), Err(ProbeError::NoData));
    assert_eq!(g.value_at(at(30)).unwrap(), 4.0);
    assert_eq!(g.value_at(at(45)), Err(ProbeError::NoData), "past the end");
    assert_eq!(
        g.value_at(at(-5)),
        Err(ProbeError::NoData),
        "before the start"
    );
}

#[test]
fn several_series_and_non_numbers_are_what_an_instant_query_makes_of_them() {
    let g = grid(vec![
        series(&[("pod", "a")], &[(0, 1.0), (10, 1.0)]),
        series(&[("pod", "b")], &[(10, 1.0), (20, f64::NAN)]),
    ]);
    assert_eq!(g.value_at(at(0)).unwrap(), 1.0, "one series at that step");
    assert_eq!(g.value_at(at(10)), Err(ProbeError::MultipleSeries(2)));
    let nan = g.value_at(at(20)).unwrap_err();
    assert!(nan.is_no_data(), "NaN is no data: {nan}");
    let failed = Grid {
        series: Err(ProbeError::Timeout(Duration::from_secs(1))),
        ..grid(vec![])
    };
    assert!(matches!(
        failed.value_at(at(0)),
        Err(ProbeError::Timeout(_))
    ));
}

#[test]
fn a_prometheus_check_reads_its_value_traffic_control_and_baseline() {
    let h = History::Prometheus(Box::new(PromHistory {
        reading: grid(vec![series(&[], &[(0, 0.5)])]),
        baseline: Some(Ok(Some(0.1))),
        compare: None,
        traffic: Some(grid(vec![series(&[], &[(0, 3.0)])])),
        control: Some((grid(vec![]), Ok(2.0))),
    }));
    let r = check_result("errors", &h, at(0));
    assert_eq!(r.name, "errors");
    assert_eq!(r.reading, Ok(Reading::Value(0.5)));
    assert_eq!(r.baseline, Some(Ok(Some(0.1))));
    assert_eq!(r.traffic, Some(Ok(3.0)));
    let control = r.control.unwrap();
    assert_eq!(control.baseline, Some(Ok(2.0)));
    assert!(control.now.unwrap_err().contains("no data"));
    let later = check_result("errors", &h, at(10));
    let u = later.reading.unwrap_err();
    assert!(u.empty && !u.app_down, "{u:?}");
}

#[test]
fn compare_post_samples_grow_from_their_start_and_keep_the_newest() {
    let c = CompareHistory {
        pre: Ok(vec![1.0, 1.0]),
        post: grid(vec![series(
            &[],
            &[(0, 1.0), (10, 2.0), (20, 3.0), (30, f64::NAN), (40, 5.0)],
        )]),
        from: at(10),
        cap: Duration::from_secs(20),
    };
    assert_eq!(
        post_samples(&c, at(5)).unwrap(),
        Vec::<f64>::new(),
        "not started"
    );
    assert_eq!(post_samples(&c, at(10)).unwrap(), Vec::<f64>::new());
    assert_eq!(post_samples(&c, at(20)).unwrap(), vec![2.0, 3.0]);
    assert_eq!(
        post_samples(&c, at(40)).unwrap(),
        vec![3.0, 5.0],
        "the newest 20s, NaN dropped"
    );
}

#[test]
fn alerts_are_active_since_the_start_of_their_run_and_classified_against_the_deployment() {
    let alert = |state: &str, name: &str, points: &[(i64, f64)]| {
        series(
            &[
                ("__name__", "ALERTS"),
                ("alertname", name),
                ("alertstate", state),
                ("service", "shop"),
            ],
            points,
        )
    };
    let g = grid(vec![
        // Old: firing since before the deployment at 25s.
        alert(
            "firing",
            "Old",
            &[(0, 1.0), (10, 1.0), (20, 1.0), (30, 1.0), (40, 1.0)],
        ),
        // New: pending from 30s, firing from 50s: active since 30s.
        alert("pending", "New", &[(30, 1.0), (40, 1.0)]),
        alert("firing", "New", &[(50, 1.0), (60, 1.0)]),
        // Resolved at 20s, back at 40s: a new run.
        alert("firing", "Flap", &[(0, 1.0), (10, 1.0), (40, 1.0)]),
    ]);
    let h = History::Alerts(AlertHistory {
        grid: g.clone(),
        labels: [("service".to_string(), "shop".to_string())].into(),
        include_silenced: false,
        deployed_at: at(25),
    });
    let alerts = alerts_at(&g, at(40)).unwrap();
    let since = |name: &str| {
        alerts
            .iter()
            .find(|a| a.labels["alertname"] == name)
            .map(|a| (a.state.clone(), a.active_at))
    };
    assert_eq!(since("Old"), Some((AlertState::Firing, at(0))));
    assert_eq!(since("New"), Some((AlertState::Pending, at(30))));
    assert_eq!(since("Flap"), Some((AlertState::Firing, at(40))));
    let Ok(Reading::Alerts(r)) = check_result("alerts", &h, at(60)).reading else {
        panic!("an alert reading");
    };
    assert_eq!(r.new, 1, "{r:?}");
    let new = r.alerts.iter().find(|a| a.seen == Seen::New).unwrap();
    assert_eq!((new.name.as_str(), new.since), ("New", at(30)));
    // No series at all: nothing firing, a pass, not "no data".
    let quiet = History::Alerts(AlertHistory {
        grid: grid(vec![]),
        ..match h {
            History::Alerts(a) => a,
            _ => unreachable!(),
        }
    });
    assert!(matches!(
        check_result("alerts", &quiet, at(10)).reading,
        Ok(Reading::Alerts(ref r)) if r.matched == 0
    ));
}
