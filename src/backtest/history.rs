//! The deployer's past, ordered for replay: which deployments are in the range, what each one
//! would have rolled back to, and where its history ends. Pure.
//!
//! Choices, and why:
//! - Only finished deployments are replayed (task Success, Failed, TimedOut, Canceled): one
//!   still running has no outcome yet, and the daemon itself only polls finished ones.
//! - The rollback target is the newest release deployed successfully before the deployment
//!   (another release, and not one this backtest condemned: backstop quarantines those). The
//!   backtest assumes that release was verified; the daemon rolls back only to a release it
//!   verified itself.
//! - A deployment's history ends at the next deployment (the daemon would have moved on to
//!   it) or at the time of the backtest.

use std::collections::HashSet;

use chrono::{DateTime, Utc};

use crate::deployer::{Deployment, TaskState};

/// Whether a listing (newest first) must go on to its next page to reach back to `from`:
/// the page was full and all of it is in the range.
pub fn wants_more(page: &[Deployment], take: usize, from: DateTime<Utc>) -> bool {
    page.len() >= take && page.last().is_some_and(|d| d.created >= from)
}

/// Every listed deployment, oldest first, once each.
pub fn ordered(mut all: Vec<Deployment>) -> Vec<Deployment> {
    all.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    let mut seen = HashSet::new();
    all.retain(|d| seen.insert(d.id.clone()));
    all
}

/// The indexes (into `all`, oldest first) of the deployments created in `[from, to]`.
pub fn in_range(all: &[Deployment], from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<usize> {
    (0..all.len())
        .filter(|&i| all[i].created >= from && all[i].created <= to)
        .collect()
}

/// The rollback target of `all[i]`: the newest earlier successful deployment of another
/// release that is not `condemned`.
pub fn previous<'a>(
    all: &'a [Deployment],
    i: usize,
    condemned: &HashSet<String>,
) -> Option<&'a str> {
    let this = &all[i].release_id;
    all[..i]
        .iter()
        .rev()
        .filter(|d| d.task_state == Some(TaskState::Success))
        .map(|d| d.release_id.as_str())
        .find(|r| *r != this && !condemned.contains(*r))
}

/// The deployment after `all[i]`, if any.
pub fn next(all: &[Deployment], i: usize) -> Option<&Deployment> {
    all.get(i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(n: u32, release: &str, minute: i64, state: TaskState) -> Deployment {
        Deployment {
            id: format!("Deployments-{n}"),
            release_id: release.into(),
            project_id: "Projects-1".into(),
            environment_id: "Environments-1".into(),
            task_id: Some(format!("ServerTasks-{}", 100 + n)),
            created: at(minute),
            comments: None,
            task_state: Some(state),
        }
    }

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap()
    }

    #[test]
    fn listings_page_until_they_reach_back_past_the_range() {
        let page = vec![
            dep(3, "Releases-3", 30, TaskState::Success),
            dep(2, "Releases-2", 20, TaskState::Success),
        ];
        assert!(wants_more(&page, 2, at(10)));
        assert!(!wants_more(&page, 2, at(25)), "reached back past from");
        assert!(!wants_more(&page, 3, at(10)), "a short page is the last");
        assert!(!wants_more(&[], 2, at(10)));
    }

    #[test]
    fn the_rollback_target_is_the_newest_earlier_good_release() {
        let all = ordered(vec![
            dep(4, "Releases-4", 40, TaskState::Success),
            dep(1, "Releases-1", 10, TaskState::Success),
            dep(3, "Releases-3", 30, TaskState::Failed),
            dep(2, "Releases-2", 20, TaskState::Success),
            dep(5, "Releases-4", 50, TaskState::Success),
            dep(2, "Releases-2", 20, TaskState::Success),
        ]);
        let ids: Vec<&str> = all.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "Deployments-1",
                "Deployments-2",
                "Deployments-3",
                "Deployments-4",
                "Deployments-5"
            ]
        );
        let none = HashSet::new();
        assert_eq!(previous(&all, 0, &none), None);
        assert_eq!(
            previous(&all, 3, &none),
            Some("Releases-2"),
            "failed ones skipped"
        );
        assert_eq!(
            previous(&all, 4, &none),
            Some("Releases-2"),
            "a redeploy of the same release is not its target"
        );
        let condemned: HashSet<String> = ["Releases-2".to_string()].into();
        assert_eq!(previous(&all, 3, &condemned), Some("Releases-1"));
        assert_eq!(in_range(&all, at(20), at(40)), vec![1, 2, 3]);
        assert_eq!(next(&all, 3).map(|d| d.id.as_str()), Some("Deployments-5"));
        assert!(next(&all, 4).is_none());
    }
}
