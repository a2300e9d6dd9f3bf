//! The records the fake Octopus stores: releases, deployments and their tasks, with the rules
//! a task's `State` follows.

use std::collections::VecDeque;
use std::time::Instant;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::TASK_STATES;

pub(super) struct Release {
    pub(super) id: String,
    pub(super) space: String,
    pub(super) project: String,
    pub(super) version: String,
    pub(super) assembled: DateTime<Utc>,
    pub(super) notes: Option<String>,
}

pub(super) struct Deployment {
    pub(super) id: String,
    pub(super) seq: u64,
    pub(super) space: String,
    pub(super) release: String,
    pub(super) environment: String,
    pub(super) project: String,
    pub(super) channel: String,
    pub(super) task: String,
    pub(super) created: DateTime<Utc>,
    pub(super) deployed_by: (&'static str, &'static str),
    /// The writeable properties of a create command, defaults filled in.
    pub(super) fields: Map<String, Value>,
    /// From when the API shows it (a slow commit hides it until then); inspection sees it always.
    pub(super) visible_from: Instant,
}

impl Deployment {
    /// Whether listings and GETs (of it and of its task) show it at `now`.
    pub(super) fn is_visible(&self, now: Instant) -> bool {
        self.visible_from <= now
    }
}

pub(super) struct Task {
    pub(super) id: String,
    pub(super) space: String,
    pub(super) deployment: String,
    pub(super) project: String,
    pub(super) description: String,
    pub(super) state: &'static str,
    pub(super) queued: DateTime<Utc>,
    pub(super) started: Option<DateTime<Utc>>,
    pub(super) completed: Option<DateTime<Utc>>,
    pub(super) updated: DateTime<Utc>,
    /// States still to walk through, one per GET after the first.
    pub(super) pending: VecDeque<&'static str>,
    pub(super) served: bool,
    pub(super) interruptions: bool,
}

impl Task {
    pub(super) fn transition(&mut self, state: &'static str, now: DateTime<Utc>) {
        if state != "Queued" && self.started.is_none() {
            self.started = Some(now);
        }
        self.completed = if is_completed(state) {
            self.completed.or(Some(now))
        } else {
            None
        };
        self.state = state;
        self.updated = now;
    }
}

pub(super) fn task_state(state: &str) -> &'static str {
    TASK_STATES
        .into_iter()
        .find(|s| *s == state)
        .unwrap_or_else(|| panic!("{state:?} is not a TaskState; use one of {TASK_STATES:?}"))
}

/// IsCompleted per the client libraries: every state but Queued, Executing and Cancelling.
pub(super) fn is_completed(state: &str) -> bool {
    !matches!(state, "Queued" | "Executing" | "Cancelling")
}
