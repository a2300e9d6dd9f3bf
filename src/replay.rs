//! Replaying one deployment through the real lifecycle core, on a clock the caller owns.
//!
//! `backstop backtest` (past deployments against Prometheus history) and the detection-quality
//! benchmark (`bench/quality`, generated deployments) both ask "what would backstop have
//! decided, when, and why?". They must get the daemon's answer, not a reimplementation's, so
//! this drives [`lifecycle::step`] exactly as the watch actor does: a deployment event, then
//! a round at each scheduled time with the check results the caller supplies, until a
//! verdict; a condemned release is then decided with the last good release as the only
//! rollback candidate, and the decision is read from the record, before anything would leave
//! the process. Pure: no I/O, no clock; the caller's `sample` function is the only input.
//!
//! A deployment that itself failed ([`replay_failed`]) goes through `on_deploy_failure` as in
//! the daemon. Programs are never run: a `[watch.hooks.deploy_failed]` hook or a `when =
//! "before"` command is taken as having succeeded, so the decision goes on to what follows it;
//! `on_failure = "command"` is the action itself ([`Action::Command`]).

use chrono::{DateTime, Utc};

use crate::command::CommandResult;
use crate::config::WatchConfig;
use crate::engine::lifecycle::{self, CheckResult, Effect, Event, Learned, RoundResult};
use crate::judge::observation::{Verdict, VerdictKind};
use crate::model::{CommandPurpose, DeployFailure, Source, WatchRecord, WatchState};

/// A deployment to replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub release: String,
    pub deployment_id: Option<String>,
    pub deployed_at: DateTime<Utc>,
    /// The release running before it, verified good (the rollback target), if any.
    pub previous: Option<String>,
}

/// What backstop would have done with the condemned release.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Deploy this release (a rollback, or a retry of the same release).
    Deploy { kind: String, target: String },
    /// Run `[watch.command]`.
    Command,
    /// Stop and ask a human (notify, freeze, pause, failed, dry run, no target).
    Human { state: String, reason: String },
}

/// The replay's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The verdict, or `None` if the observation never closed (the replay ran out of rounds).
    pub verdict: Option<Verdict>,
    /// Rounds judged.
    pub rounds: u32,
    /// What would have followed a condemned verdict.
    pub action: Option<Action>,
}

impl Outcome {
    pub fn kind(&self) -> Option<VerdictKind> {
        self.verdict.as_ref().map(|v| v.verdict)
    }

    /// Time from the deployment to the verdict.
    pub fn time_to_verdict(&self, deployed_at: DateTime<Utc>) -> Option<chrono::Duration> {
        self.verdict.as_ref().map(|v| v.decided_at - deployed_at)
    }

    pub fn rolled_back(&self) -> bool {
        matches!(self.action, Some(Action::Deploy { .. }))
    }
}

/// A bound on rounds, so a config whose observation never ends cannot loop forever.
const MAX_ROUNDS: u32 = 100_000;

/// Replays `deployment` under `cfg`. `sample(scheduled, deployed_at)` gives every check's
/// result for the round scheduled at `scheduled`: what the probes would have read then.
pub fn replay(
    cfg: &WatchConfig,
    deployment: &Deployment,
    sample: impl FnMut(DateTime<Utc>) -> Vec<CheckResult>,
) -> Outcome {
    run(cfg, deployment, None, sample)
}

/// Replays a deployment that itself failed (its task ended Failed, TimedOut or Canceled):
/// `on_deploy_failure` decides whether it is observed (`sample` as in [`replay`]) or acted on
/// at once.
pub fn replay_failed(
    cfg: &WatchConfig,
    deployment: &Deployment,
    failure: DeployFailure,
    sample: impl FnMut(DateTime<Utc>) -> Vec<CheckResult>,
) -> Outcome {
    run(cfg, deployment, Some(failure), sample)
}

fn run(
    cfg: &WatchConfig,
    deployment: &Deployment,
    failure: Option<DeployFailure>,
    mut sample: impl FnMut(DateTime<Utc>) -> Vec<CheckResult>,
) -> Outcome {
    let mut record = WatchRecord {
        current_release: deployment.previous.clone(),
        last_good_release: deployment.previous.clone(),
        ..WatchRecord::default()
    };
    let learned = Learned {
        release: deployment.release.clone(),
        version: None,
        deployment_id: deployment.deployment_id.clone(),
        deployed_at: deployment.deployed_at,
        created: Some(deployment.deployed_at),
        source: Source::Poll,
        rollback_safe: None,
        failure,
        known: false,
        observation_id: format!("replay-{}", deployment.release),
    };
    let mut out = Outcome {
        verdict: None,
        rounds: 0,
        action: None,
    };
    let mut now = deployment.deployed_at;
    let mut queue = vec![Event::Deployment(learned)];
    let mut next: Option<DateTime<Utc>> = None;
    loop {
        while let Some(event) = pop(&mut queue) {
            let (r, fx) = lifecycle::step(cfg, &record, event, now);
            record = r;
            for e in fx {
                match e {
                    Effect::Schedule(t) => next = Some(t),
                    Effect::Unschedule => next = None,
                    Effect::Finished(f) => out.verdict = Some(f.1),
                    Effect::GatherCandidates => queue.push(Event::Candidates(Ok(deployment
                        .previous
                        .iter()
                        .cloned()
                        .collect()))),
                    Effect::Execute => out.action = Some(deploy_action(&record)),
                    Effect::RunCommand(CommandPurpose::OnFailure) => {
                        out.action = Some(Action::Command)
                    }
                    // A hook beside the decision: taken as run, the decision goes on.
                    Effect::RunCommand(_) => queue.push(Event::CommandDone(not_run())),
                    _ => {}
                }
            }
            if out.action.is_some() {
                return out;
            }
        }
        if out.verdict.is_some() {
            // Condemned and decided without a deploy call or a command: a human's turn.
            if out.kind() == Some(VerdictKind::Condemned) {
                out.action = Some(human(&record));
            }
            return out;
        }
        let Some(at) = next.take() else {
            return out;
        };
        if out.rounds >= MAX_ROUNDS {
            return out;
        }
        out.rounds += 1;
        now = at.max(now);
        queue.push(Event::Round(RoundResult {
            scheduled: at,
            checks: sample(at),
        }));
    }
}

/// The result a hook gets in a replay: it counts as having succeeded, without running.
fn not_run() -> CommandResult {
    CommandResult {
        argv: Vec::new(),
        exit_code: Some(0),
        timed_out: false,
        spawn_error: None,
        stdout: String::new(),
        stderr: "not run: a replay runs no programs".into(),
        duration_ms: 0,
    }
}

fn pop(queue: &mut Vec<Event>) -> Option<Event> {
    (!queue.is_empty()).then(|| queue.remove(0))
}

fn deploy_action(record: &WatchRecord) -> Action {
    match &record.intent {
        Some(i) => Action::Deploy {
            kind: i.kind.as_str().to_string(),
            target: i.target_release.clone(),
        },
        None => human(record),
    }
}

fn human(record: &WatchRecord) -> Action {
    Action::Human {
        state: record
            .state
            .unwrap_or(WatchState::Idle)
            .as_str()
            .to_string(),
        reason: record
            .attention
            .clone()
            .or_else(|| record.last_verdict.as_ref().and_then(|v| v.action.clone()))
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Reading;

    fn check(name: &str, v: f64) -> CheckResult {
        CheckResult {
            name: name.into(),
            baseline: None,
            before: None,
            reading: Ok(if name == "health" {
                Reading::Status(200)
            } else {
                Reading::Value(v)
            }),
            lag: std::time::Duration::ZERO,
            traffic: None,
            compare: None,
            control: None,
        }
    }

    /// health (http, 200) and errors (prometheus, max 1.0), window 10s, interval 1s.
    fn cfg() -> WatchConfig {
        crate::engine::lifecycle::test_config("")
    }

    fn round(errors: f64) -> Vec<CheckResult> {
        vec![check("health", 0.0), check("errors", errors)]
    }

    fn dep() -> Deployment {
        Deployment {
            release: "Releases-2".into(),
            deployment_id: Some("Deployments-2".into()),
            deployed_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            previous: Some("Releases-1".into()),
        }
    }

    #[test]
    fn a_bad_release_is_condemned_and_rolled_back_to_the_previous_one() {
        let c = cfg();
        let d = dep();
        let out = replay(&c, &d, |_| round(5.0));
        assert_eq!(out.kind(), Some(VerdictKind::Condemned));
        assert_eq!(
            out.action,
            Some(Action::Deploy {
                kind: "rollback".into(),
                target: "Releases-1".into()
            })
        );
        let t = out.time_to_verdict(d.deployed_at).unwrap();
        assert!(
            t > chrono::Duration::zero() && t < chrono::Duration::minutes(1),
            "{t}"
        );
    }

    #[test]
    fn a_good_release_is_verified_after_the_window_and_nothing_is_done() {
        let c = cfg();
        let d = dep();
        let out = replay(&c, &d, |_| round(0.5));
        assert_eq!(out.kind(), Some(VerdictKind::Verified));
        assert_eq!(out.action, None);
        assert!(out.rounds > 3);
    }

    #[test]
    fn without_a_previous_release_a_condemned_one_is_left_to_a_human() {
        let c = cfg();
        let d = Deployment {
            previous: None,
            ..dep()
        };
        let out = replay(&c, &d, |_| round(5.0));
        assert_eq!(out.kind(), Some(VerdictKind::Condemned));
        assert!(matches!(out.action, Some(Action::Human { .. })), "{out:?}");
    }

    fn failure() -> DeployFailure {
        DeployFailure {
            task: Some("ServerTasks-7".into()),
            state: Some("Failed".into()),
            ..DeployFailure::default()
        }
    }

    #[test]
    fn a_failed_deployment_is_observed_by_default_and_judged_by_its_checks() {
        let c = cfg();
        let d = dep();
        let out = replay_failed(&c, &d, failure(), |_| round(5.0));
        assert_eq!(out.kind(), Some(VerdictKind::Condemned));
        assert!(matches!(out.action, Some(Action::Deploy { .. })), "{out:?}");
        let out = replay_failed(&c, &d, failure(), |_| round(0.5));
        assert_eq!(out.kind(), Some(VerdictKind::Verified));
        assert_eq!(out.action, None);
    }

    #[test]
    fn on_deploy_failure_rollback_acts_at_once_even_after_a_hook() {
        let c = crate::engine::lifecycle::test_config(
            "on_deploy_failure = \"rollback\"\n[watch.hooks.deploy_failed]\nargv = [\"/bin/true\"]",
        );
        let d = dep();
        let out = replay_failed(&c, &d, failure(), |_| panic!("no round is taken"));
        assert_eq!(out.rounds, 0);
        assert_eq!(out.kind(), Some(VerdictKind::Condemned));
        assert_eq!(
            out.action,
            Some(Action::Deploy {
                kind: "rollback".into(),
                target: "Releases-1".into()
            })
        );
    }

    #[test]
    fn a_command_before_the_rollback_is_taken_as_run_and_the_rollback_follows() {
        let c = crate::engine::lifecycle::test_config(
            "[watch.command]\nargv = [\"/bin/true\"]\nwhen = \"before\"",
        );
        let out = replay(&c, &dep(), |_| round(5.0));
        assert!(
            matches!(&out.action, Some(Action::Deploy { kind, .. }) if kind == "rollback"),
            "{out:?}"
        );
    }

    #[test]
    fn in_a_dry_run_a_condemned_release_is_left_to_a_human_with_what_would_have_been_done() {
        let c = crate::engine::lifecycle::test_config("dry_run = true");
        let out = replay(&c, &dep(), |_| round(5.0));
        assert_eq!(out.kind(), Some(VerdictKind::Condemned));
        match out.action {
            Some(Action::Human { reason, .. }) => {
                assert!(reason.starts_with("dry run: would"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
}
