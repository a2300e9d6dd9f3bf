//! `on_deploy_failure`: each policy, the hook, and the guards every deploy call goes through.

use super::*;
use crate::model::{ActionKind, Cause, DeployFailure};

fn failure() -> DeployFailure {
    DeployFailure {
        task: Some("ServerTasks-9".into()),
        state: Some("Failed".into()),
        error: Some("The deployment failed because one or more steps failed.".into()),
        step: Some("Step 2: Deploy web".into()),
        machine: Some("web-02".into()),
        log_tail: vec!["Unpacking package".into(), "Exit code 1".into()],
        details_unavailable: None,
    }
}

fn failed(release: &str, dep: &str, at: i64) -> Event {
    Event::Deployment(Learned {
        failure: Some(failure()),
        ..learned(release, dep, at)
    })
}

/// R1 verified at 0..=10, then R2's deployment fails at 20.
fn r1_then_failed_r2(cfg: &WatchConfig) -> (WatchRecord, Vec<Effect>) {
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    events.push((20, failed("R2", "D2", 20)));
    run(cfg, WatchRecord::default(), events)
}

/// The retry intent of `r` ends with `outcome` at t=40 as deployment D3; a failed one with
/// the deployer's account of its task. Returns the intent as it ended, too.
fn retry_ended(
    cfg: &WatchConfig,
    r: &WatchRecord,
    outcome: ExecOutcome,
) -> (WatchRecord, Vec<Effect>, DeployIntent) {
    let mut i = r.intent.clone().expect("a retry intent");
    i.deployment_id = Some("D3".into());
    if outcome == ExecOutcome::Succeeded {
        i.state = IntentState::Succeeded;
    } else {
        i.state = IntentState::Failed;
        i.failure = Some(failure());
    }
    let (r, fx) = step(
        cfg,
        r,
        Event::Deployed {
            intent: Box::new(i.clone()),
            outcome,
        },
        t(40),
    );
    (r, fx, i)
}

fn after(fx: &[Effect], n: usize) -> &[Effect] {
    &fx[fx.len() - n..]
}

fn deploy_failed_notices(fx: &[Effect]) -> Vec<String> {
    notices(fx)
        .into_iter()
        .filter(|(k, _)| *k == AlertKind::DeployFailed)
        .map(|(_, id)| id)
        .collect()
}

#[test]
fn observe_is_the_default_and_a_healthy_service_is_kept_without_recording_the_release_as_good() {
    let cfg = config("");
    let (r, fx) = r1_then_failed_r2(&cfg);
    assert_eq!(deploy_failed_notices(&fx), vec!["obs-D2:deploy_failed"]);
    let o = r
        .observation
        .as_ref()
        .expect("observed like any deployment");
    assert_eq!(
        o.failure.as_ref().unwrap().machine.as_deref(),
        Some("web-02")
    );
    assert!(fx.contains(&Effect::Schedule(t(20))), "{fx:?}");
    let (r, fx) = run(&cfg, r, (20..=30).map(|s| (s, round(s, 200))).collect());
    assert!(r.intent.is_none());
    assert_eq!(
        r.last_good_release.as_deref(),
        Some("R1"),
        "R2 may not be running"
    );
    assert_eq!(r.reported_state(), WatchState::Idle);
    assert_eq!(
        deploy_failed_notices(&fx),
        vec!["obs-D2-healthy:deploy_failed"]
    );
    let v = fx
        .iter()
        .find_map(|e| match e {
            Effect::Finished(f) => Some(f.1.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(v.verdict, VerdictKind::Verified);
    assert!(v.action.unwrap().contains("still R1"));
}

#[test]
fn observe_rolls_a_broken_service_back_with_the_failure_in_the_comments() {
    let cfg = config("");
    let (r, _) = r1_then_failed_r2(&cfg);
    let (r, _) = run(&cfg, r, (20..23).map(|s| (s, round(s, 503))).collect());
    let i = r.intent.as_ref().expect("on_failure = rollback");
    assert_eq!(i.target_release, "R1");
    assert_eq!(i.cause, Cause::Condemned);
    assert!(
        i.comments
            .contains("step \"Step 2: Deploy web\" failed on web-02")
            && i.comments.contains("Exit code 1")
            && i.comments.ends_with(&i.marker),
        "{}",
        i.comments
    );
}

#[test]
fn rollback_deploys_the_last_verified_release_at_once() {
    let cfg = config("on_deploy_failure = \"rollback\"");
    let (r, fx) = r1_then_failed_r2(&cfg);
    let i = r.intent.as_ref().expect("an intent without observing");
    assert_eq!(
        (i.target_release.as_str(), i.kind),
        ("R1", ActionKind::Rollback)
    );
    assert_eq!(i.cause, Cause::DeployFailed);
    assert_eq!(r.state, Some(WatchState::RollingBack));
    assert!(r.quarantined.contains_key("R2"));
    assert_eq!(fx.last(), Some(&Effect::Execute));
    let since_failure = &fx[fx
        .iter()
        .position(|e| matches!(e, Effect::Notify(n) if n.kind == AlertKind::DeployFailed))
        .unwrap()..];
    assert!(
        !since_failure
            .iter()
            .any(|e| matches!(e, Effect::Schedule(_))),
        "no round is taken: {since_failure:?}"
    );
    assert_eq!(deploy_failed_notices(&fx), vec!["obs-D2:deploy_failed"]);
}

#[test]
fn notify_deploys_nothing_and_fails_the_watch() {
    let cfg = config("on_deploy_failure = \"notify\"");
    let (r, fx) = r1_then_failed_r2(&cfg);
    assert!(r.intent.is_none());
    assert_eq!(r.state, Some(WatchState::Failed));
    assert!(r
        .attention
        .as_deref()
        .unwrap()
        .contains("on_deploy_failure = \"notify\""));
    assert_eq!(deploy_failed_notices(&fx).len(), 1);
    assert!(notices(&fx).iter().any(|(k, _)| *k == AlertKind::Condemned));
}

#[test]
fn retry_redeploys_once_and_a_second_failure_notifies_by_default() {
    let cfg = config("on_deploy_failure = \"retry\"");
    let (r, _) = r1_then_failed_r2(&cfg);
    let i = r.intent.clone().expect("a retry intent");
    assert_eq!(
        (i.target_release.as_str(), i.kind),
        ("R2", ActionKind::Retry)
    );
    assert_eq!(i.cause, Cause::DeployFailed);
    let failed = ExecOutcome::Failed("task ServerTasks-9 ended Failed".into());
    let (r, fx, i) = retry_ended(&cfg, &r, failed);
    assert_eq!(
        deploy_failed_notices(&fx),
        vec![format!("obs-{}:deploy_failed", i.id)]
    );
    assert!(
        r.intent.as_ref().is_some_and(|x| x.id == i.id),
        "no new intent"
    );
    assert_eq!(r.state, Some(WatchState::Failed));
    assert!(
        r.attention
            .as_deref()
            .unwrap()
            .contains("on_deploy_failure_then"),
        "{:?}",
        r.attention
    );
}

#[test]
fn retry_then_rollback_rolls_back_when_the_redeploy_fails_too() {
    let cfg = config("on_deploy_failure = \"retry\"\non_deploy_failure_then = \"rollback\"");
    let (r, _) = r1_then_failed_r2(&cfg);
    let (r, fx, i) = retry_ended(&cfg, &r, ExecOutcome::Failed("task ended Failed".into()));
    let rb = r.intent.as_ref().unwrap();
    assert_ne!(rb.id, i.id, "a new intent, with its own marker");
    assert_eq!(
        (rb.target_release.as_str(), rb.kind),
        ("R1", ActionKind::Rollback)
    );
    assert_eq!(fx.last(), Some(&Effect::Execute));
}

#[test]
fn a_retry_that_deploys_but_is_condemned_follows_then_not_on_failure() {
    let cfg = config("on_deploy_failure = \"retry\"");
    let (r, _) = r1_then_failed_r2(&cfg);
    let (r, _, _) = retry_ended(&cfg, &r, ExecOutcome::Succeeded);
    let o = r.observation.as_ref().unwrap();
    assert_eq!(
        (o.kind, o.cause),
        (ObservationKind::Retry, Cause::DeployFailed)
    );
    let (r, _) = run(&cfg, r, (40..43).map(|s| (s, round(s, 503))).collect());
    assert_eq!(r.state, Some(WatchState::Failed), "then = notify");
    assert!(
        r.intent.as_ref().unwrap().kind == ActionKind::Retry,
        "no rollback made"
    );
}

#[test]
fn a_retry_that_deploys_and_passes_is_verified_as_last_good() {
    let cfg = config("on_deploy_failure = \"retry\"");
    let (r, _) = r1_then_failed_r2(&cfg);
    let (r, _, _) = retry_ended(&cfg, &r, ExecOutcome::Succeeded);
    let (r, _) = run(&cfg, r, (40..=50).map(|s| (s, round(s, 200))).collect());
    assert_eq!(r.last_good_release.as_deref(), Some("R2"));
    assert!(!r.quarantined.contains_key("R2"));
}

#[test]
fn the_hook_runs_before_the_policy_and_at_most_once() {
    let cfg = config(
        "on_deploy_failure = \"rollback\"\n[watch.hooks.deploy_failed]\nargv = [\"/bin/true\"]",
    );
    let (r, fx) = r1_then_failed_r2(&cfg);
    assert_eq!(
        after(&fx, 1),
        &[Effect::RunCommand(CommandPurpose::DeployFailed)]
    );
    assert!(r.intent.is_none(), "the policy waits for the hook");
    assert!(r.command.is_some(), "recorded as started before it runs");
    // Done: the policy acts.
    let (done, fx) = step(
        &cfg,
        &r,
        Event::CommandDone(crate::command::CommandResult::not_configured()),
        t(21),
    );
    assert_eq!(done.intent.as_ref().unwrap().target_release, "R1");
    assert_eq!(fx.last(), Some(&Effect::Execute));
    // Lost in a crash: never run again, the policy acts.
    let (lost, fx) = step(&cfg, &r, Event::Recovered, t(21));
    assert!(!fx
        .iter()
        .any(|e| matches!(e, Effect::RunCommand(CommandPurpose::DeployFailed))));
    assert_eq!(lost.intent.as_ref().unwrap().target_release, "R1");
}

#[test]
fn with_observe_the_first_round_waits_for_the_hook() {
    let cfg = config("[watch.hooks.deploy_failed]\nargv = [\"/bin/true\"]");
    let (r, fx) = r1_then_failed_r2(&cfg);
    let tail = &fx[fx.len() - 3..];
    assert!(
        !tail.iter().any(|e| matches!(e, Effect::Schedule(_))),
        "{tail:?}"
    );
    let (_, fx) = step(
        &cfg,
        &r,
        Event::CommandDone(crate::command::CommandResult::not_configured()),
        t(25),
    );
    assert!(fx.contains(&Effect::Schedule(t(25))), "{fx:?}");
}

#[test]
fn guards_apply_to_deploy_failure_deploys() {
    // dry_run: nothing called.
    let cfg = config("on_deploy_failure = \"rollback\"\ndry_run = true");
    let (r, _) = r1_then_failed_r2(&cfg);
    assert!(r.intent.is_none());
    assert!(r.attention.as_deref().unwrap().contains("dry run"));
    // max_actions: paused.
    let cfg = config("on_deploy_failure = \"retry\"\nmax_actions = 1");
    let mut start = WatchRecord::default();
    start.actions.push(t(15));
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    events.push((20, failed("R2", "D2", 20)));
    let (r, _) = run(&cfg, start, events);
    assert!(r.intent.is_none());
    assert_eq!(r.state, Some(WatchState::Paused));
    // Not safe to roll back from: frozen.
    let cfg = config("on_deploy_failure = \"rollback\"");
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    events.push((
        20,
        Event::Deployment(Learned {
            failure: Some(failure()),
            rollback_safe: Some(false),
            ..learned("R2", "D2", 20)
        }),
    ));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert!(r.intent.is_none());
    assert!(notices(&fx).iter().any(|(k, _)| *k == AlertKind::Frozen));
}

#[test]
fn a_paused_watch_tells_people_and_does_nothing() {
    let cfg = config("on_deploy_failure = \"rollback\"");
    let (r, _) = step(&cfg, &WatchRecord::default(), Event::Pause, t(0));
    let (r, fx) = step(&cfg, &r, failed("R2", "D2", 1), t(1));
    assert!(r.intent.is_none() && r.observation.is_none());
    assert_eq!(deploy_failed_notices(&fx), vec!["obs-D2:deploy_failed"]);
}

#[test]
fn a_failure_reported_for_the_deployment_being_observed_is_acted_on() {
    let cfg = config("on_deploy_failure = \"rollback\"");
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    // Announced once in place, then a later step (a smoke test) failed: the same deployment,
    // known already.
    events.push((20, Event::Deployment(learned("R2", "D2", 20))));
    events.push((21, round(21, 200)));
    events.push((
        22,
        Event::Deployment(Learned {
            known: true,
            ..match failed("R2", "D2", 20) {
                Event::Deployment(l) => l,
                _ => unreachable!(),
            }
        }),
    ));
    let (r, fx) = run(&cfg, WatchRecord::default(), events);
    assert_eq!(deploy_failed_notices(&fx), vec!["obs-D2:deploy_failed"]);
    assert_eq!(r.intent.as_ref().unwrap().target_release, "R1");
}

#[test]
fn a_failure_of_a_deployment_handled_already_or_older_is_told_not_acted_on() {
    let cfg = config("on_deploy_failure = \"rollback\"");
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        std::iter::once((0, Event::Deployment(learned("R1", "D1", 0))))
            .chain((0..=10).map(|s| (s, round(s, 200))))
            .collect(),
    );
    let late = Learned {
        known: true,
        observation_id: "obs-late".into(),
        ..match failed("R1", "D1", 0) {
            Event::Deployment(l) => l,
            _ => unreachable!(),
        }
    };
    let (r2, fx) = step(&cfg, &r, Event::Deployment(late), t(30));
    assert!(r2.intent.is_none() && r2.observation.is_none());
    assert_eq!(r2.last_good_release.as_deref(), Some("R1"));
    assert_eq!(deploy_failed_notices(&fx), vec!["obs-late:deploy_failed"]);
    // Older than the newest known deployment: recorded, told, nothing deployed.
    let (r3, fx) = step(&cfg, &r, failed("R0", "D0", -100), t(30));
    assert!(r3.intent.is_none());
    assert_eq!(deploy_failed_notices(&fx).len(), 1);
}

#[test]
fn a_failed_redeploy_of_the_last_verified_release_never_downgrades() {
    let cfg = config("on_deploy_failure = \"rollback\"");
    let mut events = vec![(0, Event::Deployment(learned("R1", "D1", 0)))];
    events.extend((0..=10).map(|s| (s, round(s, 200))));
    events.push((20, failed("R1", "D2", 20)));
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    let i = r
        .intent
        .as_ref()
        .expect("a deploy of the last verified release");
    assert_eq!(
        (i.target_release.as_str(), i.kind),
        ("R1", ActionKind::Rollback)
    );
    assert_eq!(r.last_good_release.as_deref(), Some("R1"));
    assert!(!r.quarantined.contains_key("R1"));
}

#[test]
fn a_hook_result_for_a_deployment_no_longer_observed_acts_on_nothing() {
    let cfg = config(
        "on_deploy_failure = \"rollback\"\n[watch.hooks.deploy_failed]\nargv = [\"/bin/true\"]",
    );
    let (r, _) = r1_then_failed_r2(&cfg);
    // The watch moved on (a newer deployment) while the hook's result was lost.
    let mut moved = r.clone();
    moved.observation.as_mut().unwrap().id = "obs-newer".into();
    moved.observation.as_mut().unwrap().failure = None;
    let (after_done, _) = step(
        &cfg,
        &moved,
        Event::CommandDone(crate::command::CommandResult::not_configured()),
        t(25),
    );
    assert!(
        after_done.intent.is_none(),
        "the newer release is not condemned"
    );
    let (after_lost, _) = step(&cfg, &moved, Event::Recovered, t(25));
    assert!(after_lost.intent.is_none());
    // Rounds wait while the hook runs.
    let (_, fx) = step(&cfg, &r, round(22, 503), t(22));
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn a_lost_hook_of_a_deployment_no_longer_observed_resumes_the_current_observation() {
    let cfg = config("[watch.hooks.deploy_failed]\nargv = [\"/bin/true\"]");
    let (r, _) = r1_then_failed_r2(&cfg);
    let mut moved = r.clone();
    moved.observation.as_mut().unwrap().id = "obs-newer".into();
    moved.observation.as_mut().unwrap().failure = None;
    let (after, fx) = step(&cfg, &moved, Event::Recovered, t(25));
    assert!(after.command.is_none());
    assert!(
        fx.iter().any(|e| matches!(e, Effect::Schedule(_))),
        "the newer observation goes on: {fx:?}"
    );
}
