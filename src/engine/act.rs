//! Acting on a condemned release: rollback, retry (roll-over), notify, command, or — when no
//! automatic deploy is safe — freeze and tell a human why.
//!
//! Order of decisions: the loop breaker (a condemned rollback is never rolled back), the
//! policy (`on_failure`, or a retry's `then`), irreversibility (a release marked not safe to
//! roll back from, or a target older than such a release, freezes the watch), then the guards
//! (`dry_run` calls nothing; `max_actions` pauses the watch). Every step is written into the
//! evidence document and announced to the watch's sinks.

use chrono::Utc;

use super::watch::WatchActor;
use super::{new_id, Trigger};
use crate::command::CommandResult;
use crate::config::{Fallback, HookWhen, OnFailure};
use crate::deployer::{Exec, ExecOutcome, Target};
use crate::evidence::{ActionFacts, DeployFacts, Evidence};
use crate::judge::observation::VerdictKind;
use crate::metrics::RollbackOutcome;
use crate::sinks::AlertKind;
use crate::status::WatchState;
use crate::store::{
    ActionKind, ObservationKind, ObservationRecord, RollbackRecord, RollbackState, Source,
};

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
    /// Nothing can be done automatically (no target, deployer unreachable): a human must act.
    Stuck(String, RollbackOutcome),
}

impl WatchActor {
    /// The release under observation was condemned: decide, record, act.
    pub(super) async fn on_condemned(&mut self, reason: String) {
        let Some(obs) = self.obs.clone() else { return };
        tracing::warn!(watch = %self.name(), release = %obs.release, %reason, "release condemned");
        if let Err(e) = self
            .shared
            .store
            .quarantine(self.name(), &obs.release, &reason)
        {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist quarantine");
        }
        let (policy, plan) = self.plan(&obs).await;
        let mut ev = self.evidence_for(&obs);
        ev.note(format!("condemned: {reason}"));
        let mut action = ActionFacts {
            policy: policy.clone(),
            chosen: String::new(),
            why: String::new(),
            target_release: None,
            target_why: None,
            dry_run: self.cfg.dry_run,
            deploy: None,
            command: None,
        };
        match plan {
            Plan::Stuck(msg, outcome) => {
                action.chosen = "none".into();
                action.why = msg.clone();
                self.conclude(ev, action, AlertKind::RollbackFailed, &reason, &msg);
                self.escalate(reason, msg, Some(outcome));
            }
            Plan::Freeze(why) => {
                let msg = format!(
                    "frozen: {why}; backstop deploys nothing automatically, a human must decide"
                );
                action.chosen = "freeze".into();
                action.why = why;
                self.shared.metrics.action(self.name(), "freeze");
                self.conclude(ev, action, AlertKind::Frozen, &reason, &msg);
                self.escalate(reason, msg, None);
            }
            Plan::Notify(why) => {
                action.chosen = "notify".into();
                action.why = why.clone();
                self.shared.metrics.action(self.name(), "notify");
                let msg = format!("release {} condemned; {why}", obs.release);
                self.conclude(ev, action, AlertKind::Condemned, &reason, &msg);
                self.escalate(reason, msg, None);
            }
            Plan::Command => {
                action.chosen = "command".into();
                action.why = "on_failure = \"command\"".into();
                if self.cfg.dry_run {
                    return self.dry_run(ev, action, reason, "run the on_failure command".into());
                }
                let result = self.run_hook(&ev, &obs, None).await;
                let ok = result.as_ref().is_some_and(CommandResult::success);
                let described = result.as_ref().map(|r| r.describe()).unwrap_or_default();
                action.command = result;
                self.shared.metrics.action(self.name(), "command");
                let msg = format!(
                    "release {} condemned; ran the on_failure command: {described}",
                    obs.release
                );
                self.conclude(ev, action, AlertKind::Condemned, &reason, &msg);
                if ok {
                    self.record.state = Some(WatchState::Idle);
                    self.finish(VerdictKind::Condemned, reason, Some(msg));
                } else {
                    self.escalate(reason, msg, None);
                }
            }
            Plan::Deploy {
                kind,
                target,
                target_why,
            } => {
                action.chosen = kind.as_str().into();
                action.target_release = Some(target.clone());
                action.target_why = Some(target_why.clone());
                action.why = match kind {
                    ActionKind::Rollback => format!("policy {policy}: deploy the last release known good"),
                    ActionKind::Retry => "on_failure = \"retry\": the failure may be transient; redeploy the same release once".into(),
                };
                let verb = if kind == ActionKind::Retry {
                    "redeploy"
                } else {
                    "roll back to"
                };
                if self.cfg.dry_run {
                    return self.dry_run(ev, action, reason, format!("{verb} {target}"));
                }
                let since = Utc::now()
                    - chrono::Duration::from_std(self.cfg.max_actions_period)
                        .unwrap_or(chrono::Duration::MAX);
                let used = self
                    .shared
                    .store
                    .actions_since(self.name(), since)
                    .unwrap_or(0);
                if used >= self.cfg.max_actions as usize {
                    let msg = format!(
                        "paused: {used} automatic deploys within {} reached max_actions = {}; would {verb} {target}. Resume with `backstop resume {}`",
                        humantime::format_duration(self.cfg.max_actions_period),
                        self.cfg.max_actions,
                        self.cfg.name
                    );
                    action.chosen = "pause".into();
                    action.why = msg.clone();
                    self.shared.metrics.action(self.name(), "pause");
                    self.conclude(ev, action, AlertKind::Paused, &reason, &msg);
                    tracing::error!(watch = %self.name(), "{msg}");
                    self.record.state = Some(WatchState::Paused);
                    self.record.attention = Some(msg.clone());
                    self.finish(VerdictKind::Condemned, reason, Some(msg));
                    return;
                }
                self.deploy(obs, ev, action, reason, kind, target).await;
            }
        }
    }

    /// Which policy applies and what it means for this observation.
    async fn plan(&self, obs: &ObservationRecord) -> (String, Plan) {
        let fallback = |f: Fallback| match f {
            Fallback::Rollback => None,
            Fallback::Notify => Some(Plan::Notify(
                "the retried release was condemned again; then = \"notify\"".into(),
            )),
        };
        let (policy, rollback) = match (obs.kind, self.cfg.on_failure) {
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
                None => ("retry, then rollback".to_string(), true),
            },
            (ObservationKind::Retry, _) | (_, OnFailure::Rollback) => ("rollback".into(), true),
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
        debug_assert!(rollback);
        (policy, self.plan_rollback(obs).await)
    }

    /// A rollback target, unless irreversibility forbids any automatic deploy.
    async fn plan_rollback(&self, obs: &ObservationRecord) -> Plan {
        if obs.rollback_safe == Some(false) {
            return Plan::Freeze(format!(
                "release {} is marked as not safe to roll back from (e.g. it migrated a database)",
                obs.release
            ));
        }
        let store = &self.shared.store;
        let usable =
            |r: &str| r != obs.release && !store.is_quarantined(self.name(), r).unwrap_or(true);
        let (target, why) = match &self.record.last_good_release {
            Some(good) if usable(good) => (
                good.clone(),
                "the last release backstop verified good".to_string(),
            ),
            _ => {
                let t = self.target();
                match self.deployer.previous_releases(&t, &self.cancel).await {
                    Ok(list) => match list.into_iter().find(|r| usable(r)) {
                        Some(r) => (r, "backstop has verified no release yet: the newest successful deployment of another, non-quarantined release".to_string()),
                        None => {
                            return Plan::Stuck(
                                format!("release {} condemned but no earlier release is known good and not quarantined; nothing to roll back to: a human must act", obs.release),
                                RollbackOutcome::NoTarget,
                            )
                        }
                    },
                    Err(e) => {
                        return Plan::Stuck(
                            format!("release {} condemned but the rollback target could not be determined: {e}; a human must act", obs.release),
                            RollbackOutcome::Failed,
                        )
                    }
                }
            }
        };
        match store.irreversible_after(self.name(), &target) {
            Ok(Some(r)) => Plan::Freeze(format!(
                "rolling back to {target} would cross release {r}, which is marked as not safe to roll back from"
            )),
            Ok(None) => Plan::Deploy {
                kind: ActionKind::Rollback,
                target,
                target_why: why,
            },
            Err(e) => Plan::Stuck(
                format!("cannot read deployment history to check irreversibility: {e}"),
                RollbackOutcome::Failed,
            ),
        }
    }

    /// The deployer coordinates of this watch.
    pub(super) fn target(&self) -> Target<'_> {
        Target {
            watch: &self.cfg.name,
            project: &self.cfg.project,
            environment: &self.cfg.environment,
            application: self.cfg.application.as_deref(),
        }
    }

    fn dry_run(
        &mut self,
        mut ev: Evidence,
        mut action: ActionFacts,
        reason: String,
        would: String,
    ) {
        let msg = format!("dry run: would {would}; nothing was called");
        action.dry_run = true;
        action.why = format!("{} ({msg})", action.why);
        self.shared.metrics.action(self.name(), "dry_run");
        ev.note(msg.clone());
        self.conclude(ev, action, AlertKind::Condemned, &reason, &msg);
        tracing::warn!(watch = %self.name(), "{msg}");
        self.record.state = Some(WatchState::Idle);
        self.record.attention = Some(msg.clone());
        self.finish(VerdictKind::Condemned, reason, Some(msg));
    }

    /// Records the decision in the evidence and tells the sinks.
    fn conclude(
        &self,
        mut ev: Evidence,
        action: ActionFacts,
        alert: AlertKind,
        reason: &str,
        msg: &str,
    ) {
        ev.verdict = Some(crate::evidence::VerdictFacts {
            verdict: VerdictKind::Condemned,
            decided_at: Utc::now(),
            summary: reason.to_string(),
        });
        ev.note(format!("decision: {} — {}", action.chosen, msg));
        ev.action = Some(action);
        self.save_evidence(&ev);
        self.alert(alert, &ev.deployment.release.clone(), msg, Some(ev));
    }

    /// Persists the intent, closes the observation, and deploys.
    async fn deploy(
        &mut self,
        obs: ObservationRecord,
        mut ev: Evidence,
        mut action: ActionFacts,
        reason: String,
        kind: ActionKind,
        target: String,
    ) {
        let id = new_id("act");
        let marker = format!("[backstop-{}:{id}]", kind.as_str());
        let mut comments = format!(
            "backstop {kind} of {watch}: release {rel}{ver} was condemned ({reason}). Deploying {target} ({why}). Evidence: {summary}. Details: GET /v1/verdicts/{obs_id}",
            kind = kind.as_str(),
            watch = self.cfg.name,
            rel = obs.release,
            ver = obs.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default(),
            why = action.target_why.clone().unwrap_or_default(),
            summary = summarise(&ev),
            obs_id = obs.id,
        );
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
        let intent = RollbackRecord {
            id,
            observation_id: obs.id.clone(),
            watch: self.cfg.name.clone(),
            kind,
            calls: 0,
            condemned_release: obs.release.clone(),
            target_release: target.clone(),
            target_version: if kind == ActionKind::Retry {
                obs.version.clone()
            } else {
                self.record
                    .last_good_version
                    .clone()
                    .filter(|_| self.record.last_good_release.as_deref() == Some(target.as_str()))
            },
            environment: self.cfg.environment.clone(),
            marker,
            comments,
            state: RollbackState::Pending,
            deployment_id: None,
            task_id: None,
            detail: None,
            decided_at: Utc::now(),
        };
        let intent = match self.shared.store.insert_rollback(&intent) {
            Ok(i) => i,
            Err(e) => {
                // Without a durable intent a crash could deploy twice: do not deploy at all.
                let msg = format!("cannot persist the deploy intent ({e}); not deploying");
                action.chosen = "none".into();
                action.why = msg.clone();
                self.conclude(ev, action, AlertKind::RollbackFailed, &reason, &msg);
                self.escalate(reason, msg, Some(RollbackOutcome::Failed));
                return;
            }
        };
        self.shared.metrics.action(self.name(), kind.as_str());
        if let Some(hook) = self.cfg.command.clone() {
            if hook.when == HookWhen::Before {
                action.command = self.run_hook(&ev, &obs, Some(&intent)).await;
            }
        }
        action.deploy = Some(deploy_facts(self.deployer.name(), &intent));
        let msg = format!("{} to {target}", kind.as_str());
        self.conclude(
            ev.clone(),
            action.clone(),
            AlertKind::Condemned,
            &reason,
            &format!("release {} condemned; {msg}", obs.release),
        );
        ev.action = Some(action);
        tracing::warn!(watch = %self.name(), condemned = %obs.release, %target, kind = kind.as_str(), "deploying");
        self.finish(VerdictKind::Condemned, reason, Some(msg));
        self.execute_rollback(intent).await;
    }

    /// Runs `[watch.command]` with the evidence in a file; `None` when none is configured.
    async fn run_hook(
        &self,
        ev: &Evidence,
        obs: &ObservationRecord,
        intent: Option<&RollbackRecord>,
    ) -> Option<CommandResult> {
        let hook = self.cfg.command.as_ref()?;
        let dir = self.shared.evidence_dir.clone();
        let path = dir.join(format!("{}.json", ev.id));
        let _ = std::fs::create_dir_all(&dir);
        if let Err(e) = std::fs::write(&path, serde_json::to_vec_pretty(ev).unwrap_or_default()) {
            tracing::warn!(watch = %self.name(), error = %e, "cannot write the evidence file for the command");
        }
        let verdict = ev
            .verdict
            .as_ref()
            .map(|v| v.verdict.as_str())
            .unwrap_or("condemned");
        let env = vec![
            ("BACKSTOP_WATCH".to_string(), self.cfg.name.clone()),
            ("BACKSTOP_RELEASE".to_string(), obs.release.clone()),
            (
                "BACKSTOP_VERSION".to_string(),
                obs.version.clone().unwrap_or_default(),
            ),
            (
                "BACKSTOP_TARGET_RELEASE".to_string(),
                intent.map(|i| i.target_release.clone()).unwrap_or_default(),
            ),
            ("BACKSTOP_VERDICT".to_string(), verdict.to_string()),
            (
                "BACKSTOP_EVIDENCE_FILE".to_string(),
                path.display().to_string(),
            ),
            (
                "BACKSTOP_ACTION".to_string(),
                intent
                    .map(|i| i.kind.as_str())
                    .unwrap_or("command")
                    .to_string(),
            ),
        ];
        self.pulse.beat();
        let result = crate::command::run(&hook.argv, &env, hook.timeout).await;
        self.pulse.beat();
        tracing::info!(watch = %self.name(), argv = ?hook.argv, result = %result.describe(), "ran the watch command");
        Some(result)
    }

    /// Drives an intent to its end through the deployer and observes the result.
    pub(super) async fn execute_rollback(&mut self, mut rec: RollbackRecord) {
        self.record.state = Some(WatchState::RollingBack);
        self.rollback = Some(rec.clone());
        self.save_record();
        let store = self.shared.store.clone();
        let pulse = self.pulse.clone();
        let board = self.shared.status.clone();
        let name = self.cfg.name.clone();
        let mut progress = move |r: &RollbackRecord| {
            pulse.beat();
            if let Err(e) = store.update_rollback(r) {
                tracing::error!(error = %e, "cannot persist deploy progress");
            }
            board.update(&name, |w| w.rollback = Some(super::watch::rollback_view(r)));
        };
        let target = Target {
            watch: &self.cfg.name,
            project: &self.cfg.project,
            environment: &self.cfg.environment,
            application: self.cfg.application.as_deref(),
        };
        let outcome = self
            .deployer
            .execute(
                &target,
                &mut rec,
                Exec {
                    cancel: &self.cancel,
                    progress: &mut progress,
                },
            )
            .await;
        self.rollback = Some(rec.clone());
        let mut ev = self
            .shared
            .store
            .evidence(&rec.observation_id)
            .ok()
            .flatten();
        if let Some(ev) = ev.as_mut() {
            if let Some(a) = ev.action.as_mut() {
                a.deploy = Some(deploy_facts(self.deployer.name(), &rec));
            }
            if let (Some(task), crate::deployer::Deployer::Octopus(c)) =
                (&rec.task_id, &self.deployer)
            {
                let url = format!("{}/app#/{}/tasks/{task}", c.config().url, c.config().space);
                let url = crate::secret::redact_url(&url);
                if !ev.links.iter().any(|l| l.url == url) {
                    ev.links.push(crate::evidence::Link {
                        name: format!("Octopus task {task}"),
                        url,
                    });
                }
            }
            if let Some(dep) = &rec.deployment_id {
                if let Some(url) = self.deployer.link(&self.target(), dep) {
                    if !ev.links.iter().any(|l| l.url == url) {
                        ev.links.push(crate::evidence::Link {
                            name: format!("{} deployment {dep}", rec.kind.as_str()),
                            url,
                        });
                    }
                }
            }
        }
        match outcome {
            ExecOutcome::Cancelled => {
                if let Err(e) = self.shared.store.update_rollback(&rec) {
                    tracing::error!(watch = %self.name(), error = %e, "cannot persist deploy progress");
                }
            }
            ExecOutcome::Failed(msg) => self.rollback_failed(rec, msg, ev).await,
            ExecOutcome::Succeeded => {
                rec.state = RollbackState::Succeeded;
                rec.detail = None;
                let _ = self.shared.store.update_rollback(&rec);
                self.rollback = Some(rec.clone());
                tracing::info!(watch = %self.name(), target = %rec.target_release, deployment = ?rec.deployment_id, kind = rec.kind.as_str(), "deployment succeeded; observing it");
                self.shared
                    .metrics
                    .rollback(self.name(), RollbackOutcome::Succeeded);
                let msg = match rec.kind {
                    ActionKind::Rollback => format!(
                        "rolled back from {} to {}",
                        rec.condemned_release, rec.target_release
                    ),
                    ActionKind::Retry => format!("redeployed {} (retry)", rec.target_release),
                };
                if let Some(mut ev) = ev {
                    ev.note(msg.clone());
                    self.after_hook(&mut ev, &rec).await;
                    self.save_evidence(&ev);
                    self.alert(AlertKind::RolledBack, &rec.target_release, &msg, Some(ev));
                } else {
                    self.alert(AlertKind::RolledBack, &rec.target_release, &msg, None);
                }
                self.record.state = Some(WatchState::Idle);
                self.record.attention = None;
                let (kind, source) = match rec.kind {
                    ActionKind::Rollback => (ObservationKind::Rollback, Source::Rollback),
                    ActionKind::Retry => (ObservationKind::Retry, Source::Retry),
                };
                self.start_observation(
                    Trigger {
                        release: rec.target_release.clone(),
                        version: rec.target_version.clone(),
                        deployment_id: rec.deployment_id.clone(),
                        deployed_at: Some(Utc::now()),
                        source,
                        rollback_safe: None,
                    },
                    Utc::now(),
                    kind,
                    None,
                );
            }
        }
    }

    async fn after_hook(&mut self, ev: &mut Evidence, rec: &RollbackRecord) {
        if self
            .cfg
            .command
            .as_ref()
            .is_some_and(|h| h.when == HookWhen::After)
        {
            if let Some(obs) = self
                .shared
                .store
                .latest_observation(self.name())
                .ok()
                .flatten()
            {
                let result = self.run_hook(ev, &obs, Some(rec)).await;
                if let Some(a) = ev.action.as_mut() {
                    a.command = result;
                }
            }
        }
    }

    async fn rollback_failed(
        &mut self,
        mut rec: RollbackRecord,
        msg: String,
        ev: Option<Evidence>,
    ) {
        tracing::error!(watch = %self.name(), target = %rec.target_release, "{} failed: {msg}", rec.kind.as_str());
        rec.state = RollbackState::Failed;
        rec.detail = Some(msg.clone());
        if let Err(e) = self.shared.store.update_rollback(&rec) {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist deploy progress");
        }
        self.rollback = Some(rec.clone());
        self.shared
            .metrics
            .rollback(self.name(), RollbackOutcome::Failed);
        let attention = format!(
            "{} of {} to {} failed: {msg}; a human must act",
            rec.kind.as_str(),
            rec.condemned_release,
            rec.target_release
        );
        match ev {
            Some(mut ev) => {
                if let Some(a) = ev.action.as_mut() {
                    a.deploy = Some(deploy_facts(self.deployer.name(), &rec));
                }
                ev.note(attention.clone());
                self.after_hook(&mut ev, &rec).await;
                self.save_evidence(&ev);
                self.alert(
                    AlertKind::RollbackFailed,
                    &rec.condemned_release,
                    &attention,
                    Some(ev),
                );
            }
            None => self.alert(
                AlertKind::RollbackFailed,
                &rec.condemned_release,
                &attention,
                None,
            ),
        }
        self.record.state = Some(WatchState::Failed);
        self.record.attention = Some(attention);
        self.save_record();
    }
}

fn deploy_facts(deployer: &str, rec: &RollbackRecord) -> DeployFacts {
    DeployFacts {
        deployer: deployer.to_string(),
        deployment_id: rec.deployment_id.clone(),
        task_id: rec.task_id.clone(),
        state: serde_json::to_value(rec.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        detail: rec.detail.clone(),
    }
}

/// One clause per check: failures, samples, the last reading and the baseline.
fn summarise(ev: &Evidence) -> String {
    ev.checks
        .iter()
        .map(|c| {
            let t = &c.track;
            let last = t
                .samples
                .back()
                .map(|s| match (&s.value, &s.outcome) {
                    (_, crate::judge::Outcome::Fail { limit }) => limit.clone(),
                    (Some(v), o) => format!("{} ({})", crate::judge::num(*v), o.label()),
                    (None, o) => o.label().to_string(),
                })
                .unwrap_or_else(|| "no samples".into());
            let baseline = t
                .baseline
                .map(|b| format!(", baseline {}", crate::judge::num(b)))
                .unwrap_or_default();
            format!(
                "{}: {} failed/{} samples, last {last}{baseline}",
                t.name,
                t.failures,
                t.passes + t.failures + t.errors
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
