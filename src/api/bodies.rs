//! The JSON bodies the API answers with besides the status and evidence documents.
//!
//! Typed rather than `json!`, so that `config/openapi.json` is derived from what handlers
//! really send and cannot drift from it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::HistoryEntry;

/// Every error: a message for the caller, never internals or secrets.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, e.g. `no watch named "shop"` or `unauthorized: missing bearer token`.
    pub error: String,
}

/// `POST /v1/deployments` accepted: the announcement is durable and the watch will observe it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Announced {
    /// Always `true`.
    pub accepted: bool,
    pub watch: String,
    pub release: String,
}

/// Which operator control was asked for. Closed set.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    Pause,
    Resume,
}

/// `POST /v1/watches/{name}/pause|resume` accepted: sent to whichever node runs the watch.
#[derive(Debug, Serialize, ToSchema)]
pub struct Controlled {
    /// Always `true`.
    pub accepted: bool,
    pub watch: String,
    pub action: ControlAction,
}

/// The answer to an authenticated Octopus webhook. Either way Octopus must not retry it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum HookAnswer {
    /// 200: acknowledged and ignored (another category, no watch on the project and
    /// environment, or an event already delivered).
    Ignored {
        /// Always `true`.
        accepted: bool,
        reason: String,
    },
    /// 202: the watches on the event's project and environment will observe the deployment.
    Observing {
        /// Always `true`.
        accepted: bool,
        watches: Vec<String>,
    },
}

/// `GET /v1/history`: past deployments and their verdicts, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub deployments: Vec<HistoryEntry>,
}
