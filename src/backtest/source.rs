//! Where past deployments come from: the deployer, read-only. Octopus only: it lists a
//! project's deployments to an environment with their creation times and task states.
//!
//! One listing per finished task state (as the daemon's polling: `taskState` takes one value),
//! each paged newest first until it reaches back past `--from`; so a backtest costs four small
//! requests for most ranges, and no task lookup. Release versions are one `GET` per release.
//! Every call is a `GET`, retried like the daemon's reads.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::history::wants_more;
use crate::deployer::octopus::OctopusClient;
use crate::deployer::{retry, DeployerError, Deployment, TaskState};

/// Deployments per page.
const TAKE: usize = 100;

/// Pages per listing at most: a server that ignores `skip` must not keep us paging forever.
const MAX_PAGES: usize = 1000;

/// Finished deployments of `project` to `environment`, each with its task's end state: those
/// created from `from` on, and at least the newest of each state before it (for the rollback
/// target of the first). Any order; [`super::history::ordered`] sorts them.
pub async fn deployments(
    c: &OctopusClient,
    project: &str,
    environment: &str,
    from: DateTime<Utc>,
    cancel: &CancellationToken,
) -> Result<Vec<Deployment>, DeployerError> {
    let listings = TaskState::FINISHED.map(|state| async move {
        let mut found: Vec<Deployment> = Vec::new();
        for page in 0..MAX_PAGES {
            let items = retry::with_retry(c.config().calls.max_retries, cancel, || {
                c.deployments_page(
                    project,
                    environment,
                    Some(state.as_str()),
                    page * TAKE,
                    TAKE,
                )
            })
            .await?;
            let more = wants_more(&items, TAKE, from);
            let repeated = items
                .first()
                .is_some_and(|d| found.iter().any(|f| f.id == d.id));
            found.extend(items.into_iter().map(|mut d| {
                d.task_state = Some(state.clone());
                d
            }));
            if !more || repeated {
                break;
            }
        }
        Ok::<_, DeployerError>(found)
    });
    Ok(futures_util::future::try_join_all(listings)
        .await?
        .into_iter()
        .flatten()
        .collect())
}

/// The version of each release, where Octopus says; a release that cannot be read is shown
/// by its id alone.
pub async fn versions(
    c: &OctopusClient,
    releases: impl IntoIterator<Item = String>,
    cancel: &CancellationToken,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut asked = std::collections::HashSet::new();
    for id in releases {
        if !asked.insert(id.clone()) {
            continue;
        }
        let found =
            retry::with_retry(c.config().calls.max_retries, cancel, || c.release(&id)).await;
        match found {
            Ok(r) => {
                if let Some(v) = r.version {
                    out.insert(id, v);
                }
            }
            Err(e) => tracing::debug!(release = %id, error = %e, "no version for release"),
        }
    }
    out
}
