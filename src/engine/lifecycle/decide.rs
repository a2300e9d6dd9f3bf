//! What to do about a condemned release.
//!
//! Order of decisions: the loop breaker (a condemned rollback is never rolled back), the
//! policy (`on_failure`, or a retry's `then`), irreversibility (a release marked not safe to
//! roll back from, or a target older than such a release, freezes the watch), then the guards
//! (`dry_run` calls nothing; `max_actions` pauses the watch). Every step is written into the
//! evidence document and announced to the watch's sinks.

use super::{before, EvidencePatch, Level, Metric, Transition};
use crate::config::{Fallback, HookWhen, OnDeployFailure, OnFailure};
use crate::evidence::{ActionFacts, VerdictFacts};
use crate::judge::observation::VerdictKind;
use crate::metrics::RollbackOutcome;
use crate::model::{
    ActionKind, Cause, Chosen, CommandPurpose, DeployIntent, ObservationKind, PendingCommand,
    WatchState,
};
use crate::sinks::AlertKind;

use super::Effect;

/// Deployer comments are shown in its UI; keep them readable.
const MAX_COMMENT: usize = 1800;

/// What to do about a condemned release.
enum Plan {
    Deploy {
        kind: ActionKind,
        target: String,
        target_why: String,
    },
    Notify(String),
    Command,
    Freeze(String),
    /// Ask the deployer for candidates first.
    NeedCandidates,
    /// Nothing can be done automatically (no target, deployer unreachable): a human must act.
    Stuck(String, RollbackOutcome),
}

impl Transition<'_> {
    pub(super) fn condemned(&mut self, reason: String) {
        let Some(obs) = self.r.observation.as_mut() else {
            return;
        };
        obs.condemned = Some(reason.clone());
        let release = obs.release.clone();
        let unjudged = obs.unjudged;
        self.log(
            Level::Warn,
            format!("release {release} condemned: {reason}"),
        );
        if unjudged && self.r.last_good_release.as_ref() == Some(&release) {
            // A failed redeploy of the last verified release says nothing against the release:
            // it stays verified and is not quarantined (no downgrade past it).
            self.fx.push(Effect::Unschedule);
            return self.decide(None);
        }
        if self.r.last_good_release.as_ref() == Some(&release) {
            // Verified once, condemned now: no longer a rollback target.
            self.r.last_good_release = None;
            self.r.last_good_version = None;
        }
        self.r.quarantined.insert(release, reason);
        self.fx.push(Effect::Unschedule);
        self.decide(None);
    }

    pub(super) fn candidates(&mut self, c: Result<Vec<String>, String>) {
        if self
            .r
            .observation
            .as_ref()
            .is_some_and(|o| o.condemned.is_some())
        {
            self.decide(Some(c));
        }
    }

    /// Decides and acts; `candidates` are the deployer's when they were asked for.
    pub(super) fn decide(&mut self, candidates: Option<Result<Vec<String>, String>>) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        let reason = obs.condemned.clone().unwrap_or_default();
        let (policy, plan) = self.plan(candidates);
        let mut action = ActionFacts {
            policy: policy.clone(),
            chosen: Chosen::None,
            why: String::new(),
            target_release: None,
            target_why: None,
            dry_run: self.cfg.dry_run,
            deploy: None,
            command: None,
        };
        match plan {
            Plan::NeedCandidates => self.fx.push(Effect::GatherCandidates),
            Plan::Stuck(msg, outcome) => {
                action.why = msg.clone();
                self.fx.push(Effect::Metric(Metric::Rollback(outcome)));
                self.conclude(action, Chosen::None, AlertKind::RollbackFailed, &msg);
                self.escalate(reason, msg);
            }
            Plan::Freeze(why) => {
                let msg = format!(
                    "frozen: {why}; backstop deploys nothing automatically, a human must decide"
                );
                action.why = why;
                self.conclude(action, Chosen::Freeze, AlertKind::Frozen, &msg);
                self.escalate(reason, msg);
            }
            Plan::Notify(why) => {
                let msg = format!("release {} condemned; {why}", obs.release);
                action.why = why;
                self.conclude(action, Chosen::Notify, AlertKind::Condemned, &msg);
                self.escalate(reason, msg);
            }
            Plan::Command => {
                action.why = "on_failure = \"command\"".into();
                if self.cfg.dry_run {
                    return self.dry_run(
                        action,
                        Chosen::Command,
                        "run the on_failure command".into(),
                    );
                }
                action.chosen = Chosen::Command;
                self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
                    observation_id: obs.id.clone(),
                    observation: Some(obs.clone()),
                    verdict: Some(self.verdict_facts(&reason)),
                    action: Some(action),
                    notes: vec![(self.now, format!("condemned: {reason}"))],
                    ..EvidencePatch::default()
                })));
                self.fx
                    .push(Effect::Metric(Metric::Action(Chosen::Command)));
                self.run_command(CommandPurpose::OnFailure);
            }
            Plan::Deploy {
                kind,
                target,
                target_why,
            } => {
                action.target_release = Some(target.clone());
                action.target_why = Some(target_why);
                action.why = match kind {
                    ActionKind::Rollback => format!("policy {policy}: deploy the last release known good"),
                    ActionKind::Retry if obs.unjudged => "on_deploy_failure = \"retry\": the deployment failed and the failure may be transient; redeploy the same release once".into(),
                    ActionKind::Retry => "on_failure = \"retry\": the failure may be transient; redeploy the same release once".into(),
                };
                let verb = if kind == ActionKind::Retry {
                    "redeploy"
                } else {
                    "roll back to"
                };
                if self.cfg.dry_run {
                    return self.dry_run(action, Chosen::DryRun, format!("{verb} {target}"));
                }
                let since = before(self.now, self.cfg.max_actions_period);
                self.r.actions.retain(|t| *t >= since);
                let used = self.r.actions.len();
                if used >= self.cfg.max_actions as usize {
                    let msg = format!(
                        "paused: {used} automatic deploys within {} reached max_actions = {}; would {verb} {target}. Resume with `backstop resume {}`",
                        humantime::format_duration(self.cfg.max_actions_period),
                        self.cfg.max_actions,
                        self.cfg.name
                    );
                    action.why = msg.clone();
                    self.conclude(action, Chosen::Pause, AlertKind::Paused, &msg);
                    self.log(Level::Error, msg.clone());
                    self.r.state = Some(WatchState::Paused);
                    self.r.attention = Some(msg.clone());
                    self.finish(VerdictKind::Condemned, reason, Some(msg));
                    return;
                }
                self.start_intent(action, reason, kind, target);
            }
        }
    }

    fn verdict_facts(&self, reason: &str) -> VerdictFacts {
        VerdictFacts {
            verdict: VerdictKind::Condemned,
            decided_at: self.now,
            summary: reason.to_string(),
        }
    }

    /// Which policy applies and what it means for the condemned observation.
    fn plan(&self, candidates: Option<Result<Vec<String>, String>>) -> (String, Plan) {
        let Some(obs) = &self.r.observation else {
            return (String::new(), Plan::Notify(String::new()));
        };
        let fallback = |f: Fallback| match f {
            Fallback::Rollback => None,
            Fallback::Notify => Some(Plan::Notify(
                "the retried release was condemned again; then = \"notify\"".into(),
            )),
        };
        if let Some(planned) = self.plan_for_failed_deployment(candidates.clone()) {
            return planned;
        }
        let policy = match (obs.kind, self.cfg.on_failure) {
            (ObservationKind::Rollback, _) => {
                return (
                    self.cfg.on_failure.as_str().into(),
                    Plan::Stuck(
                        format!("the rollback to {} was condemned too; backstop never rolls back a rollback: a human must act", obs.release),
                        RollbackOutcome::LoopPrevented,
                    ),
                )
            }
            (ObservationKind::Retry, OnFailure::Retry { then }) => match fallback(then) {
                Some(p) => return ("retry".into(), p),
                None => "retry, then rollback".to_string(),
            },
            (ObservationKind::Retry, _) | (_, OnFailure::Rollback) => "rollback".into(),
            (_, OnFailure::Notify) => {
                return (
                    "notify".into(),
                    Plan::Notify("on_failure = \"notify\", so no deploy was made".into()),
                )
            }
            (_, OnFailure::Command) => return ("command".into(), Plan::Command),
            (_, OnFailure::Retry { .. }) => {
                return (
                    "retry".into(),
                    Plan::Deploy {
                        kind: ActionKind::Retry,
                        target: obs.release.clone(),
                        target_why: "the same release, once (roll-over)".into(),
                    },
                )
            }
        };
        (policy, self.plan_rollback(candidates))
    }

    /// `on_deploy_failure` for a release condemned because its deployment failed (unjudged),
    /// or a retry made for a failed deployment that failed again; `None` for any other.
    fn plan_for_failed_deployment(
        &self,
        candidates: Option<Result<Vec<String>, String>>,
    ) -> Option<(String, Plan)> {
        let obs = self.r.observation.as_ref()?;
        let retried = obs.kind == ObservationKind::Retry && obs.cause == Cause::DeployFailed;
        if !(obs.unjudged || retried) || obs.kind == ObservationKind::Rollback {
            return None;
        }
        let name = |p: &str| format!("on_deploy_failure = {p}");
        // The deployment that failed was of the last verified release (a redeploy): rolling
        // "back" past it would be a downgrade.
        let of_last_good = self.r.last_good_release.as_ref() == Some(&obs.release);
        Some(match (retried, self.cfg.on_deploy_failure) {
            (true, OnDeployFailure::Retry { then: Fallback::Rollback }) if of_last_good => (
                name("retry, then rollback"),
                Plan::Notify(format!(
                    "the redeploy of {} failed again and it is the last release backstop verified; nothing older is deployed automatically",
                    obs.release
                )),
            ),
            (false, OnDeployFailure::Rollback) if of_last_good => (
                name("rollback"),
                Plan::Deploy {
                    kind: ActionKind::Rollback,
                    target: obs.release.clone(),
                    target_why: "the last release backstop verified good: the deployment that failed was a redeploy of it".into(),
                },
            ),
            (true, OnDeployFailure::Retry { then: Fallback::Rollback }) => {
                (name("retry, then rollback"), self.plan_rollback(candidates))
            }
            (true, _) => (
                name(self.cfg.on_deploy_failure.as_str()),
                Plan::Notify(
                    "the release was redeployed once after its deployment failed and failed again; on_deploy_failure_then = \"notify\", so no further deploy was made".into(),
                ),
            ),
            (false, OnDeployFailure::Retry { .. }) => (
                name("retry"),
                Plan::Deploy {
                    kind: ActionKind::Retry,
                    target: obs.release.clone(),
                    target_why: "the same release, once: the deployment failed and the failure may be transient (a locked file, a flaky feed)".into(),
                },
            ),
            (false, OnDeployFailure::Rollback) => (name("rollback"), self.plan_rollback(candidates)),
            (false, OnDeployFailure::Notify | OnDeployFailure::Observe) => (
                name("notify"),
                Plan::Notify("on_deploy_failure = \"notify\", so no deploy was made".into()),
            ),
        })
    }

    /// A rollback target, unless irreversibility forbids any automatic deploy.
    fn plan_rollback(&self, candidates: Option<Result<Vec<String>, String>>) -> Plan {
        let Some(obs) = &self.r.observation else {
            return Plan::Notify(String::new());
        };
        if obs.rollback_safe == Some(false) {
            return Plan::Freeze(format!(
                "release {} is marked as not safe to roll back from (e.g. it migrated a database)",
                obs.release
            ));
        }
        let usable = |r: &str| r != obs.release && !self.r.quarantined.contains_key(r);
        let (target, why) = match (&self.r.last_good_release, candidates) {
            (Some(good), _) if usable(good) => {
                (good.clone(), "the last release backstop verified good".to_string())
            }
            (_, None) => return Plan::NeedCandidates,
            (_, Some(Ok(list))) => match list.into_iter().find(|r| usable(r)) {
                Some(r) => (r, "backstop has verified no release yet: the newest successful deployment of another, non-quarantined release".to_string()),
                None => return Plan::Stuck(
                    format!("release {} condemned but no earlier release is known good and not quarantined; nothing to roll back to: a human must act", obs.release),
                    RollbackOutcome::NoTarget,
                ),
            },
            (_, Some(Err(e))) => return Plan::Stuck(
                format!("release {} condemned but the rollback target could not be determined: {e}; a human must act", obs.release),
                RollbackOutcome::Failed,
            ),
        };
        // Newest first: a release marked irreversible deployed after the target's last
        // deployment would be crossed.
        for d in self.r.deployed.iter().rev() {
            if d.release == target {
                break;
            }
            if d.rollback_safe == Some(false) {
                return Plan::Freeze(format!(
                    "rolling back to {target} would cross release {}, which is marked as not safe to roll back from",
                    d.release
                ));
            }
        }
        Plan::Deploy {
            kind: ActionKind::Rollback,
            target,
            target_why: why,
        }
    }

    /// Records the decision in the evidence and tells the sinks.
    fn conclude(&mut self, mut action: ActionFacts, chosen: Chosen, alert: AlertKind, msg: &str) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        let reason = obs.condemned.clone().unwrap_or_default();
        action.chosen = chosen;
        if chosen != Chosen::None {
            self.fx.push(Effect::Metric(Metric::Action(chosen)));
        }
        self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
            observation_id: obs.id.clone(),
            observation: Some(obs.clone()),
            verdict: Some(self.verdict_facts(&reason)),
            action: Some(action),
            notes: vec![
                (self.now, format!("condemned: {reason}")),
                (self.now, format!("decision: {} — {msg}", chosen.as_str())),
            ],
            ..EvidencePatch::default()
        })));
        self.notify(&obs.id, alert, &obs.release, msg, Some(&obs.id));
    }

    /// Closes a condemned observation that needs a human: the watch is failed with the reason.
    pub(super) fn escalate(&mut self, reason: String, msg: String) {
        self.log(Level::Error, msg.clone());
        self.r.state = Some(WatchState::Failed);
        self.r.attention = Some(msg.clone());
        self.finish(VerdictKind::Condemned, reason, Some(msg));
    }

    fn dry_run(&mut self, mut action: ActionFacts, chosen: Chosen, would: String) {
        let reason = self
            .r
            .observation
            .as_ref()
            .and_then(|o| o.condemned.clone())
            .unwrap_or_default();
        let msg = format!("dry run: would {would}; nothing was called");
        action.dry_run = true;
        action.why = format!("{} ({msg})", action.why);
        self.conclude(action, chosen, AlertKind::Condemned, &msg);
        self.log(Level::Warn, msg.clone());
        self.r.state = Some(WatchState::Idle);
        self.r.attention = Some(msg.clone());
        self.finish(VerdictKind::Condemned, reason, Some(msg));
    }

    /// Records the command as started (at most once) and asks the shell to run it.
    pub(super) fn run_command(&mut self, purpose: CommandPurpose) {
        self.r.command = Some(PendingCommand {
            purpose,
            started: self.now,
            observation: self.r.observation.as_ref().map(|o| o.id.clone()),
        });
        self.fx.push(Effect::RunCommand(purpose));
    }

    /// Persists the intent, closes the observation, and deploys (after the before-hook).
    fn start_intent(
        &mut self,
        mut action: ActionFacts,
        reason: String,
        kind: ActionKind,
        target: String,
    ) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        let id = format!("act-{}", obs.id.trim_start_matches("obs-"));
        let marker = format!("[backstop-{}:{id}]", kind.as_str());
        let mut comments = format!(
            "backstop {kind} of {watch}: release {rel}{ver} was condemned ({reason}). Deploying {target} ({why}). Details: GET /v1/verdicts/{obs_id}",
            kind = kind.as_str(),
            watch = self.cfg.name,
            rel = obs.release,
            ver = obs.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default(),
            why = action.target_why.clone().unwrap_or_default(),
            obs_id = obs.id,
        );
        if let Some(f) = &obs.failure {
            // The people reading the deployer's UI see why without opening backstop.
            comments.push_str(&format!(
                " The deployment of {} failed: {}.",
                obs.release,
                f.summary()
            ));
            if !f.log_tail.is_empty() {
                comments.push_str(" Log tail: ");
                comments.push_str(&f.log_tail.join(" | "));
            }
        }
        if comments.len() > MAX_COMMENT {
            let mut cut = MAX_COMMENT;
            while !comments.is_char_boundary(cut) {
                cut -= 1;
            }
            comments.truncate(cut);
            comments.push_str("...");
        }
        comments.push(' ');
        comments.push_str(&marker);
        let target_version = match kind {
            ActionKind::Retry => obs.version.clone(),
            ActionKind::Rollback => self
                .r
                .last_good_version
                .clone()
                .filter(|_| self.r.last_good_release.as_deref() == Some(target.as_str())),
        };
        let intent = DeployIntent {
            id,
            observation_id: obs.id.clone(),
            watch: self.cfg.name.clone(),
            kind,
            condemned_release: obs.release.clone(),
            condemned_deployment: obs.deployment_id.clone(),
            condemned_created: obs.created,
            condemned_deployed_at: Some(obs.deployed_at),
            target_release: target.clone(),
            target_version,
            environment: self.cfg.environment.clone(),
            marker,
            comments,
            decided_at: self.now,
            project: self.cfg.project.clone(),
            cause: if obs.unjudged || obs.cause == Cause::DeployFailed {
                Cause::DeployFailed
            } else {
                Cause::Condemned
            },
            ..DeployIntent::default()
        };
        action.deploy = Some(super::deploy::deploy_facts(&intent));
        self.r.actions.push(self.now);
        let msg = format!("{} to {target}", kind.as_str());
        let chosen = match kind {
            ActionKind::Rollback => Chosen::Rollback,
            ActionKind::Retry => Chosen::Retry,
        };
        self.conclude(
            action,
            chosen,
            AlertKind::Condemned,
            &format!("release {} condemned; {msg}", obs.release),
        );
        self.log(
            Level::Warn,
            format!("deploying: {msg} (condemned {})", obs.release),
        );
        self.finish(VerdictKind::Condemned, reason, Some(msg));
        self.r.intent = Some(intent);
        self.r.state = Some(WatchState::RollingBack);
        match &self.cfg.command {
            Some(h) if h.when == HookWhen::Before => self.run_command(CommandPurpose::Before),
            _ => self.fx.push(Effect::Execute),
        }
    }
}
