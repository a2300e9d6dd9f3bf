//! `FakeOctopus`: the slice of Octopus Deploy's REST API backstop uses to find and roll back
//! deployments (list/get/create deployments, get tasks, their details and releases), shaped
//! after the 2021.2 Swagger document in `tests/data/` so that `tests/fakes_shape/` can hold it
//! to that shape.
//!
//! Rollbacks are POSTs with no idempotency key, so the fake exists mostly to prove exactly-once
//! behaviour: it can refuse POSTs, lose the response of one that landed, answer too late or
//! commit slowly (the deployment shows in the API only later), and it records every attempt. A
//! created deployment's task walks Queued -> Executing -> final on successive GETs, as a real
//! server's would between polls.
//!
//! Deployments can fail: the next ones, those of a release, or one task now, each with a
//! [`TaskFailure`] (end state Failed, TimedOut or Canceled, ErrorMessage, step, machine, log
//! lines) that its task's details show as a real server's activity log (`details.rs`).
//!
//! Conventions: every resource is stored typed and rendered with every Swagger property; ids have
//! independent counters (tasks start at `ServerTasks-101` so a client that confuses a deployment
//! number with a task number is caught); any space id is accepted and unscoped twins exist.

mod create;
mod details;
mod errors;
mod faults;
mod list_query;
mod model;
mod render;
mod routes;
mod state;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use create::defaults;
pub use model::TaskFailure;
use model::{is_completed, is_failure, task_state, Release, Task};
use state::{Shared, State};

/// Every `TaskState` the API knows, in Swagger order.
pub const TASK_STATES: [&str; 7] = [
    "Queued",
    "Executing",
    "Failed",
    "Canceled",
    "TimedOut",
    "Success",
    "Cancelling",
];

/// The space that `add_*` puts resources in.
pub const SPACE: &str = "Spaces-1";

/// Handle on a running fake Octopus server. Clones share the same server and state.
#[derive(Clone)]
pub struct FakeOctopus {
    addr: std::net::SocketAddr,
    state: Shared,
}

impl FakeOctopus {
    /// Starts the fake; only requests with header `X-Octopus-ApiKey: <api_key>` are served.
    pub async fn start(api_key: &str) -> FakeOctopus {
        let state = Arc::new(Mutex::new(State::new(api_key)));
        let addr = super::serve("FakeOctopus", routes::router(state.clone())).await;
        FakeOctopus { addr, state }
    }

    /// Server base, e.g. `http://127.0.0.1:41234`; the client appends `/api/...`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds a release of `project` (e.g. "Projects-1") and returns its id, "Releases-N".
    pub fn add_release(&self, project: &str, version: &str) -> String {
        let mut st = self.lock();
        let id = format!("Releases-{}", st.next(0));
        let (space, project, version) = (SPACE.into(), project.into(), version.into());
        st.releases.push(Release {
            id: id.clone(),
            space,
            project,
            version,
            assembled: Utc::now(),
            notes: None,
        });
        id
    }

    /// Sets a release's notes (Octopus shows them; backstop reads its no-rollback marker there).
    pub fn set_release_notes(&self, release_id: &str, notes: &str) {
        let mut st = self.lock();
        let r = st
            .releases
            .iter_mut()
            .find(|r| r.id == release_id)
            .unwrap_or_else(|| panic!("no release {release_id}"));
        r.notes = Some(notes.to_string());
    }

    /// Adds a deployment created now whose task is already in `state` (e.g. "Success").
    pub fn add_deployment(
        &self,
        project: &str,
        environment: &str,
        release_id: &str,
        state: &str,
    ) -> String {
        self.add_deployment_at(project, environment, release_id, state, Utc::now())
    }

    /// Like [`Self::add_deployment`] with an explicit `Created` time (list order follows it).
    pub fn add_deployment_at(
        &self,
        project: &str,
        environment: &str,
        release_id: &str,
        state: &str,
        created: DateTime<Utc>,
    ) -> String {
        let state = task_state(state);
        let mut st = self.lock();
        let d = st.insert(
            SPACE,
            project,
            environment,
            release_id,
            created,
            ("ci-bot", "Users-1"),
            defaults(),
        );
        let failure = is_failure(state)
            .then(|| st.release_failure(release_id))
            .flatten();
        let task = st.task_mut(&d).expect("just inserted");
        // A task that timed out in the queue never started.
        let ran = match &failure {
            Some(f) => f.step.is_some(),
            None => state != "TimedOut",
        };
        task.started = (state != "Queued" && ran).then_some(created);
        task.failure = failure;
        let finished = (created + chrono::Duration::seconds(45)).min(Utc::now().max(created));
        task.completed = is_completed(state).then_some(finished);
        task.updated = task.completed.or(task.started).unwrap_or(created);
        task.state = state;
        task.served = true;
        d
    }

    /// The state tasks of POSTed deployments end in (default "Success"). A failure scripted
    /// with [`Self::fail_next_deployments`] or [`Self::fail_deployments_of`] comes first.
    pub fn set_task_final_state(&self, state: &str) {
        self.lock().final_state = task_state(state);
    }

    /// The next `n` deployments whose end the fake picks (POSTed ones, and those finished with
    /// [`Self::finish_task`]) fail with `failure`: a POSTed one walks Queued -> Executing ->
    /// `failure.state` on successive task GETs.
    pub fn fail_next_deployments(&self, n: usize, failure: TaskFailure) {
        self.lock()
            .fail_next
            .extend(std::iter::repeat_n(failure, n));
    }

    /// Every deployment of `release_id` from now on fails with `failure`: POSTed ones and
    /// those finished with [`Self::finish_task`] end in its state; one added in a failed state
    /// shows its step, machine and log.
    pub fn fail_deployments_of(&self, release_id: &str, failure: TaskFailure) {
        let mut st = self.lock();
        st.failing_releases.retain(|(r, _)| r != release_id);
        st.failing_releases.push((release_id.to_string(), failure));
    }

    /// Fails a task (or the task of a deployment id) now, mid-deployment: it ends in
    /// `failure.state` with that failure's error, step, machine and log.
    pub fn fail_task(&self, task_id: &str, failure: TaskFailure) {
        let mut st = self.lock();
        let task = st
            .task_mut(task_id)
            .unwrap_or_else(|| panic!("no task {task_id}"));
        task.pending.clear();
        task.served = true;
        task.failure = Some(failure.clone());
        task.transition(failure.state, Utc::now());
    }

    /// Ends a queued or running task (or a deployment's) now, as the fake would pick: a
    /// scripted failure of its release or the next queued one, else the final state.
    pub fn finish_task(&self, task_id: &str) {
        let mut st = self.lock();
        let release = {
            let task = st
                .task_mut(task_id)
                .unwrap_or_else(|| panic!("no task {task_id}"));
            task.deployment.clone()
        };
        let release = st
            .deployment(&release)
            .map(|d| d.release.clone())
            .unwrap_or_default();
        let (state, failure) = st.pick_end(&release);
        let task = st.task_mut(task_id).expect("found above");
        task.pending.clear();
        task.served = true;
        task.failure = failure;
        task.transition(state, Utc::now());
    }

    /// Puts a task (or the task of a deployment id) in `state` now, ending any scripted progression.
    pub fn set_task_state(&self, task_id: &str, state: &str) {
        let state = task_state(state);
        let mut st = self.lock();
        let task = st
            .task_mut(task_id)
            .unwrap_or_else(|| panic!("no task {task_id}"));
        task.pending.clear();
        task.served = true;
        task.transition(state, Utc::now());
    }

    /// Marks a task (or a deployment's task) as waiting for a human: manual intervention, guided failure.
    pub fn set_pending_interruptions(&self, task_id: &str, pending: bool) {
        let mut st = self.lock();
        st.task_mut(task_id)
            .unwrap_or_else(|| panic!("no task {task_id}"))
            .interruptions = pending;
    }

    /// Deployments created through POST (including those whose response was lost), in creation order.
    pub fn created_deployments(&self) -> Vec<Value> {
        let st = self.lock();
        let ids = st.created_via_post.clone();
        ids.iter()
            .filter_map(|id| st.deployment(id))
            .map(|d| st.render_deployment(d))
            .collect()
    }

    /// Every POST /deployments received, including unauthenticated, invalid and failed ones.
    pub fn post_attempts(&self) -> usize {
        self.lock().post_attempts
    }

    /// Every request that could change something (any method but GET and HEAD, any path),
    /// including unauthenticated ones: a read-only client makes none.
    pub fn write_attempts(&self) -> usize {
        self.lock().write_attempts
    }

    /// Every deployment, added or created, in the order the fake stored them.
    pub fn deployments(&self) -> Vec<Value> {
        let st = self.lock();
        st.deployments
            .iter()
            .map(|d| st.render_deployment(d))
            .collect()
    }

    /// A task as a GET would show it, without advancing its progression.
    pub fn task(&self, task_id: &str) -> Option<Value> {
        let st = self.lock();
        st.tasks.iter().find(|t| t.id == task_id).map(Task::render)
    }

    /// A task's details (of a task id or a deployment id) as `GET .../details?verbose=true`
    /// would show them.
    pub fn task_details(&self, task_id: &str) -> Option<Value> {
        let st = self.lock();
        st.tasks
            .iter()
            .find(|t| t.id == task_id || t.deployment == task_id)
            .map(|t| {
                t.render_details(details::LogQuery {
                    verbose: true,
                    tail: None,
                })
            })
    }

    /// Waits (real time) until at least `n` deployments were created through POST; panics after `timeout`.
    pub async fn wait_for_created(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let created = self.created_deployments();
            if created.len() >= n {
                return created;
            }
            if Instant::now() >= deadline {
                panic!(
                    "FakeOctopus: expected at least {n} deployment(s) created via POST within {timeout:?}, got {} ({} POST attempt(s))",
                    created.len(),
                    self.post_attempts()
                );
            }
            tokio::time::sleep(super::POLL).await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        state::lock(&self.state)
    }
}
