//! The demo's simulated deployment tool: just enough of the Octopus Deploy REST API (deployments,
//! tasks and their details, releases) for backstop's real Octopus client, with a release
//! history. A deployment takes 300 ms, then the simulated service runs the new release, unless
//! the release was registered to fail its deployments (`"deploy_fails": true` on
//! `POST /sim/releases`): then its task ends Failed and the service keeps the old release.

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
    /// Its deployments' tasks fail: the service never runs it.
    deploy_fails: bool,
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
    /// Finished without deploying (its release fails its deployments).
    failed: bool,
}

impl Deployment {
    /// Its task's `TaskState`.
    fn state(&self) -> &'static str {
        match (self.done, self.failed) {
            (false, _) => "Executing",
            (true, false) => "Success",
            (true, true) => "Failed",
        }
    }
}

const FAILED_MESSAGE: &str =
    "The deployment failed because one or more steps failed. Please see the deployment log for details.";

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
            .route("/api/{space}/tasks/{id}/details", get(task_details))
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
        self.add_release_failing(version, behaviour, false)
    }

    /// Like [`Self::add_release`]; with `deploy_fails`, its deployments' tasks end Failed.
    pub fn add_release_failing(
        &self,
        version: &str,
        behaviour: Behaviour,
        deploy_fails: bool,
    ) -> String {
        let mut s = self.lock();
        let id = format!("Releases-{}", s.releases.len() + 1);
        s.releases.push(Release {
            id: id.clone(),
            version: version.to_string(),
            behaviour,
            deploy_fails,
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
                failed: false,
            };
            s.deployments.push(dep.clone());
            (dep, (!r.deploy_fails).then_some(r.behaviour))
        };
        let me = self.clone();
        let id = dep.id.clone();
        let version = dep.version.clone();
        tokio::spawn(async move {
            tokio::time::sleep(DEPLOY_TIME).await;
            if let Some(behaviour) = behaviour {
                me.service.run(&version, behaviour);
            }
            if let Some(d) = me.lock().deployments.iter_mut().find(|d| d.id == id) {
                d.done = true;
                d.failed = behaviour.is_none();
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
    let state = q.iter().find(|(k, _)| k == "taskState").map(|(_, v)| v);
    let s = o.lock();
    let items: Vec<Value> = s
        .deployments
        .iter()
        .rev()
        .filter(|d| state.is_none_or(|want| want == d.state()))
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

/// The deployment whose task is `id` (task numbers mirror deployment numbers here).
fn deployment_of_task(o: &Octopus, id: &str) -> Option<Deployment> {
    let dep = id.replace("ServerTasks-", "Deployments-");
    o.lock().deployments.iter().find(|d| d.id == dep).cloned()
}

fn task_json(id: &str, d: &Deployment) -> Value {
    json!({
        "Id": id, "State": d.state(), "IsCompleted": d.done,
        "FinishedSuccessfully": d.state() == "Success", "HasPendingInterruptions": false,
        "ErrorMessage": if d.failed { FAILED_MESSAGE } else { "" },
    })
}

fn not_found() -> (StatusCode, Json<Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"ErrorMessage": "Not found", "Errors": []})),
    )
}

async fn task(
    State(o): State<Octopus>,
    Path((_, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    match deployment_of_task(&o, &id) {
        Some(d) => (StatusCode::OK, Json(task_json(&id, &d))),
        None => not_found(),
    }
}

/// `GET /api/{space}/tasks/{id}/details`: the task and a one-step activity log; a failed
/// deployment's step fails on the demo's one machine with the lines a failed script leaves.
async fn task_details(
    State(o): State<Octopus>,
    Path((_, id)): Path<(String, String)>,
) -> (StatusCode, Json<Value>) {
    let Some(d) = deployment_of_task(&o, &id) else {
        return not_found();
    };
    let status = match d.state() {
        "Executing" => "Running",
        other => other,
    };
    let line = |category: &str, text: &str| json!({"Category": category, "Detail": null, "MessageText": text, "OccurredAt": d.created.to_rfc3339()});
    let mut host = vec![line("Info", &format!("Deploying shop {}", d.version))];
    let mut root_log = vec![];
    if d.failed {
        host.push(line(
            "Error",
            &format!("shop {} did not start: exit code 1", d.version),
        ));
        host.push(line("Fatal", "The remote script failed with exit code 1"));
        root_log.push(line("Fatal", FAILED_MESSAGE));
    }
    let node = |name: &str, children: Vec<Value>, log: Vec<Value>| json!({"Id": format!("{id}_{name}"), "Name": name, "Status": status, "Children": children, "LogElements": log});
    let step = node(
        "Step 1: Deploy shop",
        vec![node("demo-host", vec![], host)],
        vec![],
    );
    let root = node(
        &format!("Deploy shop release {}", d.version),
        vec![step],
        root_log,
    );
    (
        StatusCode::OK,
        Json(json!({"Task": task_json(&id, &d), "ActivityLogs": [root]})),
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

/// `POST /sim/releases {"version", "behaviour", "deploy_fails"}`: registers a release
/// (benchmarks, scripts); with `"deploy_fails": true` its deployments' tasks end Failed.
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
    let deploy_fails = body["deploy_fails"].as_bool().unwrap_or(false);
    let id = o.add_release_failing(version, behaviour, deploy_fails);
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
                "state": d.state(),
                "comments": d.comments,
            })
        })
        .collect();
    Json(json!({ "deployments": items }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_release_made_to_fail_ends_its_deployments_failed_and_keeps_the_service() {
        let cancel = CancellationToken::new();
        let service = Service::start("1.0.0", cancel.clone()).await.unwrap();
        let octo = Octopus::start(service.clone(), cancel.clone())
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let release = http
            .post(format!("{}/sim/releases", octo.url))
            .json(&json!({"version": "1.1.0", "behaviour": "good", "deploy_fails": true}))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let d = octo.deploy(&release, "CI pipeline").unwrap();
        let get = |path: String| {
            let http = http.clone();
            async move {
                http.get(path)
                    .send()
                    .await
                    .unwrap()
                    .json::<Value>()
                    .await
                    .unwrap()
            }
        };
        let list = |state: &str| {
            get(format!(
                "{}/api/Spaces-1/deployments?taskState={state}",
                octo.url
            ))
        };
        assert_eq!(list("Executing").await["Items"][0]["Id"], d.id.as_str());
        assert_eq!(list("Failed").await["TotalResults"], 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        while list("Failed").await["TotalResults"] != 1 {
            assert!(Instant::now() < deadline, "the deployment never ended");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(list("Success").await["TotalResults"], 0);
        assert_eq!(
            service.release(),
            "1.0.0",
            "a failed deployment runs nothing"
        );
        let task = d.id.replace("Deployments-", "ServerTasks-");
        let details = get(format!("{}/api/Spaces-1/tasks/{task}/details", octo.url)).await;
        let f = crate::deployer::octopus::details::failure(&details);
        assert_eq!(f.state.as_deref(), Some("Failed"));
        assert_eq!(
            (f.step.as_deref(), f.machine.as_deref()),
            (Some("Deploy shop"), Some("demo-host"))
        );
        assert_eq!(
            f.log_tail.last().map(String::as_str),
            Some("The remote script failed with exit code 1")
        );
        cancel.cancel();
    }
}
