use super::*;
use crate::engine::lifecycle::tests::{config, learned, round, t};
use crate::engine::lifecycle::{step, Event};

/// Steps `events` from an empty record, returning whether each transition was routine.
fn routines(events: Vec<(i64, Event)>) -> Vec<bool> {
    let cfg = config("");
    let mut r = WatchRecord::default();
    let mut out = Vec::new();
    for (at, e) in events {
        let (next, fx) = step(&cfg, &r, e, t(at));
        out.push(routine(&r, &next, &fx));
        r = next;
    }
    out
}

#[test]
fn passing_rounds_are_routine_but_the_deployment_and_the_verdict_are_not() {
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    let r = routines(events);
    assert!(!r[0], "an observation starting is written");
    assert!(r[1..10].iter().all(|x| *x), "{r:?}");
    assert!(!r[r.len() - 1], "the verdict is written");
}

#[test]
fn every_round_of_a_failure_run_is_written_from_its_first_failure_to_its_end() {
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..4).map(|s| (s, round(s, 200))));
    // One failure (a run starts), a pass (it breaks), then passes again.
    events.push((4, round(4, 503)));
    events.push((5, round(5, 200)));
    events.push((6, round(6, 200)));
    let r = routines(events);
    assert!(r[3] && r[4], "{r:?}");
    assert!(!r[5], "a run starting is written");
    assert!(!r[6], "a run breaking is written");
    assert!(r[7], "{r:?}");
}

#[test]
fn checkpoints_are_frequent_enough_for_the_kept_samples() {
    // A checkpoint must still hold every sample since the last, with two failed writes of
    // slack: the tracker keeps KEPT_SAMPLES (or more, with large limits) and a checkpoint is
    // due on the CHECKPOINT_ROUNDS-th round.
    const {
        assert!(
            CHECKPOINT_ROUNDS >= 1
                && CHECKPOINT_ROUNDS as usize + 2 <= crate::judge::observation::KEPT_SAMPLES
        )
    };
}

#[test]
fn a_round_that_fetched_the_pre_deployment_series_is_written() {
    let cfg = config("");
    let (r0, _) = step(
        &cfg,
        &WatchRecord::default(),
        Event::Deployment(learned("R1", "D1", 0)),
        t(0),
    );
    let Event::Round(mut rr) = round(0, 200) else {
        unreachable!()
    };
    rr.checks[1].before = Some(crate::model::BeforeSeries {
        from: t(-600),
        to: t(0),
        points: vec![(t(-60), 0.0), (t(-30), 0.0)],
    });
    let (r1, fx) = step(&cfg, &r0, Event::Round(rr), t(0));
    let patched_before = fx
        .iter()
        .any(|e| matches!(e, Effect::Evidence(p) if !p.before.is_empty()));
    assert_eq!(routine(&r0, &r1, &fx), !patched_before);
}

#[test]
fn a_round_after_a_reload_that_changed_the_limits_is_written() {
    let cfg = config("");
    let (r0, _) = step(
        &cfg,
        &WatchRecord::default(),
        Event::Deployment(learned("R1", "D1", 0)),
        t(0),
    );
    let (r1, fx) = step(&cfg, &r0, round(1, 200), t(1));
    assert!(routine(&r0, &r1, &fx), "a passing round is routine");
    // The same round, stepped from a record whose limits were different (as after a reload).
    for change in [
        |r: &mut WatchRecord| r.observation.as_mut().unwrap().tracker.error_limit += 1,
        |r: &mut WatchRecord| r.observation.as_mut().unwrap().tracker.checks[0].failure_limit += 1,
        |r: &mut WatchRecord| r.observation.as_mut().unwrap().tracker.checks[0].min_samples += 1,
    ] {
        let mut before = r0.clone();
        change(&mut before);
        assert!(
            !routine(&before, &r1, &fx),
            "a change of limits is written at once"
        );
    }
}

#[test]
fn an_idle_watch_starting_writes_nothing_and_a_deployment_does() {
    let cfg = config("");
    let idle = WatchRecord {
        last_good_release: Some("R0".into()),
        ..WatchRecord::default()
    };
    let (next, fx) = step(&cfg, &idle, Event::Recovered, t(0));
    assert!(unchanged(&idle, &next, &fx), "{fx:?}");
    let (next, fx) = step(&cfg, &idle, Event::Deployment(learned("R1", "D1", 0)), t(0));
    assert!(!unchanged(&idle, &next, &fx));
}

/// A round in which backstop was late: the health probe got no answer while the process
/// stalled for half a second, so the sample is backstop's error, not the app's.
fn late_round(at: i64) -> Event {
    let Event::Round(mut r) = round(at, 200) else {
        unreachable!("round() builds a round")
    };
    r.checks[0].reading = Err(crate::engine::lifecycle::Unmeasured {
        reason: "timed out after 1s".into(),
        app_down: true,
        timed_out: true,
        empty: false,
    });
    r.checks[0].lag = std::time::Duration::from_millis(500);
    Event::Round(r)
}

/// A round whose health check could not be judged (telemetry down, on time): an error.
fn error_round(at: i64) -> Event {
    let Event::Round(mut r) = round(at, 200) else {
        unreachable!("round() builds a round")
    };
    r.checks[0].reading = Err(crate::engine::lifecycle::Unmeasured::other(
        "scrape: no scrape yet",
    ));
    Event::Round(r)
}

/// Every round of an error run is written, like a failure run's. Leaving the rounds inside it
/// to the checkpoint was tried and undone: a crash then resumes the run's count up to 9
/// rounds short, and near the window's end a release that should be inconclusive
/// (`error_limit` errors in a row) can be verified instead, and become a rollback target.
#[test]
fn every_round_of_an_error_run_is_written() {
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..3).map(|s| (s, round(s, 200))));
    events.extend((3..6).map(|s| (s, error_round(s))));
    events.push((6, round(6, 200)));
    let r = routines(events);
    assert!(r[2] && r[3], "passing rounds are routine: {r:?}");
    assert!(
        !r[4] && !r[5] && !r[6],
        "each error round is written: {r:?}"
    );
    assert!(!r[7], "the run breaking is written: {r:?}");
}

/// Rounds in which backstop itself was late start no run (a late error is transparent to
/// runs), so the rounds inside a stretch of them are routine: an overloaded backstop does not
/// write ten times more at the worst moment (the feedback loop that made 4,200 watches
/// collapse, bench/RESULTS.md). The stretch's start is written at once, so a crash never
/// shortens it (a long one keeps the release from being verified).
#[test]
fn rounds_inside_a_stretch_in_which_backstop_was_late_are_routine() {
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..3).map(|s| (s, round(s, 200))));
    events.extend((3..8).map(|s| (s, late_round(s))));
    events.push((8, round(8, 200)));
    events.push((9, round(9, 200)));
    let r = routines(events);
    assert!(r[2] && r[3], "passing rounds: {r:?}");
    assert!(!r[4], "the stretch starting is written: {r:?}");
    assert!(
        r[5..].iter().all(|x| *x),
        "inside the stretch and its end (a lost end resumes it as longer): {r:?}"
    );
}
