//! The demo's simulated deployment tool: just enough of the Octopus Deploy REST API (deployments,
//! tasks, releases) for backstop's real Octopus client, with a release history. A deployment
//! takes 300 ms, then the simulated service runs the new release.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::service::{Behaviour, Service};

pub const PROJECT: &str = "Projects-1";
pub const ENVIRONMENT: &str = "Environments-1";
const DEPLOY_TIME: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
struct Release {
    id: String,
    version: String,
    behaviour: Behaviour,
}

/// A deployment as the demo reports it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub id: String,
    pub release: String,
    pub version: String,
    pub created: DateTime<Utc>,
    pub at: Instant,
    pub comments: String,
    done: bool,
}

#[derive(Default)]
struct Octo {
    releases: Vec<Release>,
    deployments: Vec<Deployment>,
}

/// Handle on the simulated deployment API.
#[derive(Clone)]
pub struct Octopus {
    pub url: String,
    state: Arc<Mutex<Octo>>,
    service: Service,
}

impl Octopus {
    pub async fn start(service: Service, cancel: CancellationToken) -> std::io::Result<Octopus> {
        let state = Arc::new(Mutex::new(Octo::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let octo = Octopus {
            url,
            state,
            service,
        };
        let app = Router::new()
            .route("/sim/releases", axum::routing::post(sim_release))
            .route("/sim/deployments", get(sim_deployments))
            .route("/api/{space}/deployments", get(list).post(create))
            .route("/api/{space}/deployments/{id}", get(one))
            .route("/api/{space}/tasks/{id}", get(task))
            .route("/api/{space}/releases/{id}", get(release))
            .with_state(octo.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { cancel.cancelled().await })
                .await;
        });
        Ok(octo)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Octo> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a release and how it will behave once deployed.
    pub fn add_release(&self, version: &str, behaviour: Behaviour) -> String {
        let mut s = self.lock();
        let id = format!("Releases-{}", s.releases.len() + 1);
        s.releases.push(Release {
            id: id.clone(),
            version: version.to_string(),
            behaviour,
        });
        id
    }

    /// Deploys a release as a CI pipeline would; it runs after [`DEPLOY_TIME`].
    pub fn deploy(&self, release: &str, comments: &str) -> Option<Deployment> {
        let (dep, behaviour) = {
            let mut s = self.lock();
            let r = s.releases.iter().find(|r| r.id == release)?.clone();
            let dep = Deployment {
                id: format!("Deployments-{}", s.deployments.len() + 1),
                release: r.id.clone(),
                version: r.version.clone(),
                created: Utc::now(),
                at: Instant::now(),
                comments: comments.to_string(),
                done: false,
            };
            s.deployments.push(dep.clone());
            (dep, r.behaviour)
        };
        let me = self.clone();
        let id = dep.id.clone();
        let version = dep.version.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DEPLOY_TIME).await;
            me.service.run(&version, behaviour);
            if let Some(d) = me.lock().deployments.iter_mut().find(|d| d.id == id) {
                d.done = true;
            }
        });
        Some(dep)
    }

    /// Deployments so far, oldest first.
    pub fn deployments(&self) -> Vec<Deployment> {
        self.lock().deployments.clone()
    }

    fn render(&self, d: &Deployment) -> Value {
        json!({
            "Id": d.id, "ReleaseId": d.release, "ProjectId": PROJECT, "EnvironmentId": ENVIRONMENT,
            "TaskId": d.id.replace("Deployments-", "ServerTasks-"), "SpaceId": "Spaces-1",
            "Created": d.created.to_rfc3339(), "Name": format!("Deploy {}", d.version),
            "Comments": d.comments, "Links": {}
        })
    }
}

async fn list(
    State(o): State<Octopus>,
    axum::extract::Query(q): axum::extract::Query<Vec<(String, String)>>,
) -> Json<Value> {
    let want_success = q.iter().any(|(k, v)| k == "taskState" && v == "Success");
    let s = o.lock();
    let items: Vec<Value> = s
        .deployments
        .iter()
        .rev()
        .filter(|d| !want_success || d.done)
        .map(|d| o.render(d))
        .collect();
    Json(json!({
        "ItemType": "Deployment", "TotalResults": items.len(), "ItemsPerPage": 30,
        "NumberOfPages": 1, "LastPageNumber": 0, "Items": items, "Links": {}
    }))
}

async fn create(State(o): State<Octopus>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let release = body["ReleaseId"].as_str().unwrap_or_default();
    let comments = body["Comments"].as_str().unwrap_or_default();
    match o.deploy(release, comments) {
        Some(d) => (StatusCode::CREATED, Json(o.render(&d))),
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"ErrorMessage": "Unknown release", "Errors": [release]})),
        ),
    }
}

async fn one(
    State(o): State<Octopus>,
    Path((_, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    let s = o.lock();
    match s.deployments.iter().find(|d| d.id == id) {
        Some(d) => (StatusCode::OK, Json(o.render(d))),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"ErrorMessage": "Not found", "Errors": []})),
        ),
    }
}

async fn task(
    State(o): State<Octopus>,
    Path((_, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    let dep = id.replace("ServerTasks-", "Deployments-");
    let s = o.lock();
    let Some(d) = s.deployments.iter().find(|d| d.id == dep) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"ErrorMessage": "Not found", "Errors": []})),
        );
    };
    let state = if d.done { "Success" } else { "Executing" };
    (
        StatusCode::OK,
        Json(json!({
            "Id": id, "State": state, "IsCompleted": d.done, "FinishedSuccessfully": d.done,
            "HasPendingInterruptions": false, "ErrorMessage": ""
        })),
    )
}

async fn release(
    State(o): State<Octopus>,
    Path((_, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    let s = o.lock();
    match s.releases.iter().find(|r| r.id == id) {
        Some(r) => (
            StatusCode::OK,
            Json(
                json!({"Id": r.id, "Version": r.version, "ProjectId": PROJECT, "ReleaseNotes": ""}),
            ),
        ),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"ErrorMessage": "Not found", "Errors": []})),
        ),
    }
}

/// `POST /sim/releases {"version", "behaviour"}`: registers a release (benchmarks, scripts).
async fn sim_release(
    State(o): State<Octopus>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let version = body["version"].as_str().unwrap_or("0.0.0");
    let Some(behaviour) = body["behaviour"].as_str().and_then(Behaviour::parse) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(
                json!({"error": "behaviour must be one of good, bad-health, error-spike, slow, noisy, flapping"}),
            ),
        );
    };
    let id = o.add_release(version, behaviour);
    (StatusCode::CREATED, Json(json!({"id": id})))
}

/// `GET /sim/deployments`: every deployment with its creation time in unix milliseconds and
/// whether it is live yet, so a benchmark can time detection.
async fn sim_deployments(State(o): State<Octopus>) -> Json<Value> {
    let s = o.lock();
    let items: Vec<Value> = s
        .deployments
        .iter()
        .map(|d| {
            json!({
                "id": d.id, "release": d.release, "version": d.version,
                "created_unix_ms": d.created.timestamp_millis(), "done": d.done,
                "comments": d.comments,
            })
        })
        .collect();
    Json(json!({ "deployments": items }))
}
