//! `FakeOctopus`: the slice of Octopus Deploy's REST API backstop uses to find and roll back
//! deployments (list/get/create deployments, get tasks and releases), shaped after the 2021.2
//! Swagger document in `tests/data/` so that `tests/fakes_shape.rs` can hold it to that shape.
//!
//! Rollbacks are POSTs with no idempotency key, so the fake exists mostly to prove exactly-once
//! behaviour: it can refuse POSTs, lose the response of one that landed, or answer too late, and
//! it records every attempt. A created deployment's task walks Queued -> Executing -> final on
//! successive GETs, as a real server's would between polls.
//!
//! Conventions: every resource is stored typed and rendered with every Swagger property; ids have
//! independent counters (tasks start at `ServerTasks-101` so a client that confuses a deployment
//! number with a task number is caught); any space id is accepted and unscoped twins exist.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

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
const DEFAULT_TAKE: usize = 30;
const API_KEY_HEADER: &str = "X-Octopus-ApiKey";

/// A `POST /deployments` fault, applied in the order the `*_next_posts` calls queued them.
#[derive(Clone, Debug)]
enum PostFault {
    Fail {
        status: StatusCode,
        retry_after: Option<u64>,
    },
    CreateThenFail,
    Hang(Duration),
}

struct Release {
    id: String,
    space: String,
    project: String,
    version: String,
    assembled: DateTime<Utc>,
    notes: Option<String>,
}

struct Deployment {
    id: String,
    seq: u64,
    space: String,
    release: String,
    environment: String,
    project: String,
    channel: String,
    task: String,
    created: DateTime<Utc>,
    deployed_by: (&'static str, &'static str),
    /// The writeable properties of a create command, defaults filled in.
    fields: Map<String, Value>,
}

struct Task {
    id: String,
    space: String,
    deployment: String,
    project: String,
    description: String,
    state: &'static str,
    queued: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    completed: Option<DateTime<Utc>>,
    updated: DateTime<Utc>,
    /// States still to walk through, one per GET after the first.
    pending: VecDeque<&'static str>,
    served: bool,
    interruptions: bool,
}

struct State {
    api_key: String,
    releases: Vec<Release>,
    deployments: Vec<Deployment>,
    tasks: Vec<Task>,
    counters: [u64; 3],
    created_via_post: Vec<String>,
    post_attempts: usize,
    final_state: &'static str,
    post_faults: VecDeque<PostFault>,
    get_faults: VecDeque<StatusCode>,
}

type Shared = Arc<Mutex<State>>;

/// Handle on a running fake Octopus server. Clones share the same server and state.
#[derive(Clone)]
pub struct FakeOctopus {
    addr: std::net::SocketAddr,
    state: Shared,
}

impl FakeOctopus {
    /// Starts the fake; only requests with header `X-Octopus-ApiKey: <api_key>` are served.
    pub async fn start(api_key: &str) -> FakeOctopus {
        let state = Arc::new(Mutex::new(State {
            api_key: api_key.to_owned(),
            releases: vec![],
            deployments: vec![],
            tasks: vec![],
            counters: [0, 0, 100],
            created_via_post: vec![],
            post_attempts: 0,
            final_state: "Success",
            post_faults: VecDeque::new(),
            get_faults: VecDeque::new(),
        }));
        let router = Router::new()
            .route(
                "/api/deployments",
                get(list_deployments).post(create_deployment),
            )
            .route(
                "/api/{space}/deployments",
                get(list_deployments).post(create_deployment),
            )
            .route("/api/deployments/{id}", get(get_deployment))
            .route("/api/{space}/deployments/{id}", get(get_deployment))
            .route("/api/tasks/{id}", get(get_task))
            .route("/api/{space}/tasks/{id}", get(get_task))
            .route("/api/releases/{id}", get(get_release))
            .route("/api/{space}/releases/{id}", get(get_release))
            .fallback(|| async { not_found("The resource you requested was not found.") })
            .layer(middleware::from_fn_with_state(state.clone(), gate))
            .with_state(state.clone());
        let addr = super::serve("FakeOctopus", router).await;
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
        let task = st.task_mut(&d).expect("just inserted");
        task.started = (state != "Queued").then_some(created);
        let finished = (created + chrono::Duration::seconds(45)).min(Utc::now().max(created));
        task.completed = is_completed(state).then_some(finished);
        task.updated = task.completed.or(task.started).unwrap_or(created);
        task.state = state;
        task.served = true;
        d
    }

    /// The state tasks of POSTed deployments end in (default "Success").
    pub fn set_task_final_state(&self, state: &str) {
        self.lock().final_state = task_state(state);
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

    /// The next `n` POST /deployments answer `status` (with `Retry-After` when given), creating nothing.
    ///
    /// All `*_next_posts` calls feed one queue, consumed in call order by authenticated POSTs. A
    /// refusal applies before validation; create-then-fail and hang wait for a valid body.
    pub fn fail_next_posts(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let status =
            StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.queue_post_faults(
            n,
            PostFault::Fail {
                status,
                retry_after,
            },
        );
    }

    /// The next `n` valid POST /deployments create the deployment but answer 500: a lost response.
    pub fn create_then_fail_next_posts(&self, n: usize) {
        self.queue_post_faults(n, PostFault::CreateThenFail);
    }

    /// The next `n` valid POST /deployments create the deployment, then wait `delay` before the 201.
    pub fn hang_next_posts(&self, n: usize, delay: Duration) {
        self.queue_post_faults(n, PostFault::Hang(delay));
    }

    /// The next `n` authenticated GETs, whatever the endpoint, answer `status` with an error body.
    pub fn fail_next_gets(&self, n: usize, status: u16) {
        let status =
            StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.lock()
            .get_faults
            .extend(std::iter::repeat_n(status, n));
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

    fn queue_post_faults(&self, n: usize, fault: PostFault) {
        self.lock()
            .post_faults
            .extend(std::iter::repeat_n(fault, n));
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().expect("FakeOctopus state poisoned")
}

impl State {
    fn next(&mut self, counter: usize) -> u64 {
        self.counters[counter] += 1;
        self.counters[counter]
    }

    fn release(&self, id: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.id == id)
    }

    fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }

    /// The task with this id, or of the deployment with this id.
    fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.tasks
            .iter_mut()
            .find(|t| t.id == id || t.deployment == id)
    }

    /// Stores a deployment and its Queued task; returns the deployment id.
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &mut self,
        space: &str,
        project: &str,
        environment: &str,
        release: &str,
        created: DateTime<Utc>,
        by: (&'static str, &'static str),
        fields: Map<String, Value>,
    ) -> String {
        let seq = self.next(1);
        let (id, task) = (
            format!("Deployments-{seq}"),
            format!("ServerTasks-{}", self.next(2)),
        );
        let version = self.release(release).map_or("?", |r| &r.version);
        let description = format!("Deploy {project} release {version} to {environment}");
        self.tasks.push(Task {
            id: task.clone(),
            space: space.into(),
            deployment: id.clone(),
            project: project.into(),
            description,
            state: "Queued",
            queued: created,
            started: None,
            completed: None,
            updated: created,
            pending: VecDeque::new(),
            served: false,
            interruptions: false,
        });
        self.deployments.push(Deployment {
            id: id.clone(),
            seq,
            space: space.into(),
            release: release.into(),
            environment: environment.into(),
            project: project.into(),
            channel: "Channels-1".into(),
            task,
            created,
            deployed_by: by,
            fields,
        });
        id
    }

    fn task_state_of(&self, d: &Deployment) -> &'static str {
        self.tasks
            .iter()
            .find(|t| t.id == d.task)
            .map_or("Queued", |t| t.state)
    }

    fn render_deployment(&self, d: &Deployment) -> Value {
        let version = self.release(&d.release).map(|r| r.version.clone());
        let state = self.task_state_of(d);
        let (s, id) = (&d.space, &d.id);
        let mut v = json!({
            "Id": id, "SpaceId": s, "Name": format!("Deploy to {}", d.environment),
            "ReleaseId": d.release, "EnvironmentId": d.environment, "ProjectId": d.project,
            "ChannelId": d.channel, "DeploymentProcessId": format!("deploymentprocess-{}", d.project),
            "ManifestVariableSetId": format!("variableset-{id}"), "TaskId": d.task,
            "Created": rfc3339(d.created), "ChangesMarkdown": "",
            "Changes": [{
                "Version": version, "ReleaseNotes": null, "WorkItems": [], "BuildInformation": [],
                "Commits": [{"Id": "9fceb02", "LinkUrl": "https://git.example/shop/commit/9fceb02", "Comment": "Ship it"}],
            }],
            "DeployedBy": d.deployed_by.0, "DeployedById": d.deployed_by.1,
            "DeployedToMachineIds": if state == "Queued" { json!([]) } else { json!(["Machines-1"]) },
            "FailureEncountered": state == "Failed",
            "TentacleRetentionPeriod": {"Unit": "Items", "QuantityToKeep": 3, "ShouldKeepForever": false, "Strategy": "Count"},
            "LastModifiedOn": rfc3339(d.created), "LastModifiedBy": d.deployed_by.0,
            "Links": {
                "Self": format!("/api/{s}/deployments/{id}"), "Release": format!("/api/{s}/releases/{}", d.release),
                "Environment": format!("/api/{s}/environments/{}", d.environment),
                "Project": format!("/api/{s}/projects/{}", d.project), "Task": format!("/api/tasks/{}", d.task),
                "Web": format!("/app#/{s}/deployments/{id}"), "Artifacts": format!("/api/{s}/artifacts?regarding={id}"),
                "Interruptions": format!("/api/{s}/interruptions?regarding={id}"),
                "DeploymentProcess": format!("/api/{s}/deploymentprocesses/deploymentprocess-{}", d.project),
                "Variables": format!("/api/{s}/variables/variableset-{id}"),
            },
        });
        let obj = v.as_object_mut().expect("object literal");
        obj.extend(d.fields.clone());
        if let Some(tenant) = d.fields.get("TenantId").and_then(Value::as_str) {
            obj["Links"]["Tenant"] = json!(format!("/api/{s}/tenants/{tenant}"));
        }
        v
    }
}

impl Release {
    fn render(&self) -> Value {
        let (s, id, p, n) = (
            &self.space,
            &self.id,
            &self.project,
            self.id.trim_start_matches("Releases-"),
        );
        json!({
            "Id": id, "SpaceId": s, "ProjectId": p, "ChannelId": "Channels-1", "Version": self.version,
            "ReleaseNotes": self.notes, "Assembled": rfc3339(self.assembled), "IgnoreChannelRules": false,
            "ProjectDeploymentProcessSnapshotId": format!("deploymentprocess-{p}-s-{n}"),
            "ProjectVariableSetSnapshotId": format!("variableset-{p}-s-{n}"),
            "LibraryVariableSetSnapshotIds": [],
            "SelectedPackages": [{"ActionName": "Deploy web", "PackageReferenceName": "", "StepName": "Deploy web", "Version": self.version}],
            "SelectedGitResources": [],
            "BuildInformation": [{
                "PackageId": "shop-web", "Version": self.version, "BuildEnvironment": "GitHub Actions",
                "BuildNumber": n, "BuildUrl": format!("https://ci.example/shop/runs/{n}"), "Branch": "main",
                "VcsType": "Git", "VcsRoot": "https://git.example/shop.git", "VcsCommitNumber": "9fceb02",
                "VcsCommitUrl": "https://git.example/shop/commit/9fceb02", "IssueTrackerName": null,
                "Commits": [{"Id": "9fceb02", "LinkUrl": "https://git.example/shop/commit/9fceb02", "Comment": "Ship it"}],
                "WorkItems": [],
            }],
            "VersionControlReference": null,
            "LastModifiedOn": rfc3339(self.assembled), "LastModifiedBy": "ci-bot",
            "Links": {
                "Self": format!("/api/{s}/releases/{id}"), "Project": format!("/api/{s}/projects/{p}"),
                "Progression": format!("/api/{s}/releases/{id}/progression"),
                "Deployments": format!("/api/{s}/releases/{id}/deployments{{?skip,take}}"),
                "DeploymentTemplate": format!("/api/{s}/releases/{id}/deployments/template"),
                "Artifacts": format!("/api/{s}/artifacts?regarding={id}"), "Web": format!("/app#/{s}/releases/{id}"),
            },
        })
    }
}

impl Task {
    fn transition(&mut self, state: &'static str, now: DateTime<Utc>) {
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

    fn render(&self) -> Value {
        let (s, id, state) = (&self.space, &self.id, self.state);
        let done = is_completed(state);
        let elapsed = self.completed.unwrap_or_else(Utc::now) - self.started.unwrap_or(self.queued);
        let error = match state {
            "Failed" => "The deployment failed because one or more steps failed. Please see the deployment log for details.",
            "Canceled" => "The task was canceled.",
            "TimedOut" => "The task timed out before it could start.",
            _ => "",
        };
        json!({
            "Id": id, "SpaceId": s, "Name": "Deploy", "Description": self.description,
            "Arguments": {"DeploymentId": self.deployment}, "State": state,
            "Completed": self.completed.map(|t| t.format("%A, %-d %B %Y %-I:%M:%S %p %:z").to_string()),
            "QueueTime": rfc3339(self.queued), "QueueTimeExpiry": null,
            "StartTime": self.started.map(rfc3339), "LastUpdatedTime": rfc3339(self.updated),
            "CompletedTime": self.completed.map(rfc3339),
            "ServerNode": (state != "Queued").then_some("OctopusServerNodes-octopus-1"),
            "Duration": humanize(elapsed.num_seconds()), "ErrorMessage": error,
            "HasBeenPickedUpByProcessor": state != "Queued", "IsCompleted": done,
            "FinishedSuccessfully": state == "Success", "HasPendingInterruptions": self.interruptions,
            "CanRerun": done, "HasWarningsOrErrors": matches!(state, "Failed" | "TimedOut"),
            "ProjectId": self.project, "EstimatedRemainingQueueDurationSeconds": 0,
            "PendingInterruptionTypes": if self.interruptions { json!(["GuidedFailure"]) } else { json!([]) },
            "PendingPreconditionTypes": [], "HasPendingPreconditions": false,
            "LastModifiedOn": null, "LastModifiedBy": null,
            "Links": {
                "Self": format!("/api/tasks/{id}"), "Web": format!("/app#/{s}/tasks/{id}"),
                "Raw": format!("/api/tasks/{id}/raw"), "Rerun": format!("/api/tasks/rerun/{id}"),
                "Cancel": format!("/api/tasks/{id}/cancel"), "State": format!("/api/tasks/{id}/state"),
                "BlockedBy": format!("/api/tasks/{id}/blockedby"), "QueuedBehind": format!("/api/tasks/{id}/queued-behind{{?skip,take}}"),
                "Details": format!("/api/tasks/{id}/details{{?verbose,tail,ranges}}"),
                "Artifacts": format!("/api/{s}/artifacts?regarding={id}"),
                "Interruptions": format!("/api/{s}/interruptions?regarding={id}"),
            },
        })
    }
}

/// Authenticates every request, counts POST /deployments attempts and applies GET faults.
async fn gate(AxState(s): AxState<Shared>, req: Request, next: Next) -> Response {
    let segments: Vec<&str> = req.uri().path().trim_end_matches('/').split('/').collect();
    let is_create = req.method() == Method::POST
        && matches!(
            segments[..],
            ["", "api", "deployments"] | ["", "api", _, "deployments"]
        );
    let fault = {
        let mut st = lock(&s);
        st.post_attempts += usize::from(is_create);
        let key = req
            .headers()
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        if key != Some(st.api_key.as_str()) {
            let why = if key.is_none() {
                "No API key was provided in the X-Octopus-ApiKey header."
            } else {
                "The API key you provided was not valid."
            };
            return octopus_error(StatusCode::UNAUTHORIZED, "You must be logged in to perform this action. Please provide a valid API key or log in again.", &[why]);
        }
        if req.method() == Method::GET {
            st.get_faults.pop_front()
        } else {
            None
        }
    };
    match fault {
        Some(status) => injected(status),
        None => next.run(req).await,
    }
}

fn space(p: &HashMap<String, String>) -> String {
    p.get("space").cloned().unwrap_or_else(|| SPACE.into())
}

/// `GET /deployments` parameters: csv filters (repeated keys add up) and the page wanted.
struct ListQuery {
    filters: Vec<(String, Vec<String>)>,
    skip: usize,
    take: usize,
}

const FILTERS: [&str; 7] = [
    "ids",
    "projects",
    "environments",
    "channels",
    "tenants",
    "taskState",
    "partialName",
];

impl ListQuery {
    fn parse(q: &[(String, String)]) -> Result<ListQuery, Rejection> {
        let mut lq = ListQuery {
            filters: vec![],
            skip: 0,
            take: DEFAULT_TAKE,
        };
        for (k, v) in q {
            let k = k.strip_prefix("paginationRequest.").unwrap_or(k);
            if k == "skip" || k == "take" {
                let n = v.parse().map_err(|_| {
                    let error = format!("The value '{v}' is not valid for {k}.");
                    (
                        StatusCode::BAD_REQUEST,
                        "There was a problem with your request.",
                        vec![error],
                    )
                })?;
                *(if k == "skip" {
                    &mut lq.skip
                } else {
                    &mut lq.take
                }) = n;
            } else if FILTERS.contains(&k) {
                let values = v
                    .split(',')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .map(String::from);
                match lq.filters.iter_mut().find(|(name, _)| name == k) {
                    Some((_, existing)) => existing.extend(values),
                    None => lq.filters.push((k.to_owned(), values.collect())),
                }
            }
        }
        Ok(lq)
    }

    /// Every non-empty filter must match one of its values (ids and states case-insensitively).
    fn matches(&self, st: &State, d: &Deployment) -> bool {
        self.filters
            .iter()
            .filter(|(_, vs)| !vs.is_empty())
            .all(|(name, vs)| {
                let field = match name.as_str() {
                    "ids" => &d.id,
                    "projects" => &d.project,
                    "environments" => &d.environment,
                    "channels" => &d.channel,
                    "tenants" => d.fields["TenantId"].as_str().unwrap_or_default(),
                    "taskState" => st.task_state_of(d),
                    _ => {
                        let name = format!("Deploy to {}", d.environment).to_lowercase();
                        return vs.iter().any(|x| name.contains(&x.to_lowercase()));
                    }
                };
                vs.iter().any(|x| x.eq_ignore_ascii_case(field))
            })
    }

    /// The `ResourceCollection` envelope around one page of `total` matches.
    fn collection(&self, space: &str, total: usize, items: Vec<Value>) -> Value {
        let (skip, take) = (self.skip, self.take);
        let pages = if take == 0 {
            1
        } else {
            total.div_ceil(take).max(1)
        };
        let base = format!("/api/{space}/deployments");
        let query: String = self
            .filters
            .iter()
            .map(|(k, vs)| format!("&{k}={}", vs.join(",")))
            .collect();
        let page = |skip: usize, take: usize| format!("{base}?skip={skip}&take={take}{query}");
        let mut links = json!({
            "Self": page(skip, take),
            "Template": format!("{base}{{?skip,take,ids,projects,environments,tenants,channels,taskState,partialName}}"),
            "Page.All": page(0, i32::MAX as usize), "Page.Current": page(skip, take),
            "Page.Last": page((pages - 1) * take, take),
        });
        if take > 0 && skip + take < total {
            links["Page.Next"] = json!(page(skip + take, take));
        }
        json!({
            "ItemType": "Deployment", "TotalResults": total, "ItemsPerPage": take, "NumberOfPages": pages,
            "LastPageNumber": pages - 1, "Items": items, "Links": links,
            "Id": null, "LastModifiedOn": null, "LastModifiedBy": null,
        })
    }
}

/// Newest first (by `Created`, then by id), filtered, one page.
async fn list_deployments(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let lq = match ListQuery::parse(&q) {
        Ok(lq) => lq,
        Err(rejection) => return reject(rejection),
    };
    let st = lock(&s);
    let mut matching: Vec<&Deployment> = st
        .deployments
        .iter()
        .filter(|d| lq.matches(&st, d))
        .collect();
    matching.sort_by_key(|d| std::cmp::Reverse((d.created, d.seq)));
    let page = matching.iter().skip(lq.skip).take(lq.take);
    let items = page.map(|d| st.render_deployment(d)).collect();
    Json(lq.collection(&space(&p), matching.len(), items)).into_response()
}

async fn get_deployment(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    let st = lock(&s);
    match st.deployment(&p["id"]) {
        Some(d) => Json(st.render_deployment(d)).into_response(),
        None => not_found(&format!("Deployment {} not found", p["id"])),
    }
}

async fn get_release(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    match lock(&s).release(&p["id"]) {
        Some(r) => Json(r.render()).into_response(),
        None => not_found(&format!("Release {} not found", p["id"])),
    }
}

/// Serves the task, then (from the second GET on) moves it one step along its progression.
async fn get_task(AxState(s): AxState<Shared>, Path(p): Path<HashMap<String, String>>) -> Response {
    let mut st = lock(&s);
    let Some(task) = st.tasks.iter_mut().find(|t| t.id == p["id"]) else {
        return not_found(&format!("Task {} not found", p["id"]));
    };
    if !task.served {
        task.served = true;
    } else if let Some(next) = task.pending.pop_front() {
        task.transition(next, Utc::now());
    }
    Json(task.render()).into_response()
}

async fn create_deployment(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let (fault, created) = {
        let mut st = lock(&s);
        if let Some(PostFault::Fail {
            status,
            retry_after,
        }) = st.post_faults.front().cloned()
        {
            st.post_faults.pop_front();
            let mut resp = injected(status);
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
        let (release, environment, fields) = match parse_create(&st, &body) {
            Ok(parsed) => parsed,
            Err(rejection) => return reject(rejection),
        };
        let fault = st.post_faults.pop_front();
        let project = st.release(&release).expect("validated").project.clone();
        let id = st.insert(
            &space(&p),
            &project,
            &environment,
            &release,
            Utc::now(),
            ("backstop", "Users-2"),
            fields,
        );
        let final_state = st.final_state;
        let task = st.task_mut(&id).expect("just inserted");
        task.pending = VecDeque::from(["Executing", final_state]);
        st.created_via_post.push(id.clone());
        (
            fault,
            st.render_deployment(st.deployment(&id).expect("just inserted")),
        )
    };
    match fault {
        Some(PostFault::CreateThenFail) => injected(StatusCode::INTERNAL_SERVER_ERROR),
        Some(PostFault::Hang(delay)) => {
            tokio::time::sleep(delay).await;
            (StatusCode::CREATED, Json(created)).into_response()
        }
        _ => (StatusCode::CREATED, Json(created)).into_response(),
    }
}

/// Why a create command was refused: status, `ErrorMessage` and `Errors`.
type Rejection = (StatusCode, &'static str, Vec<String>);

/// Validates a create command like the server's model validation; returns release, environment, fields.
fn parse_create(
    st: &State,
    body: &[u8],
) -> Result<(String, String, Map<String, Value>), Rejection> {
    let bad = |errors: Vec<String>| {
        (
            StatusCode::BAD_REQUEST,
            "There was a problem with your request.",
            errors,
        )
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "No Deployment resource provided",
            vec![],
        ));
    }
    let Ok(Value::Object(cmd)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad(vec![
            "The request body is not a valid JSON object.".into()
        ]));
    };
    let text = |k: &str| {
        cmd.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let (release, environment) = (text("ReleaseId"), text("EnvironmentId"));
    let mut errors = vec![];
    if release.is_none() {
        errors.push("Please specify the release to deploy.".to_owned());
    }
    if environment.is_none() {
        errors.push("Please provide a target environment to deploy to.".to_owned());
    }
    if let Some(r) = release.as_deref().filter(|r| st.release(r).is_none()) {
        errors.push(format!("The release '{r}' could not be found."));
    }
    let mut fields = defaults();
    for (key, default) in fields.iter_mut() {
        match cmd.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if same_shape(v, default, key) => *default = v.clone(),
            Some(v) => errors.push(format!("The value {v} is not valid for {key}.")),
        }
    }
    if errors.is_empty() {
        Ok((
            release.expect("checked"),
            environment.expect("checked"),
            fields,
        ))
    } else {
        Err(bad(errors))
    }
}

/// The writeable properties of a create command, with the values the server defaults them to.
fn defaults() -> Map<String, Value> {
    let v = json!({
        "TenantId": null, "Comments": null, "FormValues": {}, "QueueTime": null, "QueueTimeExpiry": null,
        "ForcePackageRedeployment": false, "ForcePackageDownload": false, "UseGuidedFailure": false,
        "FailTargetDiscovery": false, "Priority": "LifecycleDefault",
        "SkipActions": [], "SpecificMachineIds": [], "ExcludedMachineIds": [],
        "SpecificTargetTagIds": [], "ExcludedTargetTagIds": [],
    });
    v.as_object().expect("object literal").clone()
}

/// Whether a posted value fits the property whose default is `default`.
fn same_shape(v: &Value, default: &Value, key: &str) -> bool {
    match default {
        Value::Bool(_) => v.is_boolean(),
        Value::Array(_) => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Value::Object(_) => v
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_string)),
        _ if key.starts_with("QueueTime") => v
            .as_str()
            .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
        _ if key == "Priority" => matches!(v.as_str(), Some("On" | "Off" | "LifecycleDefault")),
        _ => v.is_string(),
    }
}

fn task_state(state: &str) -> &'static str {
    TASK_STATES
        .into_iter()
        .find(|s| *s == state)
        .unwrap_or_else(|| panic!("{state:?} is not a TaskState; use one of {TASK_STATES:?}"))
}

/// IsCompleted per the client libraries: every state but Queued, Executing and Cancelling.
fn is_completed(state: &str) -> bool {
    !matches!(state, "Queued" | "Executing" | "Cancelling")
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

fn humanize(secs: i64) -> String {
    match secs.max(0) {
        0 => "less than a second".into(),
        1 => "1 second".into(),
        s @ 2..=59 => format!("{s} seconds"),
        s @ 60..=119 => format!(
            "1 minute{}",
            if s > 60 {
                format!(" {} seconds", s - 60)
            } else {
                String::new()
            }
        ),
        s => format!("{} minutes", s / 60),
    }
}

fn not_found(detail: &str) -> Response {
    octopus_error(
        StatusCode::NOT_FOUND,
        "The resource you requested was not found.",
        &[detail],
    )
}

fn injected(status: StatusCode) -> Response {
    let message = match status.as_u16() {
        429 => "Too many requests. Please wait and try again.",
        503 => "Octopus Server is currently unavailable. Please try again later.",
        _ => "There was a problem with your request.",
    };
    octopus_error(
        status,
        message,
        &[&format!("HTTP {status} injected by FakeOctopus")],
    )
}

fn reject((status, message, errors): Rejection) -> Response {
    let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
    octopus_error(status, message, &errors)
}

/// The `Error` body of the Swagger document: every property, unused ones null.
fn octopus_error(status: StatusCode, message: &str, errors: &[&str]) -> Response {
    let body = json!({
        "ErrorMessage": message, "Errors": errors, "FullException": null, "HelpLink": null,
        "HelpText": null, "ParsedHelpLinks": [], "Details": null,
    });
    (status, Json(body)).into_response()
}
