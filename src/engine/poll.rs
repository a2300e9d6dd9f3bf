//! Deployment discovery by polling the deployer (`poll = "30s"` on a watch).
//!
//! A poll lists the deployments that have finished, successfully or not (Octopus task states
//! Success, Failed, TimedOut, Canceled: [`Deployer::finished_deployments`]); one still queued
//! or running is not listed, and is found when it finishes. The first successful listing only
//! records what already exists: deployments made before backstop started watching are
//! history, not news, failed ones too. Afterwards the newest unknown finished deployment
//! becomes a trigger, carrying its task's failure when it did not succeed; older unknown ones
//! are marked seen (the newest supersedes them anyway). Deployments backstop made itself
//! (rollbacks) are known and never re-observed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Command, Trigger};
use crate::config::WatchConfig;
use crate::deployer::Deployer;
use crate::metrics::Metrics;
use crate::model::{DeployFailure, Source};
use crate::store::Store;

/// Deployments examined per poll and task state.
const DEPTH: usize = 10;

pub(super) async fn run(
    cfg: Arc<WatchConfig>,
    deployer: Deployer,
    store: Store,
    metrics: Metrics,
    tx: mpsc::Sender<Command>,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let found = tokio::select! {
            _ = cancel.cancelled() => return,
            r = deployer.finished_deployments(&cfg.project, &cfg.environment, DEPTH) => r,
        };
        let deployments = match found {
            Ok(d) => d,
            Err(e) => {
                metrics.poll(&cfg.deployer, false);
                tracing::warn!(watch = %cfg.name, error = %e, "polling deployments failed");
                continue;
            }
        };
        // Reads and writes the store: off the runtime's workers (see `Store::blocking`).
        let name = cfg.name.clone();
        let news = store
            .blocking(move |s| new_deployments(&name, s, deployments))
            .await;
        // Counted once the listing is recorded, so "a poll completed" means it is history now.
        metrics.poll(&cfg.deployer, true);
        match news {
            Ok(Some(t)) => {
                let failed = t.failure.as_ref().and_then(|f| f.state.as_deref());
                tracing::info!(watch = %cfg.name, deployment = ?t.deployment_id, release = %t.release, failed, "poll found a new deployment");
                if tx.send(Command::Deploy(Box::new(t))).await.is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(watch = %cfg.name, error = %e, "cannot record polled deployments")
            }
        }
    }
}

/// Decides what a listing (newest first) means; records the deployments that are history.
fn new_deployments(
    watch: &str,
    store: &Store,
    deployments: Vec<crate::deployer::Deployment>,
) -> Result<Option<Trigger>, crate::store::StoreError> {
    let key = format!("poll_initialized:{watch}");
    if store.meta(&key)?.is_none() {
        for d in &deployments {
            store.mark_deployment_seen(watch, &d.id)?;
        }
        store.set_meta(&key, "1")?;
        return Ok(None);
    }
    let mut unknown = Vec::new();
    for d in deployments {
        if !store.deployment_known(watch, &d.id)? {
            unknown.push(d);
        }
    }
    // Newest first: the first is the trigger, the rest are superseded history.
    let mut it = unknown.into_iter();
    let Some(newest) = it.next() else {
        return Ok(None);
    };
    for older in it {
        store.mark_deployment_seen(watch, &older.id)?;
    }
    let failure = newest
        .task_state
        .as_ref()
        .filter(|s| s.is_failure())
        .map(|s| DeployFailure {
            task: newest.task_id.clone(),
            state: Some(s.as_str().to_string()),
            ..DeployFailure::default()
        });
    Ok(Some(Trigger {
        release: newest.release_id,
        version: None,
        deployment_id: Some(newest.id),
        deployed_at: Some(newest.created),
        source: Source::Poll,
        rollback_safe: None,
        failure,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deployer::{Deployment, TaskState};
    use chrono::{TimeZone, Utc};

    fn dep(id: &str, release: &str, minute: u32) -> crate::deployer::Deployment {
        ended(id, release, minute, TaskState::Success)
    }

    /// A deployment as [`Deployer::finished_deployments`] lists it: with its task's end state.
    fn ended(id: &str, release: &str, minute: u32, state: TaskState) -> Deployment {
        Deployment {
            id: id.into(),
            release_id: release.into(),
            project_id: "Projects-1".into(),
            environment_id: "Environments-1".into(),
            task_id: Some(id.replace("Deployments-", "ServerTasks-10")),
            created: Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap(),
            comments: None,
            task_state: Some(state),
        }
    }

    #[test]
    fn first_listing_is_history_then_newest_unknown_triggers() {
        let store = Store::in_memory().unwrap();
        let first = vec![
            dep("Deployments-2", "Releases-2", 2),
            dep("Deployments-1", "Releases-1", 1),
        ];
        assert_eq!(new_deployments("w", &store, first.clone()).unwrap(), None);
        assert_eq!(new_deployments("w", &store, first.clone()).unwrap(), None);
        let mut next = vec![
            dep("Deployments-4", "Releases-4", 4),
            dep("Deployments-3", "Releases-3", 3),
        ];
        next.extend(first);
        let t = new_deployments("w", &store, next.clone()).unwrap().unwrap();
        assert_eq!(t.deployment_id.as_deref(), Some("Deployments-4"));
        assert_eq!(t.source, Source::Poll);
        // Deployments-3 was superseded and is history now; 4 is known once the actor records it.
        assert!(store.deployment_known("w", "Deployments-3").unwrap());
        store.mark_deployment_seen("w", "Deployments-4").unwrap();
        assert_eq!(new_deployments("w", &store, next).unwrap(), None);
    }

    #[test]
    fn a_failed_deployment_triggers_with_its_task_and_state() {
        for state in [TaskState::Failed, TaskState::TimedOut, TaskState::Canceled] {
            let store = Store::in_memory().unwrap();
            assert_eq!(new_deployments("w", &store, vec![]).unwrap(), None);
            let list = vec![ended("Deployments-5", "Releases-5", 5, state.clone())];
            let t = new_deployments("w", &store, list).unwrap().unwrap();
            assert_eq!(t.deployment_id.as_deref(), Some("Deployments-5"));
            assert_eq!(t.release, "Releases-5");
            assert_eq!(
                t.failure,
                Some(DeployFailure {
                    task: Some("ServerTasks-105".into()),
                    state: Some(state.as_str().into()),
                    ..DeployFailure::default()
                }),
                "{state:?}"
            );
        }
        // A success carries no failure; neither does a state backstop does not know.
        let store = Store::in_memory().unwrap();
        assert_eq!(new_deployments("w", &store, vec![]).unwrap(), None);
        let list = vec![ended("Deployments-6", "Releases-6", 6, TaskState::Success)];
        assert_eq!(
            new_deployments("w", &store, list).unwrap().unwrap().failure,
            None
        );
        let odd = TaskState::Other("Paused".into());
        let list = vec![ended("Deployments-7", "Releases-7", 7, odd)];
        assert_eq!(
            new_deployments("w", &store, list).unwrap().unwrap().failure,
            None
        );
    }

    #[test]
    fn failed_deployments_are_history_at_first_and_newest_of_any_outcome_wins_after() {
        let store = Store::in_memory().unwrap();
        let first = vec![
            ended("Deployments-3", "Releases-3", 3, TaskState::Failed),
            ended("Deployments-2", "Releases-2", 2, TaskState::Success),
            ended("Deployments-1", "Releases-1", 1, TaskState::Canceled),
        ];
        assert_eq!(new_deployments("w", &store, first.clone()).unwrap(), None);
        for d in &first {
            assert!(store.deployment_known("w", &d.id).unwrap(), "{}", d.id);
        }

        // A success after a newer failure: the failure is newest and triggers.
        let mut next = vec![
            ended("Deployments-5", "Releases-5", 5, TaskState::TimedOut),
            ended("Deployments-4", "Releases-4", 4, TaskState::Success),
        ];
        next.extend(first.clone());
        let t = new_deployments("w", &store, next.clone()).unwrap().unwrap();
        assert_eq!(t.deployment_id.as_deref(), Some("Deployments-5"));
        assert_eq!(t.failure.unwrap().state.as_deref(), Some("TimedOut"));
        assert!(store.deployment_known("w", "Deployments-4").unwrap());

        // And a failure older than a new success is history.
        store.mark_deployment_seen("w", "Deployments-5").unwrap();
        let mut last = vec![
            ended("Deployments-7", "Releases-7", 7, TaskState::Success),
            ended("Deployments-6", "Releases-6", 6, TaskState::Failed),
        ];
        last.extend(next);
        let t = new_deployments("w", &store, last).unwrap().unwrap();
        assert_eq!(
            (t.deployment_id.as_deref(), t.failure),
            (Some("Deployments-7"), None)
        );
        assert!(store.deployment_known("w", "Deployments-6").unwrap());
    }

    #[test]
    fn a_deployment_still_running_is_picked_up_when_it_finishes() {
        // The listing only holds finished deployments: one running during a poll is simply
        // absent, and the next poll that lists it treats it as new.
        let store = Store::in_memory().unwrap();
        let history = vec![ended("Deployments-1", "Releases-1", 1, TaskState::Success)];
        assert_eq!(new_deployments("w", &store, history.clone()).unwrap(), None);
        assert_eq!(new_deployments("w", &store, history.clone()).unwrap(), None);
        let mut done = vec![ended("Deployments-2", "Releases-2", 2, TaskState::Failed)];
        done.extend(history);
        let t = new_deployments("w", &store, done).unwrap().unwrap();
        assert_eq!(t.deployment_id.as_deref(), Some("Deployments-2"));
        assert_eq!(t.failure.unwrap().task.as_deref(), Some("ServerTasks-102"));
    }
}
