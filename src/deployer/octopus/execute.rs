//! Deploying an intent through Octopus, exactly once.
//!
//! Before every create attempt — the first one, retries after faults, and after a restart —
//! the recent deployments of the project+environment are searched for the intent's marker (a
//! unique text in Comments), so a create whose response was lost is adopted, never repeated.
//! Octopus has no idempotency key on create; this search is its substitute.

use super::OctopusClient;
use crate::deployer::retry::delay;
use crate::deployer::{DeployerError, Deployment, Exec, ExecOutcome, Target};
use crate::store::{RollbackRecord, RollbackState};

/// How many recent deployments are searched for a marker.
const SEARCH_DEPTH: usize = 30;

impl OctopusClient {
    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        rec: &mut RollbackRecord,
        mut exec: Exec<'_>,
    ) -> ExecOutcome {
        if rec.state == RollbackState::Pending {
            if let Some(out) = self.create_once(target, rec, &mut exec).await {
                return out;
            }
        }
        self.follow_task(rec, &mut exec).await
    }

    /// Creates the deployment unless one with the marker exists. `None` when it exists now.
    async fn create_once(
        &self,
        target: &Target<'_>,
        rec: &mut RollbackRecord,
        exec: &mut Exec<'_>,
    ) -> Option<ExecOutcome> {
        let attempts = self.config.calls.max_retries.max(1);
        let mut last_error: Option<DeployerError> = None;
        for attempt in 0..attempts {
            (exec.progress)(rec);
            if attempt > 0 {
                let wait = delay(
                    attempt - 1,
                    last_error.as_ref().and_then(DeployerError::retry_after),
                );
                if !exec.sleep(wait).await {
                    return Some(ExecOutcome::Cancelled);
                }
            }
            match self.find_by_marker(target, rec).await {
                Ok(Some(d)) => {
                    tracing::warn!(watch = %target.watch, deployment = %d.id, "found the deployment an earlier attempt made; adopting it");
                    adopt(rec, d);
                    (exec.progress)(rec);
                    return None;
                }
                Ok(None) => {}
                Err(e) if e.is_retryable() => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => {
                    return Some(ExecOutcome::Failed(format!("cannot list deployments: {e}")))
                }
            }
            rec.calls += 1;
            (exec.progress)(rec);
            // Not cancellable: an in-flight create is allowed to finish (bounded by the timeout).
            match self
                .create_deployment(&rec.target_release, &rec.environment, &rec.comments)
                .await
            {
                Ok(d) => {
                    tracing::info!(watch = %target.watch, deployment = %d.id, task = ?d.task_id, "deployment created");
                    adopt(rec, d);
                    (exec.progress)(rec);
                    return None;
                }
                Err(e) if e.is_retryable() => {
                    tracing::warn!(watch = %target.watch, error = %e, attempt = attempt + 1, "create failed; will look for it before retrying");
                    last_error = Some(e);
                }
                Err(e) => {
                    return Some(ExecOutcome::Failed(format!(
                        "Octopus refused the deployment: {e}"
                    )))
                }
            }
        }
        Some(ExecOutcome::Failed(format!(
            "gave up after {attempts} attempts; last error: {}",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// A deployment of the intent's target whose comments carry its marker.
    async fn find_by_marker(
        &self,
        target: &Target<'_>,
        rec: &RollbackRecord,
    ) -> Result<Option<Deployment>, DeployerError> {
        let recent = self
            .deployments(target.project, target.environment, None, SEARCH_DEPTH)
            .await?;
        Ok(recent.into_iter().find(|d| {
            d.release_id == rec.target_release
                && d.comments
                    .as_deref()
                    .is_some_and(|c| c.contains(&rec.marker))
        }))
    }

    /// Polls the deployment's task to completion.
    async fn follow_task(&self, rec: &mut RollbackRecord, exec: &mut Exec<'_>) -> ExecOutcome {
        if rec.task_id.is_none() {
            if let Some(dep) = rec.deployment_id.clone() {
                if let Ok(d) = self.deployment(&dep).await {
                    rec.task_id = d.task_id;
                }
            }
        }
        let Some(task_id) = rec.task_id.clone() else {
            return ExecOutcome::Failed("the deployment has no task to follow".into());
        };
        let timeout = self.config.calls.task_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            (exec.progress)(rec);
            match self.task(&task_id).await {
                Ok(t) if t.is_completed => {
                    return if t.finished_successfully {
                        rec.state = RollbackState::Succeeded;
                        rec.detail = None;
                        (exec.progress)(rec);
                        ExecOutcome::Succeeded
                    } else {
                        ExecOutcome::Failed(format!(
                            "task {task_id} ended {:?}{}",
                            t.state,
                            t.error_message
                                .map(|m| format!(": {m}"))
                                .unwrap_or_default()
                        ))
                    };
                }
                Ok(t) => {
                    let detail = if t.has_pending_interruptions {
                        format!("task {task_id} is waiting for manual intervention in Octopus")
                    } else {
                        format!("task {task_id} is {:?}", t.state)
                    };
                    if rec.detail.as_deref() != Some(detail.as_str()) {
                        rec.detail = Some(detail);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read deployment task; will retry");
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return ExecOutcome::Failed(format!(
                    "task {task_id} did not complete within {}",
                    humantime::format_duration(timeout)
                ));
            }
            if !exec.sleep(self.config.calls.task_poll).await {
                return ExecOutcome::Cancelled;
            }
        }
    }
}

fn adopt(rec: &mut RollbackRecord, d: Deployment) {
    rec.deployment_id = Some(d.id);
    rec.task_id = d.task_id;
    rec.state = RollbackState::Created;
}
