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
            let repeated = nothing_new(&found, &items);
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

/// Whether a page holds no deployment not already listed: a server that ignores `skip`.
/// Not merely its first one: a deployment that finishes while we page shifts the listing by
/// one, so the next page starts with the previous page's last item, and stopping there would
/// silently leave out everything older (duplicates are dropped by [`super::history::ordered`]).
fn nothing_new(found: &[Deployment], page: &[Deployment]) -> bool {
    !page.is_empty() && page.iter().all(|d| found.iter().any(|f| f.id == d.id))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(n: u32) -> Deployment {
        Deployment {
            id: format!("Deployments-{n}"),
            release_id: "Releases-1".into(),
            project_id: "Projects-1".into(),
            environment_id: "Environments-1".into(),
            task_id: None,
            created: DateTime::from_timestamp(1_700_000_000 - i64::from(n) * 60, 0).unwrap(),
            comments: None,
            task_state: None,
        }
    }

    #[test]
    fn a_page_shifted_by_a_new_deployment_still_pages_on() {
        let first: Vec<Deployment> = (1..=3).map(dep).collect();
        // One deployment finished meanwhile: the next page repeats the last one, then goes on.
        let shifted: Vec<Deployment> = (3..=5).map(dep).collect();
        assert!(!nothing_new(&first, &shifted));
        // A server that ignores `skip` answers the same page again: stop.
        assert!(nothing_new(&first, &first));
        assert!(!nothing_new(&first, &[]));
    }
}
