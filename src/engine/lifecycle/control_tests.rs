//! The control in the lifecycle: the control's baseline is kept once read, a failure the
//! control shared is no data and never condemns, a failure it did not share condemns, and an
//! unreadable control excuses nothing.

use super::*;
use crate::config::ControlConfig;
use crate::judge::Outcome;

/// The config with "errors" (max 1.0) controlled by another region's errors.
fn control_config() -> WatchConfig {
    let mut cfg = config("");
    cfg.checks[1].control = Some(ControlConfig {
        query: "other_region_errors".into(),
        url: "http://127.0.0.1:1".into(),
        tolerance: 0.5,
        baseline_window: std::time::Duration::from_secs(600),
        timeout: std::time::Duration::from_millis(500),
    });
    cfg
}

/// A round: "errors" reads `value` (with its baseline, 1.0, in round 0), the control
/// `control`, and the control's baseline when given.
fn control_round(
    at: i64,
    value: f64,
    control: Result<f64, String>,
    control_baseline: Option<Result<f64, String>>,
) -> Event {
    let Event::Round(mut r) = round(at, 200) else {
        unreachable!()
    };
    let errors = &mut r.checks[1];
    errors.reading = Ok(crate::judge::Reading::Value(value));
    errors.baseline = (at == 0).then_some(Ok(Some(1.0)));
    errors.control = Some(ControlReading {
        now: control,
        baseline: control_baseline,
    });
    Event::Round(r)
}

/// Three rounds of errors at 3.0 (3x), the control at `control` (baseline 10 from round 0).
fn three_rounds(control: f64) -> Vec<(i64, Event)> {
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..3).map(|s| {
        let baseline = (s == 0).then_some(Ok(10.0));
        (s, control_round(s, 3.0, Ok(control), baseline))
    }));
    events
}

#[test]
fn a_failure_the_world_shared_is_no_data_and_never_condemns() {
    let cfg = control_config();
    let (r, _) = run(&cfg, WatchRecord::default(), three_rounds(31.0));
    let obs = r.observation.as_ref().unwrap();
    assert!(obs.condemned.is_none());
    let track = &obs.tracker.checks[1];
    assert_eq!((track.no_data, track.failures), (3, 0));
    assert_eq!(
        track.control_baseline,
        Some(10.0),
        "kept from the first round"
    );
    let Outcome::NoData { reason } = &track.samples[2].outcome else {
        panic!("{:?}", track.samples[2])
    };
    assert!(
        reason.starts_with("the world, not us: control up 3.1x too"),
        "{reason}"
    );
}

#[test]
fn a_failure_the_world_did_not_share_condemns() {
    let cfg = control_config();
    let (r, _) = run(&cfg, WatchRecord::default(), three_rounds(10.0));
    let obs = r.observation.as_ref().unwrap();
    assert!(obs.condemned.is_some(), "{:?}", obs.tracker.checks[1]);
}

#[test]
fn an_unreadable_control_excuses_nothing_until_it_is_read() {
    let cfg = control_config();
    let events = vec![
        (0, Event::Deployment(learned("R2", "D2", 0))),
        (
            0,
            control_round(0, 3.0, Ok(31.0), Some(Err("prometheus down".into()))),
        ),
        (1, control_round(1, 3.0, Err("timed out".into()), None)),
        (2, control_round(2, 3.0, Ok(31.0), Some(Ok(10.0)))),
    ];
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    let track = &r.observation.as_ref().unwrap().tracker.checks[1];
    let labels: Vec<_> = track
        .samples
        .iter()
        .map(|s| format!("{:?}", s.outcome))
        .collect();
    assert!(
        labels[0].contains("Fail")
            && labels[0].contains("its baseline is unavailable: prometheus down"),
        "{labels:?}"
    );
    assert!(
        labels[1].contains("Fail") && labels[1].contains("control unreadable (timed out)"),
        "{labels:?}"
    );
    assert!(labels[2].contains("NoData"), "{labels:?}");
}
