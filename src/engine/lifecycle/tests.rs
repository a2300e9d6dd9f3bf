//! Exhaustive tests of the pure lifecycle: each event in each state it can meet.

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::config::WatchConfig;
use crate::model::{IntentState, NewerDeployment, ObservationKind};

pub(super) fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
}

/// A watch with two checks ("health" and "errors"), 1s interval, 10s window, no warmup.
pub(crate) fn config(extra: &str) -> WatchConfig {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(dir.path().join("api-key"), "k").unwrap();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
token_file = "token"
[state]
dir = "{state}"
[deployers.octo]
kind = "octopus"
url = "http://127.0.0.1:1"
space = "Spaces-1"
api_key_file = "api-key"
[notify.ops]
kind = "webhook"
url = "http://127.0.0.1:1/hook"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "10s"
interval = "1s"
notify = ["ops"]
{extra}
[[watch.check]]
name = "health"
kind = "http"
url = "http://127.0.0.1:1/health"
expect_status = [200]
failure_limit = 3
[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://127.0.0.1:1"
query = "x"
max = 1.0
"#,
        state = dir.path().display()
    );
    let c = crate::config::load_str(&toml, dir.path()).unwrap();
    (*c.watches[0]).clone()
}

pub(super) fn learned(release: &str, dep: &str, created: i64) -> Learned {
    Learned {
        release: release.into(),
        version: None,
        deployment_id: Some(dep.into()),
        deployed_at: t(created),
        created: Some(t(created)),
        source: Source::Announce,
        rollback_safe: None,
        failure: None,
        known: false,
        observation_id: format!("obs-{dep}"),
    }
}

pub(super) fn round(at: i64, health: u16) -> Event {
    Event::Round(RoundResult {
        scheduled: t(at),
        checks: vec![
            CheckResult {
                name: "health".into(),
                baseline: None,
                before: None,
                reading: Ok(Reading::Status(health)),
                lag: std::time::Duration::ZERO,
                traffic: None,
                compare: None,
                control: None,
            },
            CheckResult {
                name: "errors".into(),
                baseline: None,
                before: None,
                reading: Ok(Reading::Value(0.0)),
                lag: std::time::Duration::ZERO,
                traffic: None,
                compare: None,
                control: None,
            },
        ],
    })
}

/// Steps every event, returning the final record and every effect.
pub(super) fn run(
    cfg: &WatchConfig,
    mut r: WatchRecord,
    events: Vec<(i64, Event)>,
) -> (WatchRecord, Vec<Effect>) {
    let mut all = Vec::new();
    for (at, e) in events {
        let (next, fx) = step(cfg, &r, e, t(at));
        r = next;
        all.extend(fx);
    }
    (r, all)
}

pub(super) fn notices(fx: &[Effect]) -> Vec<(AlertKind, String)> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Notify(n) => Some((n.kind, n.id.clone())),
            _ => None,
        })
        .collect()
}

/// R1 verified, then R2 deployed and condemned by three failed health samples.
fn condemned_r2(cfg: &WatchConfig) -> (WatchRecord, Vec<Effect>) {
    condemned_r2_from(cfg, WatchRecord::default())
}

fn condemned_r2_from(cfg: &WatchConfig, start: WatchRecord) -> (WatchRecord, Vec<Effect>) {
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    events.push((20, Event::Deployment(learned("R2", "D2", 20))));
    events.extend((20..23).map(|s| (s, round(s, 503))));
    run(cfg, start, events)
}

#[test]
fn a_release_that_passes_its_window_is_verified() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert_eq!(r.last_good_release.as_deref(), Some("R1"));
    assert!(r.observation.is_none());
    assert_eq!(r.reported_state(), WatchState::Idle);
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Finished(f) if f.1.verdict == VerdictKind::Verified)));
    assert!(
        fx.contains(&Effect::Schedule(t(1))),
        "cadence on scheduled times"
    );
}

#[test]
fn a_condemned_release_is_quarantined_and_rolled_back_to_the_last_verified() {
    let cfg = config("");
    let (r, fx) = condemned_r2(&cfg);
    let i = r.intent.as_ref().expect("an intent");
    assert_eq!(i.target_release, "R1");
    assert_eq!(i.state, IntentState::Pending);
    assert_eq!(i.condemned_deployment.as_deref(), Some("D2"));
    assert_eq!(i.condemned_created, Some(t(20)));
    assert!(i.comments.ends_with(&i.marker));
    assert_eq!(r.state, Some(WatchState::RollingBack));
    assert!(r.quarantined.contains_key("R2"));
    assert_eq!(fx.last(), Some(&Effect::Execute));
    assert!(notices(&fx).contains(&(AlertKind::Condemned, "obs-D2:condemned".into())));
    assert_eq!(r.actions, vec![t(22)]);
}

#[test]
fn a_rollback_that_succeeds_is_observed_and_never_rolled_back_itself() {
    let cfg = config("");
    let (r, _) = condemned_r2(&cfg);
    let mut i = r.intent.clone().unwrap();
    i.state = IntentState::Succeeded;
    i.deployment_id = Some("D3".into());
    let (r, fx) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i),
            outcome: ExecOutcome::Succeeded,
        },
        t(30),
    );
    let o = r.observation.as_ref().unwrap();
    assert_eq!(
        (o.release.as_str(), o.kind),
        ("R1", ObservationKind::Rollback)
    );
    assert_eq!(r.reported_state(), WatchState::Observing);
    assert!(notices(&fx)
        .iter()
        .any(|(k, _)| *k == AlertKind::RolledBack));
    let (r, _) = run(&cfg, r, (30..33).map(|s| (s, round(s, 503))).collect());
    assert_eq!(r.state, Some(WatchState::Failed));
    assert!(r
        .attention
        .as_deref()
        .unwrap()
        .contains("never rolls back a rollback"));
    assert_eq!(
        r.intent.as_ref().unwrap().state,
        IntentState::Succeeded,
        "no second intent"
    );
}

#[test]
fn no_verified_release_asks_the_deployer_for_candidates() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..3).map(|s| (s, round(s, 503))));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert_eq!(fx.last(), Some(&Effect::GatherCandidates));
    assert!(r.observation.as_ref().unwrap().condemned.is_some());
    assert_eq!(r.reported_state(), WatchState::Idle);
    let (r2, fx) = step(
        &cfg,
        &r,
        Event::Candidates(Ok(vec!["R2".into(), "R0".into()])),
        t(4),
    );
    assert_eq!(
        r2.intent.unwrap().target_release,
        "R0",
        "never the condemned release"
    );
    assert_eq!(fx.last(), Some(&Effect::Execute));
    let (r3, _) = step(&cfg, &r, Event::Candidates(Err("unreachable".into())), t(4));
    assert_eq!(r3.state, Some(WatchState::Failed));
    // A restart while deciding decides again.
    let (_, fx) = step(&cfg, &r, Event::Recovered, t(5));
    assert_eq!(fx.last(), Some(&Effect::GatherCandidates));
}

#[test]
fn unknown_and_failed_outcomes_need_a_human_with_the_reason() {
    let cfg = config("");
    let (r, _) = condemned_r2(&cfg);
    let mut i = r.intent.clone().unwrap();
    i.state = IntentState::Unknown;
    let (u, fx) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i.clone()),
            outcome: ExecOutcome::Unknown("lost".into()),
        },
        t(30),
    );
    assert_eq!(u.state, Some(WatchState::Failed));
    assert!(u.attention.as_deref().unwrap().contains("outcome unknown"));
    assert!(notices(&fx)
        .iter()
        .any(|(k, _)| *k == AlertKind::RollbackUnknown));
    i.state = IntentState::Failed;
    let (f, fx) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i),
            outcome: ExecOutcome::Failed("refused".into()),
        },
        t(30),
    );
    assert!(f.attention.as_deref().unwrap().contains("failed: refused"));
    assert!(notices(&fx)
        .iter()
        .any(|(k, _)| *k == AlertKind::RollbackFailed));
}

#[test]
fn a_superseded_intent_observes_the_newer_deployment() {
    let cfg = config("");
    let (r, _) = condemned_r2(&cfg);
    let mut i = r.intent.clone().unwrap();
    let newer = NewerDeployment {
        id: "D9".into(),
        release: "R3".into(),
        created: t(25),
    };
    i.state = IntentState::Superseded;
    i.superseded_by = Some(newer.clone());
    let (r, fx) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i),
            outcome: ExecOutcome::Superseded(newer),
        },
        t(30),
    );
    let o = r.observation.as_ref().unwrap();
    assert_eq!(
        (o.release.as_str(), o.deployment_id.as_deref()),
        ("R3", Some("D9"))
    );
    assert_eq!(r.reported_state(), WatchState::Observing);
    assert!(notices(&fx)
        .iter()
        .any(|(k, _)| *k == AlertKind::Superseded));
}

#[test]
fn duplicates_are_reported_loudly() {
    let cfg = config("");
    let (r, _) = condemned_r2(&cfg);
    let mut i = r.intent.clone().unwrap();
    i.state = IntentState::Succeeded;
    i.deployment_id = Some("D3".into());
    i.duplicates = vec!["D4".into()];
    let (_, fx) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i),
            outcome: ExecOutcome::Succeeded,
        },
        t(30),
    );
    assert!(fx.contains(&Effect::Metric(Metric::DuplicateDeployments(1))));
    assert!(notices(&fx)
        .iter()
        .any(|(k, _)| *k == AlertKind::DuplicateDeployment));
}

#[test]
fn older_repeated_and_known_deployments_never_replace_the_observation() {
    let cfg = config("");
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        vec![(10, Event::Deployment(learned("R2", "D2", 10)))],
    );
    let before = r.observation.clone();
    let (r1, fx) = step(&cfg, &r, Event::Deployment(learned("R1", "D1", 5)), t(11));
    assert_eq!(r1.observation, before, "an older deployment is ignored");
    assert!(fx.contains(&Effect::Seen("D1".into())));
    let (r2, _) = step(&cfg, &r, Event::Deployment(learned("R2", "D2", 10)), t(11));
    assert_eq!(r2.observation, before, "a repeated one is a no-op");
    let mut known = learned("R3", "D3", 12);
    known.known = true;
    let (r3, _) = step(&cfg, &r, Event::Deployment(known), t(13));
    assert_eq!(r3.observation, before);
    let (r4, fx) = step(&cfg, &r, Event::Deployment(learned("R3", "D3", 12)), t(13));
    assert_eq!(r4.observation.unwrap().release, "R3");
    assert!(fx
        .iter()
        .any(|e| matches!(e, Effect::Finished(f) if f.1.verdict == VerdictKind::Superseded)));
}

#[test]
fn recovery_resumes_an_intent_or_acts_on_its_recorded_outcome() {
    let cfg = config("");
    let (r, _) = condemned_r2(&cfg);
    let (_, fx) = step(&cfg, &r, Event::Recovered, t(40));
    assert!(fx.contains(&Effect::Execute));
    // Stopped after the intent succeeded and before the rollback's observation was saved.
    let mut done = r.clone();
    let i = done.intent.as_mut().unwrap();
    i.state = IntentState::Succeeded;
    i.deployment_id = Some("D3".into());
    let (after, _) = step(&cfg, &done, Event::Recovered, t(40));
    assert_eq!(after.observation.unwrap().kind, ObservationKind::Rollback);
    assert_eq!(after.state, Some(WatchState::Idle));
}

#[test]
fn a_command_is_run_at_most_once() {
    let cfg = config("on_failure = \"command\"\n[watch.command]\nargv = [\"/bin/true\"]\n");
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..3).map(|s| (s, round(s, 503))));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert_eq!(
        fx.last(),
        Some(&Effect::RunCommand(CommandPurpose::OnFailure))
    );
    assert!(r.command.is_some(), "recorded as started before it runs");
    // Crash while it runs: never run again, a human is told it may have run.
    let (after, fx) = step(&cfg, &r, Event::Recovered, t(10));
    assert!(!fx.iter().any(|e| matches!(e, Effect::RunCommand(_))));
    assert_eq!(after.state, Some(WatchState::Failed));
    assert!(after.attention.unwrap().contains("may already have run"));
    assert!(after.observation.is_none());
}

#[test]
fn a_reload_that_reorders_and_adds_checks_keeps_the_observation() {
    let cfg = config("");
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        vec![
            (0, Event::Deployment(learned("R2", "D2", 0))),
            (0, round(0, 503)),
        ],
    );
    let mut reloaded = cfg.clone();
    reloaded.checks.reverse();
    let mut extra = reloaded.checks[0].clone();
    extra.name = "latency".into();
    reloaded.checks.push(extra);
    let (r, fx) = step(&reloaded, &r, Event::Recovered, t(1));
    let names: Vec<_> = r
        .observation
        .as_ref()
        .unwrap()
        .tracker
        .checks
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(names, ["errors", "health", "latency"]);
    assert!(fx.iter().any(|e| matches!(e, Effect::Evidence(p) if p.notes.iter().any(|n| n.1.contains("added check latency")))));
    // The old actor's round (old order, no latency) still lands by name; two more failures condemn.
    let (r, _) = run(&reloaded, r, vec![(1, round(1, 503)), (2, round(2, 503))]);
    assert!(
        r.intent.is_none()
            || r.observation
                .as_ref()
                .is_some_and(|o| o.condemned.is_some())
            || r.last_verdict
                .as_ref()
                .is_some_and(|v| v.verdict == VerdictKind::Condemned)
    );
}

#[test]
fn max_actions_pauses_and_dry_run_calls_nothing() {
    let cfg = config("max_actions = 1\n");
    let used = WatchRecord {
        actions: vec![t(5)],
        ..WatchRecord::default()
    };
    let (r, fx) = condemned_r2_from(&cfg, used);
    assert_eq!(r.state, Some(WatchState::Paused));
    assert!(r.intent.is_none());
    assert!(!fx.contains(&Effect::Execute));
    let cfg = config("dry_run = true\n");
    let (r, fx) = condemned_r2(&cfg);
    assert!(r.intent.is_none());
    assert!(!fx.contains(&Effect::Execute));
    assert!(r.attention.unwrap().contains("dry run"));
}

#[test]
fn an_irreversible_release_freezes_the_watch() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    let mut l = learned("R2", "D2", 20);
    l.rollback_safe = Some(false);
    events.push((20, Event::Deployment(l)));
    events.extend((20..23).map(|s| (s, round(s, 503))));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert!(r.intent.is_none());
    assert_eq!(r.state, Some(WatchState::Failed));
    assert!(notices(&fx).iter().any(|(k, _)| *k == AlertKind::Frozen));
}

#[test]
fn pause_stops_observing_and_resume_clears_it() {
    let cfg = config("");
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        vec![(0, Event::Deployment(learned("R2", "D2", 0)))],
    );
    let (p, _) = step(&cfg, &r, Event::Pause, t(1));
    assert_eq!(p.reported_state(), WatchState::Paused);
    let (p2, fx) = step(&cfg, &p, Event::Deployment(learned("R3", "D3", 2)), t(2));
    assert!(p2.observation.is_none());
    assert_eq!(p2.current_release.as_deref(), Some("R3"));
    assert!(fx.contains(&Effect::Seen("D3".into())));
    let (res, _) = step(&cfg, &p2, Event::Resume, t(3));
    assert_eq!(res.reported_state(), WatchState::Idle);
}

#[test]
fn notification_ids_are_stable_across_a_repeated_decision() {
    let cfg = config("");
    let (a, _) = condemned_r2(&cfg);
    let (_, fx1) = step(
        &cfg,
        &a,
        Event::Deployed {
            intent: Box::new(a.intent.clone().unwrap()),
            outcome: ExecOutcome::Failed("x".into()),
        },
        t(30),
    );
    let (_, fx2) = step(
        &cfg,
        &a,
        Event::Deployed {
            intent: Box::new(a.intent.clone().unwrap()),
            outcome: ExecOutcome::Failed("x".into()),
        },
        t(31),
    );
    assert_eq!(notices(&fx1), notices(&fx2));
}

#[test]
fn an_open_observation_is_never_dropped_without_a_verdict() {
    let cfg = config("");
    let (r, _) = condemned_r2(&cfg);
    let intent = r.intent.clone().unwrap();
    // (A stale record after a failed commit:) an observation opened beside an active intent.
    let (r, _) = step(&cfg, &r, Event::Deployment(learned("R9", "D9", 50)), t(50));
    assert!(r.observation.is_some());
    let mut done = intent;
    done.state = IntentState::Succeeded;
    done.deployment_id = Some("D3".into());
    let (_, fx) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(done),
            outcome: ExecOutcome::Succeeded,
        },
        t(70),
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Finished(f) if f.0.release == "R9")),
        "the observation of R9 is closed with a verdict"
    );
}

#[test]
fn a_late_webhook_whose_creation_time_is_unknown_is_ordered_by_its_event_time() {
    let cfg = config("");
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        vec![(10, Event::Deployment(learned("R2", "D2", 10)))],
    );
    let mut late = learned("R1", "D1", 5);
    late.created = None;
    late.source = Source::Webhook;
    let (r1, _) = step(&cfg, &r, Event::Deployment(late), t(11));
    assert_eq!(r1.observation.unwrap().release, "R2");
}

#[test]
fn a_future_creation_time_does_not_make_every_later_deployment_older() {
    let cfg = config("");
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        vec![(10, Event::Deployment(learned("R2", "D2", 100_000)))],
    );
    let (r1, _) = step(&cfg, &r, Event::Deployment(learned("R3", "D3", 20)), t(20));
    assert_eq!(r1.observation.unwrap().release, "R3");
}

pub(super) fn down(at: i64, timed_out: bool, late: Option<u64>) -> Event {
    Event::Round(RoundResult {
        scheduled: t(at),
        checks: vec![CheckResult {
            name: "health".into(),
            baseline: None,
            before: None,
            reading: Err(Unmeasured {
                reason: if timed_out {
                    "timed out after 1s".into()
                } else {
                    "connection refused".into()
                },
                app_down: true,
                timed_out,
                empty: false,
            }),
            lag: std::time::Duration::from_millis(late.unwrap_or(0)),
            traffic: None,
            compare: None,
            control: None,
        }],
    })
}

#[test]
fn an_application_that_does_not_answer_is_a_failure_and_is_rolled_back() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    events.push((20, Event::Deployment(learned("R2", "D2", 20))));
    events.extend((20..23).map(|s| (s, down(s, s == 21, None))));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert_eq!(r.intent.as_ref().unwrap().target_release, "R1");
    assert_eq!(fx.last(), Some(&Effect::Execute));
    let v = r.last_verdict.unwrap();
    assert!(
        v.summary
            .contains("application unreachable: connection refused"),
        "{}",
        v.summary
    );
}

#[test]
fn unreachable_error_and_late_timeouts_never_condemn() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..5).map(|s| (s, down(s, true, Some(900)))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    assert!(r.intent.is_none());
    let c = &r
        .last_verdict
        .as_ref()
        .map(|v| v.checks.clone())
        .unwrap_or_else(|| r.observation.as_ref().unwrap().tracker.checks.clone())[0];
    assert!(c.failures == 0, "{c:?}");
    // With `unreachable = "error"` a dead app is an error (the check goes through a proxy).
    let mut cfg = config("");
    cfg.checks[0].unreachable = crate::config::Unreachable::Error;
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..5).map(|s| (s, down(s, false, None))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    assert!(r.intent.is_none());
    assert_eq!(r.last_verdict.unwrap().verdict, VerdictKind::Inconclusive);
}

#[test]
fn min_traffic_never_excuses_an_application_that_does_not_answer() {
    // A scrape check reads its traffic from the endpoint that is down: unknown, or the rate
    // of the last scrapes that answered. Neither makes a dead application "quiet".
    let mut cfg = config("");
    cfg.checks[0].min_traffic = Some(crate::config::MinTraffic {
        min: 1.0,
        source: crate::config::TrafficSource::Series(crate::config::SeriesSelector {
            metric: "http_requests_total".into(),
            labels: Default::default(),
        }),
    });
    let with_traffic = |e: Event, traffic: Result<f64, String>| match e {
        Event::Round(mut r) => {
            r.checks[0].traffic = Some(traffic);
            Event::Round(r)
        }
        other => other,
    };
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, with_traffic(round(s, 200), Ok(5.0)))));
    events.push((20, Event::Deployment(learned("R2", "D2", 20))));
    events.extend((20..23).map(|s| {
        let traffic = if s == 21 {
            Ok(0.0)
        } else {
            Err("scrape failed: target unreachable".into())
        };
        (s, with_traffic(down(s, false, None), traffic))
    }));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    assert_eq!(r.intent.as_ref().unwrap().target_release, "R1");
    // Answering but quiet is no data, as before.
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..3).map(|s| (s, with_traffic(round(s, 503), Ok(0.05)))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    let track = &r.observation.unwrap().tracker.checks[0];
    assert_eq!(track.failures, 0);
    assert!(track.samples.iter().all(|s| s.outcome.label() == "no_data"));
}

fn errors_round(at: i64, value: f64) -> Event {
    Event::Round(RoundResult {
        scheduled: t(at),
        checks: vec![CheckResult {
            name: "errors".into(),
            baseline: None,
            before: None,
            reading: Ok(Reading::Value(value)),
            lag: std::time::Duration::ZERO,
            traffic: None,
            compare: None,
            control: None,
        }],
    })
}

fn with_lookback(mut cfg: WatchConfig, secs: u64) -> WatchConfig {
    if let crate::config::Probe::Prometheus { lookback, .. } = &mut cfg.checks[1].probe {
        *lookback = std::time::Duration::from_secs(secs);
    }
    cfg
}

#[test]
fn a_rollback_is_not_condemned_by_the_bad_releases_look_back() {
    let mut cfg = with_lookback(config(""), 20);
    cfg.window = std::time::Duration::from_secs(60);
    cfg.checks[0].min_samples = 0; // only the errors check is sampled here
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=60).map(|s| (s, errors_round(s, 0.0))));
    events.push((100, Event::Deployment(learned("R2", "D2", 100))));
    // R2 is bad; its first samples reach into R1 (verified): they may fail and condemn.
    events.extend((100..103).map(|s| (s, errors_round(s, 5.0))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    let mut i = r
        .intent
        .clone()
        .expect("R2 condemned on mixed samples over a verified release");
    i.state = IntentState::Succeeded;
    i.deployment_id = Some("D3".into());
    i.created = Some(t(110));
    let (r, _) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i),
            outcome: ExecOutcome::Succeeded,
        },
        t(110),
    );
    let o = r.observation.as_ref().unwrap();
    assert_eq!(o.previous_condemned.as_deref(), Some("R2"));
    assert_eq!(
        o.baseline_until,
        Some(t(100)),
        "the baseline ends where the bad release began"
    );
    // For 20s the rollback's query still averages R2's errors: no data, not failures.
    let (r, _) = run(
        &cfg,
        r,
        (110..128).map(|s| (s, errors_round(s, 5.0))).collect(),
    );
    let c = &r
        .observation
        .as_ref()
        .expect("still observing")
        .tracker
        .checks[1];
    assert_eq!(c.failures, 0, "{c:?}");
    assert!(c.no_data >= 17, "{c:?}");
    assert!(c.samples.iter().all(|s| s.mixed));
    // Past the look-back the samples are the rollback's own: they pass.
    let (r, _) = run(
        &cfg,
        r,
        (131..=170).map(|s| (s, errors_round(s, 0.0))).collect(),
    );
    assert_eq!(r.last_good_release.as_deref(), Some("R1"));
    assert_eq!(r.last_verdict.unwrap().verdict, VerdictKind::Verified);
}

#[test]
fn past_the_look_back_a_rollback_that_fails_is_condemned() {
    let cfg = with_lookback(config(""), 5);
    let (r, _) = condemned_r2(&cfg);
    let mut i = r.intent.clone().unwrap();
    i.state = IntentState::Succeeded;
    i.deployment_id = Some("D3".into());
    let (r, _) = step(
        &cfg,
        &r,
        Event::Deployed {
            intent: Box::new(i),
            outcome: ExecOutcome::Succeeded,
        },
        t(30),
    );
    let (r, _) = run(
        &cfg,
        r,
        (30..40).map(|s| (s, errors_round(s, 5.0))).collect(),
    );
    assert_eq!(
        r.state,
        Some(WatchState::Failed),
        "the loop breaker holds once samples are the rollback's own"
    );
}

#[test]
fn a_window_of_errors_and_a_few_passes_is_never_verified() {
    let cfg = config("");
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    // 10s window at 1s: min_samples defaults to 5. Errors (under error_limit) and 3 passes.
    for s in 0..=10 {
        let ev = if s % 3 == 0 {
            round(s, 200)
        } else {
            down(s, true, Some(900))
        };
        events.push((s, ev));
    }
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    let v = r.last_verdict.unwrap();
    assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.summary);
    assert!(v.summary.contains("min_samples 5"), "{}", v.summary);
    assert!(r.last_good_release.is_none());
}

#[test]
fn no_data_follows_the_checks_policy() {
    let empty = |at: i64| {
        Event::Round(RoundResult {
            scheduled: t(at),
            checks: vec![CheckResult {
                name: "errors".into(),
                baseline: None,
                before: None,
                reading: Err(Unmeasured {
                    empty: true,
                    ..Unmeasured::other("query returned no data")
                }),
                lag: std::time::Duration::ZERO,
                traffic: None,
                compare: None,
                control: None,
            }],
        })
    };
    for (policy, expect) in [
        (crate::config::NoData::Error, "error"),
        (crate::config::NoData::Pass, "pass"),
        (crate::config::NoData::Fail, "fail"),
    ] {
        let mut cfg = config("");
        cfg.checks[1].no_data = policy;
        let (r, _) = run(
            &cfg,
            WatchRecord::default(),
            vec![
                (0, Event::Deployment(learned("R2", "D2", 0))),
                (0, empty(0)),
            ],
        );
        let s = r.observation.unwrap().tracker.checks[1].samples[0].clone();
        assert_eq!(s.outcome.label(), expect);
    }
}

#[test]
fn below_min_traffic_a_sample_is_no_data_and_the_release_is_never_verified() {
    let mut cfg = config("");
    cfg.checks[0].min_samples = 0;
    cfg.checks[1].min_traffic = Some(crate::config::MinTraffic {
        min: 1.0,
        source: crate::config::TrafficSource::Query("sum(rate(requests_total[1m]))".into()),
    });
    let quiet = |at: i64, value: f64, rate: Result<f64, String>| {
        Event::Round(RoundResult {
            scheduled: t(at),
            checks: vec![CheckResult {
                name: "errors".into(),
                baseline: None,
                before: None,
                reading: Ok(Reading::Value(value)),
                lag: std::time::Duration::ZERO,
                traffic: Some(rate),
                compare: None,
                control: None,
            }],
        })
    };
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    // Failing values on 0.05 req/s: never condemned; then the window ends with no judged data.
    events.extend((0..=10).map(|s| (s, quiet(s, 5.0, Ok(0.05)))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    assert!(r.intent.is_none());
    let v = r.last_verdict.unwrap();
    assert_eq!(v.verdict, VerdictKind::Inconclusive, "{}", v.summary);
    let c = &v.checks[1];
    assert_eq!(c.failures, 0);
    assert!(c.samples[0].outcome.label() == "no_data");
    assert!(format!("{:?}", c.samples[0].outcome).contains("0.05 req/s, need 1"));
    // With enough traffic, the same values condemn; unreadable traffic makes them errors.
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..3).map(|s| (s, quiet(s, 5.0, Err("prometheus down".into())))));
    let (r, _) = run(&cfg, WatchRecord::default(), events.clone());
    assert_eq!(r.observation.unwrap().tracker.checks[1].errors, 3);
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..3).map(|s| (s, quiet(s, 5.0, Ok(20.0)))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    assert!(r.observation.unwrap().condemned.is_some());
}

#[test]
fn the_cadence_is_fast_after_a_deployment_and_while_confirming_a_failure() {
    let mut cfg = config("");
    cfg.interval = std::time::Duration::from_secs(10);
    cfg.fast_interval = std::time::Duration::from_secs(2);
    cfg.fast_for = std::time::Duration::from_secs(60);
    cfg.window = std::time::Duration::from_secs(600);
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        vec![(0, Event::Deployment(learned("R2", "D2", 0)))],
    );
    let (r, fx) = step(&cfg, &r, round(0, 200), t(0));
    assert!(
        fx.contains(&Effect::Schedule(t(2))),
        "fast right after judging starts"
    );
    let (r, fx) = step(&cfg, &r, round(100, 200), t(100));
    assert!(
        fx.contains(&Effect::Schedule(t(110))),
        "normal cadence after fast_for"
    );
    let (_, fx) = step(&cfg, &r, round(110, 503), t(110));
    assert!(
        fx.contains(&Effect::Schedule(t(112))),
        "fast while a failure is confirmed"
    );
}

#[test]
fn a_blip_shorter_than_min_failure_for_never_condemns() {
    let mut cfg = config("");
    cfg.checks[0].min_failure_for = std::time::Duration::from_secs(5);
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    // Three failing rounds in 2s: the limit's count, not its span.
    events.extend((0..3).map(|s| (s, round(s, 503))));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    assert!(r.observation.as_ref().unwrap().condemned.is_none());
    // The run goes on: at 5s after it began it condemns.
    let (r, _) = run(&cfg, r, (3..6).map(|s| (s, round(s, 503))).collect());
    let condemned = r.observation.as_ref().and_then(|o| o.condemned.clone());
    assert!(condemned.is_some(), "a run spanning 5s condemns");
}

#[path = "failed_tests.rs"]
mod failed;

#[path = "compare_tests.rs"]
mod compare;

#[path = "control_tests.rs"]
mod control;

/// Every judged round extends the evidence with the observation as it stands, a baseline's
/// series goes to the evidence (never into the record), and the condemning run is marked.
#[test]
fn rounds_feed_the_evidence_charts() {
    let cfg = config("");
    let (r, fx) = run(
        &cfg,
        WatchRecord::default(),
        vec![(0, Event::Deployment(learned("R1", "D1", 0)))],
    );
    assert_eq!(planned_rounds(&cfg, r.observation.as_ref().unwrap()), 11);
    let before = crate::model::BeforeSeries {
        from: t(-600),
        to: t(0),
        points: vec![(t(-600), 0.4), (t(-300), 0.6)],
    };
    let mut first = round(0, 200);
    if let Event::Round(rr) = &mut first {
        rr.checks[1].baseline = Some(Ok(Some(0.5)));
        rr.checks[1].before = Some(before.clone());
    }
    let (r, fx2) = run(
        &cfg,
        r,
        vec![
            (0, first),
            (1, round(1, 503)),
            (2, round(2, 503)),
            (3, round(3, 503)),
        ],
    );
    let patches: Vec<&EvidencePatch> = fx
        .iter()
        .chain(&fx2)
        .filter_map(|e| match e {
            Effect::Evidence(p) if p.observation.is_some() => Some(&**p),
            _ => None,
        })
        .collect();
    assert!(
        patches.len() >= 4,
        "one per judged round: {}",
        patches.len()
    );
    assert_eq!(patches[0].before, vec![("errors".to_string(), before)]);
    assert!(patches[1..].iter().all(|p| p.before.is_empty()));
    let obs = &r.observation.as_ref().unwrap();
    assert_eq!(obs.tracker.checks[1].baseline, Some(0.5));
    let health = &obs.tracker.checks[0];
    assert_eq!(
        health.condemning,
        Some(crate::model::Span {
            from: t(1),
            to: t(3)
        })
    );
    assert_eq!(obs.tracker.checks[1].condemning, None);
}

#[test]
fn a_ratio_rule_judges_against_at_least_its_baseline_floor() {
    let mut cfg = config("");
    cfg.checks[1].rules = vec![crate::judge::Rule::MaxRatio(3.0)];
    cfg.checks[1].baseline_floor = Some(0.01);
    let round_at = |at: i64, value: f64, baseline: Option<f64>| match errors_round(at, value) {
        Event::Round(mut r) => {
            r.checks[0].baseline = Some(Ok(baseline));
            Event::Round(r)
        }
        e => e,
    };
    let outcomes = |cfg: &WatchConfig, events: Vec<(i64, Event)>| {
        let mut all = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
        all.extend(events);
        let (r, _) = run(cfg, WatchRecord::default(), all);
        let o = r.observation.expect("still observing");
        o.tracker.checks[1]
            .samples
            .iter()
            .map(|s| s.outcome.label())
            .collect::<Vec<_>>()
    };
    // A usual share of 0.1%: 2% is 20 times it, but under 3 × the 1% floor.
    assert_eq!(
        outcomes(&cfg, vec![(0, round_at(0, 0.02, Some(0.001)))]),
        ["pass"]
    );
    assert_eq!(
        outcomes(&cfg, vec![(0, round_at(0, 0.04, Some(0.001)))]),
        ["fail"]
    );
    // No errors before the deployment: the floor, not an undefined ratio.
    assert_eq!(
        outcomes(&cfg, vec![(0, round_at(0, 0.02, Some(0.0)))]),
        ["pass"]
    );
    // Above the floor the baseline itself counts.
    assert_eq!(
        outcomes(&cfg, vec![(0, round_at(0, 0.04, Some(0.02)))]),
        ["pass"]
    );
    // Without a floor, 2% against 0.1% fails and a zero baseline cannot be judged.
    cfg.checks[1].baseline_floor = None;
    assert_eq!(
        outcomes(&cfg, vec![(0, round_at(0, 0.02, Some(0.001)))]),
        ["fail"]
    );
    assert_eq!(
        outcomes(&cfg, vec![(0, round_at(0, 0.02, Some(0.0)))]),
        ["error"]
    );
}
