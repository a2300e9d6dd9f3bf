//! The lag rule: while backstop itself was late, a sample without an answer is backstop's
//! error, never a failure and never a probe timeout; a measured answer stays what it is.

use std::time::Duration;

use super::tests::{config, t};
use super::*;
use crate::judge::Outcome;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The outcome of one unmeasured "health" sample with this lag, in an open observation.
fn outcome(cfg: &WatchConfig, u: Unmeasured, lag: Duration) -> Outcome {
    let t0 = Transition {
        cfg,
        r: WatchRecord::default(),
        fx: Vec::new(),
        now: t(0),
    };
    t0.unmeasured("health", u, lag)
}

fn no_answer(timed_out: bool) -> Unmeasured {
    Unmeasured {
        reason: if timed_out {
            "timed out after 1s".into()
        } else {
            "target unreachable: connection refused".into()
        },
        app_down: true,
        timed_out,
        empty: false,
    }
}

#[test]
fn the_bound_is_exclusive_and_fixed() {
    assert_eq!(late(Duration::ZERO), None);
    assert_eq!(late(ms(250)), None);
    assert_eq!(late(ms(251)), Some(ms(251)));
    assert_eq!(late(ms(5000)), Some(ms(5000)));
}

#[test]
fn on_time_an_application_that_does_not_answer_fails() {
    let cfg = config("");
    for timed_out in [true, false] {
        for lag in [ms(0), ms(250)] {
            assert!(
                matches!(
                    outcome(&cfg, no_answer(timed_out), lag),
                    Outcome::Fail { .. }
                ),
                "timed_out {timed_out}, lag {lag:?}"
            );
        }
    }
}

#[test]
fn late_timeouts_are_backstops_error_but_a_refused_connection_still_fails() {
    let cfg = config("");
    let o = outcome(&cfg, no_answer(true), ms(1200));
    let Outcome::Error { reason, late } = &o else {
        panic!("{o:?}")
    };
    assert!(*late, "marked as backstop's own lateness: {o:?}");
    assert!(
        reason.starts_with("backstop was late (scheduler lag 1s 200ms, bound 250ms): "),
        "{reason}"
    );
    assert!(reason.ends_with(&no_answer(true).reason), "{reason}");
    // A refused or reset connection is the application's own answer: lateness cannot make
    // one, so a dead app is still a failure however late backstop is.
    assert!(
        matches!(
            outcome(&cfg, no_answer(false), ms(1200)),
            Outcome::Fail { .. }
        ),
        "a refused connection while late"
    );
}

#[test]
fn late_telemetry_and_missing_answers_are_backstops_error() {
    let cfg = config("");
    let o = outcome(&cfg, Unmeasured::other("scrape: no scrape yet"), ms(300));
    assert!(
        matches!(&o, Outcome::Error { reason, .. } if reason.starts_with("backstop was late")),
        "{o:?}"
    );
    // On time it is an error still, without blaming backstop.
    let o = outcome(&cfg, Unmeasured::other("scrape: no scrape yet"), ms(10));
    assert_eq!(
        o,
        Outcome::Error {
            reason: "scrape: no scrape yet".into(),
            late: false
        }
    );
}

#[test]
fn an_empty_answer_was_measured_late_or_not() {
    let mut cfg = config("");
    cfg.checks[0].no_data = crate::config::NoData::Fail;
    let empty = Unmeasured {
        empty: true,
        ..Unmeasured::other("query returned no data")
    };
    assert!(matches!(
        outcome(&cfg, empty, ms(2000)),
        Outcome::Fail { .. }
    ));
}

fn with_lag(e: Event, lag: Duration) -> Event {
    match e {
        Event::Round(mut r) => {
            r.checks.iter_mut().for_each(|c| c.lag = lag);
            Event::Round(r)
        }
        other => other,
    }
}

#[test]
fn a_measured_bad_answer_fails_however_late_backstop_was() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(tests::learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, tests::round(s, 200))));
    events.push((20, Event::Deployment(tests::learned("R2", "D2", 20))));
    events.extend((20..23).map(|s| (s, with_lag(tests::round(s, 503), ms(5000)))));
    let (r, _) = tests::run(&cfg, WatchRecord::default(), events);
    assert_eq!(r.intent.as_ref().unwrap().target_release, "R1");
}

#[test]
fn a_stalled_backstop_never_condemns_an_application_it_could_not_reach() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(tests::learned("R2", "D2", 0)))];
    // Every probe timed out while backstop was stalled.
    events.extend((0..=12).map(|s| (s, with_lag(tests::down(s, true, None), ms(900)))));
    let (r, _) = tests::run(&cfg, WatchRecord::default(), events);
    assert!(r.intent.is_none());
    let v = r.last_verdict.expect("the window closed");
    assert_eq!(
        v.verdict,
        crate::judge::observation::VerdictKind::Inconclusive
    );
    assert_eq!(v.checks[0].failures, 0, "{:?}", v.checks[0]);
}

#[test]
fn a_dead_app_refusing_connections_is_rolled_back_however_late_backstop_was() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(tests::learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, tests::round(s, 200))));
    events.push((20, Event::Deployment(tests::learned("R2", "D2", 20))));
    events.extend((20..26).map(|s| (s, with_lag(tests::down(s, false, None), ms(5000)))));
    let (r, _) = tests::run(&cfg, WatchRecord::default(), events);
    assert_eq!(r.intent.as_ref().unwrap().target_release, "R1");
}
