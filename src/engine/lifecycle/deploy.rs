//! The end of a deploy intent, and the commands run beside it.

use super::{EvidencePatch, Learned, Level, Metric, Transition};
use crate::command::CommandResult;
use crate::config::HookWhen;
use crate::deployer::ExecOutcome;
use crate::evidence::DeployFacts;
use crate::judge::observation::VerdictKind;
use crate::metrics::RollbackOutcome;
use crate::model::{
    ActionKind, Cause, CommandPurpose, DeployIntent, IntentState, ObservationKind, Source,
    WatchState,
};
use crate::sinks::AlertKind;

use super::Effect;

/// The evidence view of an intent.
pub(super) fn deploy_facts(i: &DeployIntent) -> DeployFacts {
    DeployFacts {
        deployer: String::new(),
        deployment_id: i.deployment_id.clone(),
        task_id: i.task_id.clone(),
        state: i.state,
        detail: i.detail.clone(),
        failure: i.failure.clone(),
    }
}

impl Transition<'_> {
    pub(super) fn deployed(&mut self, intent: DeployIntent, outcome: ExecOutcome) {
        let obs_id = intent.observation_id.clone();
        self.r.intent = Some(intent.clone());
        if !intent.duplicates.is_empty() {
            let msg = format!(
                "DUPLICATE deployments: {} carry the marker of one {} intent besides {}; backstop deployed more than once. It cannot be undone: check Octopus",
                intent.duplicates.join(", "),
                intent.kind.as_str(),
                intent.deployment_id.as_deref().unwrap_or("?")
            );
            self.log(Level::Error, msg.clone());
            self.note(&obs_id, msg.clone());
            self.fx.push(Effect::Metric(Metric::DuplicateDeployments(
                intent.duplicates.len() as u64,
            )));
            self.notify(
                &intent.id,
                AlertKind::DuplicateDeployment,
                &intent.target_release,
                &msg,
                Some(&obs_id),
            );
        }
        let patch = |notes: Vec<(chrono::DateTime<chrono::Utc>, String)>| EvidencePatch {
            observation_id: obs_id.clone(),
            deploy: Some(deploy_facts(&intent)),
            notes,
            ..EvidencePatch::default()
        };
        match outcome {
            ExecOutcome::Cancelled => {
                // Shutdown: the persisted intent resumes after a restart.
            }
            ExecOutcome::Succeeded => {
                let msg = match intent.kind {
                    ActionKind::Rollback => format!(
                        "rolled back from {} to {}",
                        intent.condemned_release, intent.target_release
                    ),
                    ActionKind::Retry => format!("redeployed {} (retry)", intent.target_release),
                };
                self.log(Level::Info, format!("{msg}; observing it"));
                self.fx
                    .push(Effect::Metric(Metric::Rollback(RollbackOutcome::Succeeded)));
                self.fx.push(Effect::Evidence(Box::new(patch(vec![(
                    self.now,
                    msg.clone(),
                )]))));
                self.r.state = Some(WatchState::Idle);
                self.r.attention = None;
                let (kind, source) = match intent.kind {
                    ActionKind::Rollback => (ObservationKind::Rollback, Source::Rollback),
                    ActionKind::Retry => (ObservationKind::Retry, Source::Retry),
                };
                let l = Learned {
                    release: intent.target_release.clone(),
                    version: intent.target_version.clone(),
                    deployment_id: intent.deployment_id.clone(),
                    deployed_at: self.now,
                    // The deployment's own creation time orders it against a person's
                    // deployment made while its task ran.
                    created: intent.created,
                    source,
                    rollback_safe: None,
                    failure: None,
                    known: false,
                    observation_id: format!("obs-{}", intent.id),
                };
                self.remember(&l);
                self.observe(l, kind);
                if let Some(o) = self.r.observation.as_mut() {
                    o.cause = intent.cause;
                }
                self.after_hook_then_notify();
            }
            ExecOutcome::Failed(_)
                if intent.kind == ActionKind::Retry
                    && intent.cause == Cause::DeployFailed
                    && intent.failure.is_some() =>
            {
                // The redeploy of a release whose deployment failed failed too: a failed
                // deployment like any other, and `on_deploy_failure_then` decides.
                self.fx
                    .push(Effect::Metric(Metric::Rollback(RollbackOutcome::Failed)));
                self.fx.push(Effect::Evidence(Box::new(patch(vec![(
                    self.now,
                    format!(
                        "the redeploy of {} failed: {}",
                        intent.target_release,
                        intent
                            .failure
                            .as_ref()
                            .map(|f| f.summary())
                            .unwrap_or_default()
                    ),
                )]))));
                self.r.state = Some(WatchState::Idle);
                self.r.attention = None;
                let l = Learned {
                    release: intent.target_release.clone(),
                    version: intent.target_version.clone(),
                    deployment_id: intent.deployment_id.clone(),
                    deployed_at: self.now,
                    created: intent.created,
                    source: Source::Retry,
                    rollback_safe: None,
                    failure: intent.failure.clone(),
                    known: false,
                    observation_id: format!("obs-{}", intent.id),
                };
                self.remember(&l);
                self.observe(l, ObservationKind::Retry);
                if let Some(o) = self.r.observation.as_mut() {
                    o.cause = Cause::DeployFailed;
                }
                self.deploy_failed();
            }
            ExecOutcome::Failed(msg) | ExecOutcome::Unknown(msg) => {
                let unknown = intent.state == crate::model::IntentState::Unknown;
                let attention = if unknown {
                    format!(
                        "{} of {} to {}: outcome unknown: {msg}; a human must act",
                        intent.kind.as_str(),
                        intent.condemned_release,
                        intent.target_release
                    )
                } else {
                    format!(
                        "{} of {} to {} failed: {msg}; a human must act",
                        intent.kind.as_str(),
                        intent.condemned_release,
                        intent.target_release
                    )
                };
                self.log(Level::Error, attention.clone());
                let outcome = if unknown {
                    RollbackOutcome::Unknown
                } else {
                    RollbackOutcome::Failed
                };
                self.fx.push(Effect::Metric(Metric::Rollback(outcome)));
                self.fx.push(Effect::Evidence(Box::new(patch(vec![(
                    self.now,
                    attention.clone(),
                )]))));
                self.r.state = Some(WatchState::Failed);
                self.r.attention = Some(attention);
                self.after_hook_then_notify();
            }
            ExecOutcome::Superseded(newer) => {
                let msg = format!(
                    "{} to {} not made: {} (release {}) was deployed after the condemned {} by someone else; observing it instead",
                    intent.kind.as_str(), intent.target_release, newer.id, newer.release, intent.condemned_release
                );
                self.log(Level::Warn, msg.clone());
                self.fx.push(Effect::Metric(Metric::Rollback(
                    RollbackOutcome::Superseded,
                )));
                self.fx.push(Effect::Evidence(Box::new(patch(vec![(
                    self.now,
                    msg.clone(),
                )]))));
                self.notify(
                    &intent.id,
                    AlertKind::Superseded,
                    &newer.release,
                    &msg,
                    Some(&obs_id),
                );
                self.r.state = Some(WatchState::Idle);
                self.r.attention = None;
                self.learned(Learned {
                    release: newer.release.clone(),
                    version: None,
                    deployment_id: Some(newer.id.clone()),
                    deployed_at: newer.created,
                    created: Some(newer.created),
                    source: Source::Poll,
                    rollback_safe: None,
                    failure: None,
                    known: false,
                    observation_id: format!("obs-{}-{}", intent.id, newer.id),
                });
            }
        }
    }

    /// Runs the after-hook, if any, and announces the intent's outcome once it ran, so the
    /// notification carries the hook's result.
    fn after_hook_then_notify(&mut self) {
        if self
            .cfg
            .command
            .as_ref()
            .is_some_and(|h| h.when == HookWhen::After)
        {
            self.run_command(CommandPurpose::After);
        } else {
            self.notify_outcome();
        }
    }

    /// The notification of an ended intent.
    fn notify_outcome(&mut self) {
        let Some(i) = self.r.intent.clone() else {
            return;
        };
        let (kind, release, msg) = match i.state {
            IntentState::Succeeded => (
                AlertKind::RolledBack,
                &i.target_release,
                match i.kind {
                    ActionKind::Rollback => format!(
                        "rolled back from {} to {}",
                        i.condemned_release, i.target_release
                    ),
                    ActionKind::Retry => format!("redeployed {} (retry)", i.target_release),
                },
            ),
            IntentState::Unknown => (
                AlertKind::RollbackUnknown,
                &i.condemned_release,
                self.r.attention.clone().unwrap_or_default(),
            ),
            _ => (
                AlertKind::RollbackFailed,
                &i.condemned_release,
                self.r.attention.clone().unwrap_or_default(),
            ),
        };
        self.notify(&i.id, kind, release, &msg, Some(&i.observation_id));
    }

    pub(super) fn command_done(&mut self, result: CommandResult) {
        let Some(pending) = self.r.command.take() else {
            return;
        };
        let described = result.describe();
        let ok = result.success();
        match pending.purpose {
            CommandPurpose::OnFailure => {
                let Some(obs) = self.r.observation.clone() else {
                    return;
                };
                let reason = obs.condemned.clone().unwrap_or_default();
                let msg = format!(
                    "release {} condemned; ran the on_failure command: {described}",
                    obs.release
                );
                self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
                    observation_id: obs.id.clone(),
                    command: Some(result),
                    notes: vec![(self.now, format!("decision: command — {msg}"))],
                    ..EvidencePatch::default()
                })));
                self.notify(
                    &obs.id,
                    AlertKind::Condemned,
                    &obs.release,
                    &msg,
                    Some(&obs.id),
                );
                if ok {
                    self.r.state = Some(WatchState::Idle);
                    self.finish(VerdictKind::Condemned, reason, Some(msg));
                } else {
                    self.escalate(reason, msg);
                }
            }
            CommandPurpose::DeployFailed => {
                if let Some(obs) = self.r.observation.clone() {
                    self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
                        observation_id: obs.id.clone(),
                        command: Some(result),
                        notes: vec![(self.now, format!("deploy_failed hook: {described}"))],
                        ..EvidencePatch::default()
                    })));
                }
                self.deploy_failed_hook_done(&described, pending.observation.as_deref());
            }
            CommandPurpose::Before | CommandPurpose::After => {
                let Some(intent) = self.r.intent.clone() else {
                    return;
                };
                self.log(
                    Level::Info,
                    format!("ran the watch command ({:?}): {described}", pending.purpose),
                );
                self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
                    observation_id: intent.observation_id.clone(),
                    command: Some(result),
                    ..EvidencePatch::default()
                })));
                match pending.purpose {
                    CommandPurpose::Before => self.fx.push(Effect::Execute),
                    _ => self.notify_outcome(),
                }
            }
        }
    }

    /// A command was started before a crash and its result is unknown: never run again.
    pub(super) fn command_lost(&mut self, pending: crate::model::PendingCommand) {
        let purpose = pending.purpose;
        self.r.command = None;
        let what = "the watch command was running when backstop stopped; it may already have run, and is not run again";
        match purpose {
            CommandPurpose::OnFailure => {
                let Some(obs) = self.r.observation.clone() else {
                    return;
                };
                let reason = obs.condemned.clone().unwrap_or_default();
                let msg = format!(
                    "release {} condemned; {what}: a human must check",
                    obs.release
                );
                self.note(&obs.id, msg.clone());
                self.notify(
                    &obs.id,
                    AlertKind::Condemned,
                    &obs.release,
                    &msg,
                    Some(&obs.id),
                );
                self.escalate(reason, msg);
            }
            CommandPurpose::Before => {
                let Some(intent) = self.r.intent.clone() else {
                    return;
                };
                self.note(&intent.observation_id, format!("before hook: {what}"));
                self.r.state = Some(WatchState::RollingBack);
                self.fx.push(Effect::Execute);
            }
            CommandPurpose::DeployFailed => {
                let current = self.r.observation.clone().filter(|o| {
                    Some(o.id.as_str()) == pending.observation.as_deref()
                        && o.failure.is_some()
                        && o.condemned.is_none()
                });
                match current {
                    Some(obs) => {
                        self.note(&obs.id, format!("deploy_failed hook: {what}"));
                        self.deploy_failed_hook_done(
                            "lost in a restart",
                            pending.observation.as_deref(),
                        );
                    }
                    // Its deployment is no longer observed: resume whatever is.
                    None => self.recovered(),
                }
            }
            CommandPurpose::After => {
                if let Some(intent) = self.r.intent.clone() {
                    self.note(&intent.observation_id, format!("after hook: {what}"));
                }
                self.notify_outcome();
                // Resume what the after-hook ran beside: a rollback's observation.
                self.recovered();
            }
        }
    }
}
