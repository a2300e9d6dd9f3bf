//! Deployment discovery by polling the deployer (`poll = "30s"` on a watch).
//!
//! The first successful listing only records what already exists: deployments made before
//! backstop started watching are history, not news. Afterwards the newest unknown successful
//! deployment becomes a trigger; older unknown ones are marked seen (the newest supersedes
//! them anyway). Deployments backstop made itself (rollbacks) are known and never re-observed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Command, Trigger};
use crate::config::WatchConfig;
use crate::deployer::Deployer;
use crate::metrics::Metrics;
use crate::model::Source;
use crate::store::Store;

/// Successful deployments examined per poll.
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
            r = deployer.successful_deployments(&cfg.project, &cfg.environment, DEPTH) => r,
        };
        let deployments = match found {
            Ok(d) => d,
            Err(e) => {
                metrics.poll(&cfg.name, false);
                tracing::warn!(watch = %cfg.name, error = %e, "polling deployments failed");
                continue;
            }
        };
        let news = new_deployments(&cfg.name, &store, deployments);
        // Counted once the listing is recorded, so "a poll completed" means it is history now.
        metrics.poll(&cfg.name, true);
        match news {
            Ok(Some(t)) => {
                tracing::info!(watch = %cfg.name, deployment = ?t.deployment_id, release = %t.release, "poll found a new deployment");
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

/// Decides what a listing means; records the deployments that are history.
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
    Ok(Some(Trigger {
        release: newest.release_id,
        version: None,
        deployment_id: Some(newest.id),
        deployed_at: Some(newest.created),
        source: Source::Poll,
        rollback_safe: None,
        failure: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn dep(id: &str, release: &str, minute: u32) -> crate::deployer::Deployment {
        crate::deployer::Deployment {
            id: id.into(),
            release_id: release.into(),
            project_id: "Projects-1".into(),
            environment_id: "Environments-1".into(),
            task_id: None,
            created: Utc.with_ymd_and_hms(2026, 1, 1, 0, minute, 0).unwrap(),
            comments: None,
            task_state: None,
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
}
