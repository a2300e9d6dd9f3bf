//! The records the fake Octopus stores: releases, deployments and their tasks, with the rules
//! a task's `State` follows, and how a task that does not succeed fails ([`TaskFailure`]).

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
    /// How it fails when it ends Failed, TimedOut or Canceled; without one, the default of
    /// that state ([`TaskFailure::default_for`]).
    pub(super) failure: Option<TaskFailure>,
}

impl Task {
    /// The failure its log and ErrorMessage show, if its state is a failure.
    pub(super) fn failure(&self) -> Option<TaskFailure> {
        if !is_failure(self.state) {
            return None;
        }
        match &self.failure {
            Some(f) if f.state == self.state => Some(f.clone()),
            Some(f) => Some(f.clone().ending(self.state)),
            None => TaskFailure::default_for(self.state),
        }
    }

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

/// Whether a task in `state` ended without succeeding.
pub(super) fn is_failure(state: &str) -> bool {
    matches!(state, "Failed" | "TimedOut" | "Canceled")
}

/// The `ErrorMessage` of a failed deployment's task, as a real server words it.
pub(super) const FAILED_ERROR: &str =
    "The deployment failed because one or more steps failed. Please see the deployment log for details.";

/// How a deployment's task fails: the state it ends in, its `ErrorMessage`, the step and the
/// machine where it broke, and the lines that machine logged (`(Category, MessageText)`,
/// oldest first). The task's details (`GET .../tasks/{id}/details`) show it as a real server's
/// activity log would: the step and machine `Failed` (or `Canceled`), the lines under the
/// machine, Octopus's own closing lines after them.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskFailure {
    pub state: &'static str,
    pub error: String,
    pub step: Option<String>,
    pub machine: Option<String>,
    pub log: Vec<(&'static str, String)>,
}

impl TaskFailure {
    /// Step `step` fails on `machine`: its script exits 127 after an error.
    pub fn failed(step: &str, machine: &str) -> TaskFailure {
        TaskFailure {
            state: "Failed",
            error: FAILED_ERROR.into(),
            step: Some(step.into()),
            machine: Some(machine.into()),
            log: lines(&[
                ("Verbose", "Tentacle version 8.1.2201"),
                ("Info", "Extracting package to /var/www/shop"),
                ("Info", "Running deploy.sh"),
                ("Error", "deploy.sh: line 12: migrate: command not found"),
                ("Fatal", "The remote script failed with exit code 127"),
            ]),
        }
    }

    /// The task waited in the queue past its expiry: no step ran.
    pub fn timed_out() -> TaskFailure {
        TaskFailure {
            state: "TimedOut",
            error: "The task timed out before it could start.".into(),
            step: None,
            machine: None,
            log: vec![],
        }
    }

    /// A person canceled the task while `step` ran on `machine`.
    pub fn canceled(step: &str, machine: &str) -> TaskFailure {
        TaskFailure {
            state: "Canceled",
            error: "The task was canceled.".into(),
            step: Some(step.into()),
            machine: Some(machine.into()),
            log: lines(&[
                ("Info", "Running deploy.sh"),
                ("Error", "The operation was canceled."),
            ]),
        }
    }

    /// The same failure ending in `state` (Failed, TimedOut or Canceled) instead.
    pub fn ending(mut self, state: &str) -> TaskFailure {
        let state = task_state(state);
        assert!(is_failure(state), "{state} is not a failure");
        self.state = state;
        self
    }

    /// With this `ErrorMessage`.
    pub fn with_error(mut self, error: &str) -> TaskFailure {
        self.error = error.into();
        self
    }

    /// With these lines logged by the machine instead.
    pub fn with_log(mut self, log: &[(&'static str, &str)]) -> TaskFailure {
        self.log = lines(log);
        self
    }

    /// What a task ending in `state` shows when no failure was scripted for it.
    pub(super) fn default_for(state: &str) -> Option<TaskFailure> {
        match state {
            "Failed" => Some(TaskFailure::failed("Deploy web", "web-01")),
            "TimedOut" => Some(TaskFailure::timed_out()),
            "Canceled" => Some(TaskFailure::canceled("Deploy web", "web-01")),
            _ => None,
        }
    }
}

fn lines(log: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    log.iter().map(|(c, t)| (*c, t.to_string())).collect()
}
