//! `FakeArgoCd`: the slice of Argo CD's API server backstop uses — read an application, roll
//! it back to a history id — shaped after argo-cd's `server/application/application.proto` and
//! `v1alpha1.Application` as its REST gateway renders them: camelCase fields, history ids as
//! JSON numbers starting at 0, whole-second RFC 3339 timestamps, and grpc-gateway error bodies
//! `{"error", "code", "message"}` (code is the gRPC code).
//!
//! A rollback behaves as on the real server: refused (400, code 9) with auto-sync on or while
//! another operation runs, refused (400, code 3) for an id not in the history; otherwise it sets
//! the top-level `operation` and clears `status.operationState`. The controller's part is played
//! on successive GETs: the first shows the operation Running, the next its final phase
//! (Succeeded appends a history entry with the next id and clears `operation`), unless held.
//! Faults: refuse the next rollbacks, or perform one and lose its answer.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

const REPO: &str = "https://git.example.com/shop/deploy.git";
/// Argo CD keeps this many history entries unless `spec.revisionHistoryLimit` says otherwise.
const HISTORY_LIMIT: usize = 10;

/// A rollback fault, applied in the order the calls queued them.
#[derive(Clone, Debug)]
enum Fault {
    /// Answer this status before looking at the request.
    Fail(StatusCode),
    /// Perform a valid rollback, then answer 500.
    RollbackThenFail,
}

#[derive(Clone)]
struct Op {
    revision: String,
    username: &'static str,
}

struct OpState {
    op: Op,
    phase: &'static str,
    message: String,
    started: DateTime<Utc>,
    finished: Option<DateTime<Utc>>,
}

struct History {
    id: i64,
    revision: String,
    started: DateTime<Utc>,
    deployed: DateTime<Utc>,
    by: &'static str,
}

struct App {
    name: String,
    /// What `targetRevision: HEAD` resolves to: the revision last deployed from git.
    head: Option<String>,
    /// `status.sync.revision`: what the cluster runs.
    synced: Option<String>,
    history: Vec<History>,
    auto_sync: bool,
    final_phase: &'static str,
    hold: bool,
    /// Requested or running; cleared when the operation completes.
    operation: Option<Op>,
    op_state: Option<OpState>,
}

struct State {
    token: String,
    apps: Vec<App>,
    faults: VecDeque<Fault>,
    get_faults: VecDeque<StatusCode>,
    rollback_calls: Vec<i64>,
    operations: usize,
}

type Shared = Arc<Mutex<State>>;

/// Handle on a running fake Argo CD API server. Clones share the same server and state.
#[derive(Clone)]
pub struct FakeArgoCd {
    addr: std::net::SocketAddr,
    state: Shared,
}

impl FakeArgoCd {
    /// Starts the fake; only requests with `Authorization: Bearer <token>` are served.
    pub async fn start(token: &str) -> FakeArgoCd {
        let state = Arc::new(Mutex::new(State {
            token: token.to_owned(),
            apps: vec![],
            faults: VecDeque::new(),
            get_faults: VecDeque::new(),
            rollback_calls: vec![],
            operations: 0,
        }));
        let router = Router::new()
            .route("/api/v1/applications/{name}", get(get_app))
            .route("/api/v1/applications/{name}/rollback", post(rollback))
            .fallback(|| async { error(StatusCode::NOT_FOUND, 5, "Not Found") })
            .layer(middleware::from_fn_with_state(state.clone(), gate))
            .with_state(state.clone());
        let addr = super::serve("FakeArgoCd", router).await;
        FakeArgoCd { addr, state }
    }

    /// Server base, e.g. `http://127.0.0.1:41234`; the client appends `/api/v1/...`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Adds an application with an empty history, manual sync and operations that succeed.
    pub fn add_app(&self, name: &str) {
        self.lock().apps.push(App {
            name: name.to_owned(),
            head: None,
            synced: None,
            history: vec![],
            auto_sync: false,
            final_phase: "Succeeded",
            hold: false,
            operation: None,
            op_state: None,
        });
    }

    /// Plays CI committing `revision` and syncing it: a completed sync by user "ci" and a new
    /// history entry. Returns the entry's id (0 for the first).
    pub fn deploy(&self, app: &str, revision: &str) -> i64 {
        let mut st = self.lock();
        let a = st.app_mut(app);
        let now = Utc::now();
        a.head = Some(revision.to_owned());
        let op = Op {
            revision: revision.to_owned(),
            username: "ci",
        };
        a.op_state = Some(OpState {
            op,
            phase: "Succeeded",
            message: "successfully synced (all tasks run)".into(),
            started: now,
            finished: Some(now),
        });
        a.record(revision, now, "ci")
    }

    /// Turns `spec.syncPolicy.automated` on (with prune and selfHeal) or removes it.
    pub fn set_auto_sync(&self, app: &str, on: bool) {
        self.lock().app_mut(app).auto_sync = on;
    }

    /// The phase rollback operations end in: "Succeeded" (default), "Failed" or "Error".
    pub fn set_final_phase(&self, app: &str, phase: &str) {
        let phase = match phase {
            "Succeeded" => "Succeeded",
            "Failed" => "Failed",
            "Error" => "Error",
            other => panic!("FakeArgoCd: {other:?} is not a final operation phase"),
        };
        self.lock().app_mut(app).final_phase = phase;
    }

    /// While held, an operation stays Running however often it is read.
    pub fn hold_operations(&self, app: &str, hold: bool) {
        self.lock().app_mut(app).hold = hold;
    }

    /// The next `n` rollbacks answer `status` (grpc-gateway body), rolling nothing back.
    ///
    /// All fault calls feed one queue, consumed in call order by authenticated rollbacks. A
    /// refusal applies before validation; rollback-then-fail waits for a valid request.
    pub fn fail_next_rollbacks(&self, n: usize, status: u16) {
        let status =
            StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.lock()
            .faults
            .extend(std::iter::repeat_n(Fault::Fail(status), n));
    }

    /// The next `n` valid rollbacks start their operation but answer 500: a lost response.
    pub fn rollback_then_fail_next(&self, n: usize) {
        self.lock()
            .faults
            .extend(std::iter::repeat_n(Fault::RollbackThenFail, n));
    }

    /// The next `n` authenticated GETs answer `status` with an error body.
    pub fn fail_next_gets(&self, n: usize, status: u16) {
        let status =
            StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.lock()
            .get_faults
            .extend(std::iter::repeat_n(status, n));
    }

    /// History ids of every authenticated rollback request, including refused and failed ones.
    pub fn rollback_calls(&self) -> Vec<i64> {
        self.lock().rollback_calls.clone()
    }

    /// Rollbacks that started an operation (including those whose answer was lost).
    pub fn operations_started(&self) -> usize {
        self.lock().operations
    }

    /// `status.sync.revision`: the revision the cluster runs.
    pub fn current_revision(&self, app: &str) -> Option<String> {
        self.lock().app_mut(app).synced.clone()
    }

    /// `(id, revision)` of each history entry, oldest first.
    pub fn history(&self, app: &str) -> Vec<(i64, String)> {
        let mut st = self.lock();
        let a = st.app_mut(app);
        a.history
            .iter()
            .map(|h| (h.id, h.revision.clone()))
            .collect()
    }

    /// The phase of the last operation, without advancing it.
    pub fn operation_phase(&self, app: &str) -> Option<String> {
        let mut st = self.lock();
        let a = st.app_mut(app);
        a.op_state.as_ref().map(|s| s.phase.to_string())
    }

    /// The application as a GET would show it, without advancing its operation.
    pub fn application(&self, app: &str) -> Value {
        let mut st = self.lock();
        st.app_mut(app).render()
    }

    /// Waits (real time) until at least `n` rollbacks were requested; panics after `timeout`.
    pub async fn wait_for_rollbacks(&self, n: usize, timeout: Duration) -> Vec<i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let calls = self.rollback_calls();
            if calls.len() >= n {
                return calls;
            }
            if Instant::now() >= deadline {
                panic!(
                    "FakeArgoCd: expected at least {n} rollback request(s) within {timeout:?}, got {calls:?}"
                );
            }
            tokio::time::sleep(super::POLL).await;
        }
    }

    /// Waits (real time) until `app`'s last operation is in `phase`; panics after `timeout`.
    pub async fn wait_for_phase(&self, app: &str, phase: &str, timeout: Duration) {
        let me = self.clone();
        super::wait_until(
            &format!("{app}'s operation is {phase}"),
            timeout,
            move || me.operation_phase(app).as_deref() == Some(phase),
        )
        .await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().expect("FakeArgoCd state poisoned")
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl State {
    fn app_mut(&mut self, name: &str) -> &mut App {
        self.apps
            .iter_mut()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("FakeArgoCd: no application {name}"))
    }

    fn find(&mut self, name: &str) -> Option<&mut App> {
        self.apps.iter_mut().find(|a| a.name == name)
    }
}

impl App {
    /// Appends a history entry (next id, 0 first), trims to the limit; the cluster runs it now.
    fn record(&mut self, revision: &str, started: DateTime<Utc>, by: &'static str) -> i64 {
        let id = self.history.last().map_or(0, |h| h.id + 1);
        self.history.push(History {
            id,
            revision: revision.to_owned(),
            started,
            deployed: Utc::now(),
            by,
        });
        if self.history.len() > HISTORY_LIMIT {
            self.history.remove(0);
        }
        self.synced = Some(revision.to_owned());
        id
    }

    /// The controller's step between two reads: start a requested operation, or finish it.
    fn advance(&mut self) {
        let Some(op) = self.operation.clone() else {
            return;
        };
        let now = Utc::now();
        match &mut self.op_state {
            None => {
                self.op_state = Some(OpState {
                    op,
                    phase: "Running",
                    message: "waiting for healthy state of apps/Deployment/shop".into(),
                    started: now,
                    finished: None,
                });
            }
            Some(_) if self.hold => {}
            Some(s) => {
                s.phase = self.final_phase;
                s.finished = Some(now);
                let started = s.started;
                if self.final_phase == "Succeeded" {
                    s.message = "successfully synced (all tasks run)".into();
                    self.record(&op.revision, started, op.username);
                } else {
                    s.message = "one or more objects failed to apply, reason: Deployment.apps \"shop\" is invalid".into();
                }
                self.operation = None;
            }
        }
    }

    fn render(&self) -> Value {
        let source = json!({"repoURL": REPO, "path": "k8s", "targetRevision": "HEAD"});
        let destination = json!({"server": "https://kubernetes.default.svc", "namespace": "shop"});
        let mut spec = json!({"project": "default", "source": source, "destination": destination});
        if self.auto_sync {
            spec["syncPolicy"] = json!({"automated": {"prune": true, "selfHeal": true}});
        }
        let running = self.operation.is_some();
        let sync_status = match (&self.synced, &self.head) {
            (Some(s), Some(h)) if s == h => "Synced",
            (None, _) => "Unknown",
            _ => "OutOfSync",
        };
        let history: Vec<Value> = self
            .history
            .iter()
            .map(|h| {
                json!({
                    "id": h.id, "revision": h.revision, "deployedAt": ts(h.deployed),
                    "deployStartedAt": ts(h.started),
                    "source": {"repoURL": REPO, "path": "k8s", "targetRevision": "HEAD"},
                    "initiatedBy": {"username": h.by}
                })
            })
            .collect();
        let mut status = json!({
            "resources": [],
            "sync": {
                "status": sync_status,
                "comparedTo": {"source": source, "destination": destination},
                "revision": self.synced.clone().unwrap_or_default()
            },
            "health": {"status": if running { "Progressing" } else { "Healthy" }},
            "history": history,
            "reconciledAt": ts(Utc::now()),
            "sourceType": "Directory",
            "summary": {},
            "controllerNamespace": "argocd"
        });
        if let Some(s) = &self.op_state {
            let mut state = json!({
                "operation": render_op(&s.op),
                "phase": s.phase,
                "message": s.message,
                "startedAt": ts(s.started),
            });
            if let Some(f) = s.finished {
                state["finishedAt"] = json!(ts(f));
                state["syncResult"] =
                    json!({"resources": [], "revision": s.op.revision, "source": source});
            }
            status["operationState"] = state;
        }
        let mut app = json!({
            "metadata": {
                "name": self.name, "namespace": "argocd",
                "uid": "4f1c2a9e-6d3b-4c1e-9a7f-2b8d5e0c3f61",
                "resourceVersion": "18231", "generation": 7,
                "creationTimestamp": "2024-01-02T03:04:05Z"
            },
            "spec": spec,
            "status": status
        });
        if let Some(op) = &self.operation {
            app["operation"] = render_op(op);
        }
        app
    }
}

fn render_op(op: &Op) -> Value {
    json!({
        "sync": {
            "revision": op.revision,
            "syncStrategy": {"apply": {}},
            "source": {"repoURL": REPO, "path": "k8s", "targetRevision": "HEAD"}
        },
        "initiatedBy": {"username": op.username},
        "retry": {}
    })
}

/// A grpc-gateway error body; `code` is the gRPC status code.
fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (
        status,
        Json(json!({"error": message, "code": code, "message": message})),
    )
        .into_response()
}

/// Bearer token check for every route; the real server answers gRPC Unauthenticated (16).
async fn gate(AxState(state): AxState<Shared>, req: Request, next: Next) -> Response {
    let expected = format!("Bearer {}", lock(&state).token);
    match req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
    {
        Some(v) if v == expected.as_bytes() => next.run(req).await,
        Some(_) => error(
            StatusCode::UNAUTHORIZED,
            16,
            "invalid session: token signature is invalid",
        ),
        None => error(StatusCode::UNAUTHORIZED, 16, "no session information"),
    }
}

async fn get_app(AxState(state): AxState<Shared>, Path(name): Path<String>) -> Response {
    let mut st = lock(&state);
    if let Some(status) = st.get_faults.pop_front() {
        return error(status, 14, "injected fault");
    }
    match st.find(&name) {
        Some(a) => {
            a.advance();
            Json(a.render()).into_response()
        }
        // Argo CD does not tell a missing application from a forbidden one.
        None => error(StatusCode::FORBIDDEN, 7, "permission denied"),
    }
}

async fn rollback(
    AxState(state): AxState<Shared>,
    Path(name): Path<String>,
    body: Bytes,
) -> Response {
    let mut st = lock(&state);
    // Like the real server (encoding/json into int64 fields): a number, and 0 when absent.
    let parsed: Result<Value, _> = serde_json::from_slice(&body);
    let id = match parsed.as_ref().map(|v| &v["id"]) {
        Ok(Value::Null) => Some(0),
        Ok(v) => v.as_i64(),
        Err(_) => None,
    };
    st.rollback_calls.push(id.unwrap_or(-1));
    if let Some(Fault::Fail(status)) = st.faults.front().cloned() {
        st.faults.pop_front();
        return error(status, 14, "injected fault");
    }
    let Some(id) = id else {
        return error(
            StatusCode::BAD_REQUEST,
            3,
            "json: cannot unmarshal into Go struct field ApplicationRollbackRequest.id of type int64",
        );
    };
    let dry_run = parsed.as_ref().is_ok_and(|v| v["dryRun"] == json!(true));
    let Some(a) = st.find(&name) else {
        return error(StatusCode::FORBIDDEN, 7, "permission denied");
    };
    if a.auto_sync {
        let msg = "rollback cannot be initiated when auto-sync is enabled";
        return error(StatusCode::BAD_REQUEST, 9, msg);
    }
    let Some(revision) = a
        .history
        .iter()
        .find(|h| h.id == id)
        .map(|h| h.revision.clone())
    else {
        let msg = format!("application {name} does not have deployment with id {id}");
        return error(StatusCode::BAD_REQUEST, 3, &msg);
    };
    if a.operation.is_some() {
        let msg = "another operation is already in progress";
        return error(StatusCode::BAD_REQUEST, 9, msg);
    }
    if !dry_run {
        a.operation = Some(Op {
            revision,
            username: "backstop",
        });
        a.op_state = None;
    }
    let rendered = a.render();
    if dry_run {
        return Json(rendered).into_response();
    }
    st.operations += 1;
    if let Some(Fault::RollbackThenFail) = st.faults.front() {
        st.faults.pop_front();
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            13,
            "transport is closing",
        );
    }
    Json(rendered).into_response()
}
