//! Carrying out an intent through Octopus: the I/O shell of [`super::protocol`].
//!
//! Each turn asks the protocol what to do, makes that one call, feeds the answer back and
//! persists the intent (before a create too, so a crash during the call is known to be one).

use chrono::{DateTime, Utc};

use super::protocol::{self, Call, Next, Settings};
use super::OctopusClient;
use crate::deployer::{DeployerError, Deployment, Exec, ExecOutcome, Target};
use crate::model::DeployIntent;

/// Deployments per page of the marker search.
const PAGE: usize = 30;
/// Pages searched at most (a runaway listing must not loop forever).
const MAX_PAGES: usize = 100;
/// Tasks read per search to tell whether a newer deployment ran.
const MAX_TASK_LOOKUPS: usize = 50;

impl OctopusClient {
    /// The protocol's timing from this deployer's config.
    pub fn settings(&self) -> Settings {
        let c = &self.config.calls;
        Settings {
            timeout: c.timeout,
            settle: c.settle,
            search_every: c.search_every(),
            max_retries: c.max_retries,
            task_poll: c.task_poll,
            task_timeout: c.task_timeout,
        }
    }

    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        exec: Exec<'_>,
    ) -> ExecOutcome {
        let s = self.settings();
        protocol::resume(rec, &s);
        (exec.progress)(rec);
        loop {
            let now = Utc::now();
            let next = protocol::next(rec, &s, now);
            if exec.cancel.is_cancelled() && matches!(next, Next::Call(_)) {
                // Shutdown or a reload: the persisted intent resumes in the next actor.
                return ExecOutcome::Cancelled;
            }
            match next {
                Next::Done(out) => {
                    if !rec.duplicates.is_empty() {
                        tracing::error!(watch = %target.watch, marker = %rec.marker, duplicates = ?rec.duplicates, "DUPLICATE deployments carry one intent's marker");
                    }
                    return out;
                }
                Next::Wait(until) => {
                    let d = (until - now).to_std().unwrap_or_default();
                    if !exec.sleep(d).await {
                        return ExecOutcome::Cancelled;
                    }
                }
                Next::Call(Call::Search { since }) => {
                    let started = Utc::now();
                    let project = if rec.project.is_empty() {
                        target.project
                    } else {
                        &rec.project
                    };
                    let r = self.search(project, &rec.environment, since).await;
                    let r = match r {
                        Ok(list) => {
                            protocol::resolve_condemned(rec, &list, started);
                            Ok(self.with_task_states(rec, list).await)
                        }
                        Err(e) => Err(e),
                    };
                    if let Ok(list) = &r {
                        tracing::debug!(watch = %target.watch, found = list.len(), "searched deployments for the intent's marker");
                    }
                    protocol::on_search(rec, &s, r, started);
                }
                Next::Call(Call::Create) => {
                    protocol::on_create_started(rec, Utc::now());
                    if !(exec.progress)(rec) {
                        // Unrecorded, a crash during the call could never be known as one.
                        let why = "cannot record the create attempt in the state database; nothing was posted".to_string();
                        return match rec.ambiguous_since {
                            Some(_) => ExecOutcome::Unknown(format!(
                                "{why}, but an earlier attempt's outcome is unknown"
                            )),
                            None => ExecOutcome::Failed(why),
                        };
                    }
                    // Not cancellable: an in-flight create is allowed to finish (bounded by
                    // the timeout), so its outcome is known rather than lost.
                    let r = self
                        .create_deployment(&rec.target_release, &rec.environment, &rec.comments)
                        .await;
                    match &r {
                        Ok(d) => {
                            tracing::info!(watch = %target.watch, deployment = %d.id, task = ?d.task_id, "deployment created")
                        }
                        Err(e) => {
                            tracing::warn!(watch = %target.watch, error = %e, attempt = rec.calls, "create failed; the marker is searched before any retry")
                        }
                    }
                    protocol::on_create(rec, &s, r, Utc::now());
                }
                Next::Call(Call::ReadDeployment(id)) => {
                    let r = self.deployment(&id).await;
                    protocol::on_deployment(rec, &s, r, Utc::now());
                }
                Next::Call(Call::ReadTask(id)) => {
                    let r = self.task(&id).await;
                    protocol::on_task(rec, &s, r, Utc::now());
                }
            }
            (exec.progress)(rec);
        }
    }

    /// Every deployment of the intent's project+environment created at or after `since`,
    /// newest first, across pages.
    async fn search(
        &self,
        project: &str,
        environment: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Deployment>, DeployerError> {
        let mut out = Vec::new();
        for page in 0..MAX_PAGES {
            let items = self
                .deployments_page(project, environment, None, page * PAGE, PAGE)
                .await?;
            let last = items.len() < PAGE || items.iter().any(|d| d.created < since);
            out.extend(items.into_iter().filter(|d| d.created >= since));
            if last {
                break;
            }
        }
        Ok(out)
    }

    /// Reads the task state of the (few, newest) deployments that would supersede the intent:
    /// one whose task failed or was cancelled never ran and supersedes nothing. A task that
    /// cannot be read is left unknown, which counts as running.
    async fn with_task_states(
        &self,
        rec: &DeployIntent,
        mut list: Vec<Deployment>,
    ) -> Vec<Deployment> {
        let mut looked = 0;
        for d in list.iter_mut() {
            if looked >= MAX_TASK_LOOKUPS || !protocol::supersedes(rec, d) {
                continue;
            }
            looked += 1;
            if let Some(task) = &d.task_id {
                if let Ok(t) = self.task(task).await {
                    d.task_state = Some(t.state);
                }
            }
        }
        list
    }
}
