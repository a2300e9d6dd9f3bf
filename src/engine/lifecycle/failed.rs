//! Deployments that themselves failed: a step failed, the task timed out or was canceled, or
//! the announcer said `"outcome": "failed"`.
//!
//! A half-finished deployment is when a service is most likely broken and when a person most
//! needs the facts, so every failed deployment is announced (`deploy_failed`, with the
//! deployer's own account: error, failed step and machine, log tail), the
//! `[watch.hooks.deploy_failed]` program runs (at most once, before the policy acts), and then
//! `on_deploy_failure` decides:
//!
//! - `observe` (default): the release is observed like any other, because only the checks
//!   know whether the service is broken. Condemned: `on_failure` applies. Verified: no deploy
//!   call, and the release is *not* recorded as last good (it may not be what is running).
//! - `retry`, `rollback`, `notify`: the release is condemned at once, unjudged, and the
//!   decision follows the policy (through the same guards as any condemned release: the
//!   irreversibility guard, `dry_run`, `max_actions`, pause, exactly-once intents).
//!
//! A retry made for a failed deployment that fails again (its deployment, or its checks) leads
//! to `on_deploy_failure_then`, never to a second retry.

use super::{Effect, Level, Transition};
use crate::config::OnDeployFailure;
use crate::model::{Cause, CommandPurpose, ObservationKind};
use crate::sinks::AlertKind;

impl Transition<'_> {
    /// The open observation's deployment failed: announce it, run the hook, then act.
    pub(super) fn deploy_failed(&mut self) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        let failure = obs.failure.clone().unwrap_or_default();
        let retried = obs.kind == ObservationKind::Retry && obs.cause == Cause::DeployFailed;
        let next = match self.cfg.on_deploy_failure {
            OnDeployFailure::Retry { then } if retried => {
                format!(
                    "the retry failed too; on_deploy_failure_then = \"{}\"",
                    then.as_str()
                )
            }
            p => format!("on_deploy_failure = \"{}\"", p.as_str()),
        };
        let what = match &obs.deployment_id {
            Some(d) => format!("deployment {d} of {}", obs.release),
            None => format!("the deployment of {}", obs.release),
        };
        let msg = format!("{what} failed: {}; {next}", failure.summary());
        self.log(Level::Warn, msg.clone());
        self.note(&obs.id, msg.clone());
        self.notify(
            &obs.id,
            AlertKind::DeployFailed,
            &obs.release,
            &msg,
            Some(&obs.id),
        );
        // The policy decides when (and whether) the first round is taken.
        self.fx.retain(|e| !matches!(e, Effect::Schedule(_)));
        if self.cfg.hooks.deploy_failed.is_some() {
            self.run_command(CommandPurpose::DeployFailed);
            return;
        }
        self.act_on_deploy_failure();
    }

    /// Applies `on_deploy_failure` to the open observation of a failed deployment.
    pub(super) fn act_on_deploy_failure(&mut self) {
        let Some(obs) = self.r.observation.as_ref() else {
            return;
        };
        if obs.condemned.is_some() {
            return;
        }
        let retried = obs.kind == ObservationKind::Retry && obs.cause == Cause::DeployFailed;
        let failure = obs.failure.clone().unwrap_or_default();
        match self.cfg.on_deploy_failure {
            // A retry that failed again follows `then` whatever the policy now says.
            OnDeployFailure::Observe if !retried => {
                let first = self.first_round();
                self.fx.push(Effect::Schedule(first));
            }
            _ => {
                if let Some(o) = self.r.observation.as_mut() {
                    o.unjudged = true;
                }
                self.condemned(format!("the deployment failed: {}", failure.summary()));
            }
        }
    }

    /// The deploy-failed hook ended (or was lost in a crash: never run again): the policy acts.
    pub(super) fn deploy_failed_hook_done(&mut self, described: &str, started_for: Option<&str>) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        if started_for != Some(obs.id.as_str()) || obs.failure.is_none() {
            // The watch moved on meanwhile: the hook's deployment is not the one observed.
            return self.log(
                Level::Warn,
                format!("the deploy_failed hook ended ({described}) after its deployment was no longer observed; nothing more is done"),
            );
        }
        self.log(
            Level::Info,
            format!(
                "ran the deploy_failed hook for {}: {described}",
                obs.release
            ),
        );
        self.act_on_deploy_failure();
    }
}
