//! Rolling a condemned release back, exactly once.
//!
//! The intent (target, marker) is persisted before any deploy call. Before every create attempt
//! — the first one, retries after faults, and after a restart — the deployer's recent
//! deployments are searched for the intent's marker, so a create whose response was lost is
//! adopted instead of repeated. Deployer calls never run in a loop: a rollback that is itself
//! condemned leaves the watch failed for a human.

use chrono::Utc;
use tokio::time::Instant;

use super::watch::WatchActor;
use super::{new_id, Trigger};
use crate::deployer::retry::delay;
use crate::deployer::{Deployer, DeployerError};
use crate::judge::observation::VerdictKind;
use crate::metrics::RollbackOutcome;
use crate::status::WatchState;
use crate::store::{ObservationKind, ObservationRecord, RollbackRecord, RollbackState, Source};

/// How many recent deployments are searched for a marker or a fallback target.
const SEARCH_DEPTH: usize = 30;
/// Octopus shows Comments in its UI; keep them readable.
const MAX_COMMENT: usize = 1800;

/// How an attempt to create the rollback deployment ended.
enum Created {
    Yes,
    Cancelled,
    Failed(String),
}

impl WatchActor {
    /// Chooses a target, persists the intent, closes the observation and rolls back.
    pub(super) async fn rollback_condemned(&mut self, obs: ObservationRecord, reason: String) {
        let target = match self.choose_target(&obs.release).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                let msg = format!(
                    "release {} condemned but no earlier release is known good and not quarantined; nothing to roll back to: a human must act",
                    obs.release
                );
                self.escalate(reason, msg, Some(RollbackOutcome::NoTarget));
                return;
            }
            Err(e) => {
                let msg = format!(
                    "release {} condemned but the rollback target could not be determined: {e}; a human must act",
                    obs.release
                );
                self.escalate(reason, msg, Some(RollbackOutcome::Failed));
                return;
            }
        };
        let id = new_id("rb");
        let marker = format!("[backstop-rollback:{id}]");
        let evidence = summarise_evidence(&obs);
        let mut comments = format!(
            "backstop rollback of {watch}: release {rel}{ver} was condemned ({reason}). Redeploying {target}, the last release backstop verified good. Evidence: {evidence}",
            watch = self.cfg.name,
            rel = obs.release,
            ver = obs.version.as_deref().map(|v| format!(" ({v})")).unwrap_or_default(),
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
            condemned_release: obs.release.clone(),
            target_release: target.clone(),
            target_version: None,
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
                // Without a durable intent a crash could post twice: do not post at all.
                let msg = format!("cannot persist rollback intent ({e}); not rolling back");
                self.escalate(reason, msg, Some(RollbackOutcome::Failed));
                return;
            }
        };
        tracing::warn!(watch = %self.name(), condemned = %obs.release, target = %target, "rolling back");
        self.finish(
            VerdictKind::Condemned,
            reason,
            Some(format!("rollback to {target}")),
        );
        self.execute_rollback(intent).await;
    }

    /// The last verified release, else the newest successful deployment of another,
    /// non-quarantined release. Never the condemned release.
    async fn choose_target(&self, condemned: &str) -> Result<Option<String>, DeployerError> {
        let store = &self.shared.store;
        let usable =
            |r: &str| r != condemned && !store.is_quarantined(self.name(), r).unwrap_or(true);
        if let Some(good) = &self.record.last_good_release {
            if usable(good) {
                return Ok(Some(good.clone()));
            }
        }
        let deployments =
            crate::deployer::retry::with_retry(self.deployer.max_retries(), &self.cancel, || {
                self.deployer.successful_deployments(
                    &self.cfg.project,
                    &self.cfg.environment,
                    SEARCH_DEPTH,
                )
            })
            .await?;
        Ok(deployments
            .into_iter()
            .map(|d| d.release_id)
            .find(|r| usable(r)))
    }

    /// Drives an intent to its end: create (once), follow the task, observe the result.
    pub(super) async fn execute_rollback(&mut self, mut rec: RollbackRecord) {
        self.record.state = Some(WatchState::RollingBack);
        self.rollback = Some(rec.clone());
        self.save_record();
        if rec.state == RollbackState::Pending {
            match self.create_once(&mut rec).await {
                Created::Yes => {}
                Created::Cancelled => return,
                Created::Failed(msg) => return self.rollback_failed(rec, msg),
            }
        }
        if rec.state == RollbackState::Created {
            match self.follow_task(&mut rec).await {
                Some(Ok(())) => {}
                Some(Err(msg)) => return self.rollback_failed(rec, msg),
                None => return, // shutdown; resumed after restart
            }
        }
        if rec.state != RollbackState::Succeeded {
            return;
        }
        tracing::info!(watch = %self.name(), target = %rec.target_release, deployment = ?rec.deployment_id, "rollback deployment succeeded; observing it");
        self.shared
            .metrics
            .rollback(self.name(), RollbackOutcome::Succeeded);
        self.record.state = Some(WatchState::Idle);
        self.record.attention = None;
        self.rollback = Some(rec.clone());
        self.start_observation(
            Trigger {
                release: rec.target_release.clone(),
                version: rec.target_version.clone(),
                deployment_id: rec.deployment_id.clone(),
                deployed_at: Some(Utc::now()),
                source: Source::Rollback,
            },
            Utc::now(),
            ObservationKind::Rollback,
        );
    }

    fn persist_rollback(&mut self, rec: &RollbackRecord) {
        if let Err(e) = self.shared.store.update_rollback(rec) {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist rollback progress");
        }
        self.rollback = Some(rec.clone());
        self.publish();
    }

    fn rollback_failed(&mut self, mut rec: RollbackRecord, msg: String) {
        tracing::error!(watch = %self.name(), target = %rec.target_release, "rollback failed: {msg}");
        rec.state = RollbackState::Failed;
        rec.detail = Some(msg.clone());
        self.persist_rollback(&rec);
        self.shared
            .metrics
            .rollback(self.name(), RollbackOutcome::Failed);
        self.record.state = Some(WatchState::Failed);
        self.record.attention = Some(format!(
            "rollback of {} to {} failed: {msg}; a human must act",
            rec.condemned_release, rec.target_release
        ));
        self.save_record();
    }

    /// Creates the rollback deployment unless one with the intent's marker already exists.
    async fn create_once(&mut self, rec: &mut RollbackRecord) -> Created {
        let attempts = self.deployer.max_retries().max(1);
        let mut last_error: Option<DeployerError> = None;
        for attempt in 0..attempts {
            self.pulse.beat();
            if attempt > 0 {
                let retry_after = last_error.as_ref().and_then(DeployerError::retry_after);
                let wait = delay(attempt - 1, retry_after);
                tokio::select! {
                    _ = self.cancel.cancelled() => return Created::Cancelled,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            match find_by_marker(
                &self.deployer,
                &self.cfg.project,
                &self.cfg.environment,
                rec,
            )
            .await
            {
                Ok(Some(d)) => {
                    tracing::warn!(watch = %self.name(), deployment = %d.id, "found the rollback deployment an earlier attempt made; adopting it");
                    rec.deployment_id = Some(d.id);
                    rec.task_id = d.task_id;
                    rec.state = RollbackState::Created;
                    self.persist_rollback(rec);
                    return Created::Yes;
                }
                Ok(None) => {}
                Err(e) if e.is_retryable() => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => return Created::Failed(format!("cannot list deployments: {e}")),
            }
            match self
                .deployer
                .create_deployment(&rec.target_release, &rec.environment, &rec.comments)
                .await
            {
                Ok(d) => {
                    tracing::info!(watch = %self.name(), deployment = %d.id, task = ?d.task_id, "rollback deployment created");
                    rec.deployment_id = Some(d.id);
                    rec.task_id = d.task_id;
                    rec.state = RollbackState::Created;
                    self.persist_rollback(rec);
                    return Created::Yes;
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(watch = %self.name(), error = %e, attempt = attempt + 1, "rollback create failed; will look for it before retrying");
                    last_error = Some(e);
                }
                Err(e) => return Created::Failed(format!("deployer refused the rollback: {e}")),
            }
        }
        Created::Failed(format!(
            "gave up after {attempts} attempts; last error: {}",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        ))
    }

    /// Polls the rollback's task to completion. `None` on shutdown.
    async fn follow_task(&mut self, rec: &mut RollbackRecord) -> Option<Result<(), String>> {
        if rec.task_id.is_none() {
            if let Some(dep) = rec.deployment_id.clone() {
                if let Ok(d) = self.deployer.deployment(&dep).await {
                    rec.task_id = d.task_id;
                }
            }
        }
        let Some(task_id) = rec.task_id.clone() else {
            return Some(Err("the rollback deployment has no task to follow".into()));
        };
        let deadline = Instant::now() + self.deployer.task_timeout();
        loop {
            self.pulse.beat();
            match self.deployer.task(&task_id).await {
                Ok(t) if t.is_completed => {
                    return Some(if t.finished_successfully {
                        rec.state = RollbackState::Succeeded;
                        rec.detail = None;
                        self.persist_rollback(rec);
                        Ok(())
                    } else {
                        Err(format!(
                            "task {task_id} ended {:?}{}",
                            t.state,
                            t.error_message
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default()
                        ))
                    });
                }
                Ok(t) => {
                    let detail = if t.has_pending_interruptions {
                        format!("task {task_id} is waiting for manual intervention in the deployer")
                    } else {
                        format!("task {task_id} is {:?}", t.state)
                    };
                    if rec.detail.as_deref() != Some(detail.as_str()) {
                        rec.detail = Some(detail);
                        self.persist_rollback(rec);
                    }
                }
                Err(e) => {
                    tracing::warn!(watch = %self.name(), error = %e, "cannot read rollback task; will retry");
                }
            }
            if Instant::now() >= deadline {
                return Some(Err(format!(
                    "task {task_id} did not complete within {}",
                    humantime::format_duration(self.deployer.task_timeout())
                )));
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return None,
                _ = tokio::time::sleep(self.deployer.task_poll()) => {}
            }
        }
    }
}

/// A deployment of the intent's target whose comments carry its marker.
async fn find_by_marker(
    deployer: &Deployer,
    project: &str,
    environment: &str,
    rec: &RollbackRecord,
) -> Result<Option<crate::deployer::Deployment>, DeployerError> {
    let recent = deployer
        .recent_deployments(project, environment, SEARCH_DEPTH)
        .await?;
    Ok(recent.into_iter().find(|d| {
        d.release_id == rec.target_release
            && d.comments
                .as_deref()
                .is_some_and(|c| c.contains(&rec.marker))
    }))
}

/// One line per check: its latest value against its rules, for the deployment comments.
fn summarise_evidence(obs: &ObservationRecord) -> String {
    obs.tracker
        .checks
        .iter()
        .map(|c| {
            let last = c
                .samples
                .back()
                .map(|s| match (&s.value, &s.outcome) {
                    (_, crate::judge::Outcome::Fail { limit }) => limit.clone(),
                    (Some(v), o) => format!("{v} ({})", o.label()),
                    (None, o) => o.label().to_string(),
                })
                .unwrap_or_else(|| "no samples".into());
            let baseline = c
                .baseline
                .map(|b| format!(", baseline {b}"))
                .unwrap_or_default();
            format!(
                "{}: {} failed/{} samples, last {last}{baseline}",
                c.name,
                c.failures,
                c.passes + c.failures + c.errors
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}
