//! The status documents: what each watch is doing now. Watch actors write their entry to the
//! [`StatusBoard`]; the API reads it.
//!
//! Two shapes of the same entry: the **detail** ([`WatchStatus`], `GET /v1/watches/{name}`)
//! carries every check's track and samples; the **summary** ([`WatchSummary`], one per watch in
//! the paginated `GET /v1/status` and `backstop status`) keeps the same field names without the
//! tracks, so listing thousands of watches stays cheap.
//!
//! - [`board`]: the shared board and its pages; [`table`]: `backstop status` as a table.

mod board;
mod summary;
mod table;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::judge::observation::{CheckTrack, Verdict};

pub use board::{StatusBoard, DEFAULT_LIMIT, MAX_LIMIT};
pub use summary::{ObservationSummary, VerdictSummary, WatchSummary};
pub use table::{colour_wanted, render_table};

pub use crate::model::WatchState;
use crate::model::{IntentState, ObservationKind, Source};

/// The observation in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObservationView {
    pub id: String,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    /// `deployment` or `rollback` (a rollback is observed too, but never rolled back).
    pub kind: ObservationKind,
    /// How the deployment was learned: announce, webhook, poll, rollback.
    pub source: Source,
    pub deployed_at: DateTime<Utc>,
    pub judging_from: DateTime<Utc>,
    pub window_ends: DateTime<Utc>,
    pub rounds: u64,
    /// About how many judged rounds the window takes at the watch's cadences (fast for
    /// `fast_for`, then `interval`); confirming a failure adds fast rounds. For progress.
    #[serde(default)]
    pub planned_rounds: u64,
    pub checks: Vec<CheckTrack>,
    /// `succeeded`, or `failed` when the deployment itself failed.
    #[serde(default)]
    pub outcome: crate::model::DeployOutcome,
    /// The deployer's account of a failed deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::model::DeployFailure>,
}

/// The rollback in progress or last made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RollbackView {
    pub condemned_release: String,
    pub target_release: String,
    pub state: IntentState,
    pub deployment_id: Option<String>,
    pub task_id: Option<String>,
    pub detail: Option<String>,
}

/// One watch's detail, `GET /v1/watches/{name}`: its summary's fields, with every check's
/// track (counters and recent samples) in `observation.checks` and `last_verdict.checks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchStatus {
    pub name: String,
    pub state: WatchState,
    pub current_release: Option<String>,
    pub last_good_release: Option<String>,
    pub observation: Option<ObservationView>,
    pub last_verdict: Option<Verdict>,
    pub rollback: Option<RollbackView>,
    /// Why the watch is in `failed`, for humans.
    pub attention: Option<String>,
    /// In a fleet: the node holding the watch's lease (`None` when nobody does, or on a
    /// single node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl WatchStatus {
    pub fn new(name: &str) -> Self {
        WatchStatus {
            name: name.to_string(),
            state: WatchState::Idle,
            current_release: None,
            last_good_release: None,
            observation: None,
            last_verdict: None,
            rollback: None,
            attention: None,
            owner: None,
        }
    }
}

/// The `GET /v1/status` document: one page of watch summaries, sorted by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StatusDocument {
    pub watches: Vec<WatchSummary>,
    /// Present when the daemon runs in a fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetView>,
    /// When more watches follow: the last name of this page, to pass as `after` for the next
    /// one. `null` on the last page.
    #[serde(default)]
    pub next: Option<String>,
}

/// The fleet as this node last read it from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FleetView {
    /// This node's name.
    pub node: String,
    pub nodes: Vec<NodeView>,
    /// Watches configured on a live node that no node holds a live lease of.
    pub unowned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NodeView {
    pub name: String,
    pub alive: bool,
    pub heartbeat_at: DateTime<Utc>,
    /// Watches whose live lease the node holds.
    pub owns: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialise_as_the_api_names() {
        let names: Vec<String> = WatchState::ALL
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "\"idle\"",
                "\"observing\"",
                "\"rolling_back\"",
                "\"failed\"",
                "\"paused\""
            ]
        );
        for s in WatchState::ALL {
            assert_eq!(WatchState::parse(s.as_str()), Some(s));
        }
    }
}
