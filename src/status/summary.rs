//! A watch's summary: its detail without the check tracks, for listing many watches.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{ObservationView, RollbackView, WatchState, WatchStatus};
use crate::judge::observation::{Verdict, VerdictKind};
use crate::model::{DeployFailure, DeployOutcome, ObservationKind, Source};

/// One watch's entry in `GET /v1/status`: the fields of [`WatchStatus`] under the same names,
/// without the check tracks of its observation and last verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WatchSummary {
    pub name: String,
    pub state: WatchState,
    pub current_release: Option<String>,
    pub last_good_release: Option<String>,
    pub observation: Option<ObservationSummary>,
    pub last_verdict: Option<VerdictSummary>,
    pub rollback: Option<RollbackView>,
    /// Why the watch is in `failed`, for humans.
    pub attention: Option<String>,
    /// In a fleet: the node holding the watch's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The observation in progress, without its checks: enough to show its progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObservationSummary {
    pub id: String,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    pub kind: ObservationKind,
    pub source: Source,
    pub deployed_at: DateTime<Utc>,
    pub judging_from: DateTime<Utc>,
    pub window_ends: DateTime<Utc>,
    pub rounds: u64,
    #[serde(default)]
    pub planned_rounds: u64,
    #[serde(default)]
    pub outcome: DeployOutcome,
    /// The deployer's account of a failed deployment (bounded: a few lines of log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeployFailure>,
}

/// The last verdict, without its checks (`GET /v1/verdicts/{observation_id}` has them all).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerdictSummary {
    pub verdict: VerdictKind,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    pub observation_id: String,
    pub decided_at: DateTime<Utc>,
    /// One line for humans: which check hit which limit.
    pub summary: String,
    /// What backstop did about it.
    pub action: Option<String>,
}

impl WatchSummary {
    /// The summary of a detail; copies no check track.
    pub fn of(w: &WatchStatus) -> Self {
        WatchSummary {
            name: w.name.clone(),
            state: w.state,
            current_release: w.current_release.clone(),
            last_good_release: w.last_good_release.clone(),
            observation: w.observation.as_ref().map(ObservationSummary::of),
            last_verdict: w.last_verdict.as_ref().map(VerdictSummary::of),
            rollback: w.rollback.clone(),
            attention: w.attention.clone(),
            owner: w.owner.clone(),
        }
    }
}

impl ObservationSummary {
    pub fn of(o: &ObservationView) -> Self {
        ObservationSummary {
            id: o.id.clone(),
            release: o.release.clone(),
            version: o.version.clone(),
            deployment_id: o.deployment_id.clone(),
            kind: o.kind,
            source: o.source,
            deployed_at: o.deployed_at,
            judging_from: o.judging_from,
            window_ends: o.window_ends,
            rounds: o.rounds,
            planned_rounds: o.planned_rounds,
            outcome: o.outcome,
            failure: o.failure.clone(),
        }
    }
}

impl VerdictSummary {
    pub fn of(v: &Verdict) -> Self {
        VerdictSummary {
            verdict: v.verdict,
            release: v.release.clone(),
            version: v.version.clone(),
            deployment_id: v.deployment_id.clone(),
            observation_id: v.observation_id.clone(),
            decided_at: v.decided_at,
            summary: v.summary.clone(),
            action: v.action.clone(),
        }
    }
}
