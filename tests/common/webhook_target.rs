//! `FakeCd`: a generic CD system behind a webhook, the far end of a `kind = "webhook"` deployer.
//!
//! It keeps the contract backstop's webhook deployer relies on: `POST /deploy` deduplicates on
//! the `Idempotency-Key` header (a repeated key answers the first deployment's id and starts
//! nothing new), and `GET /deployments/{id}` reports a deployment's status, found by its id or
//! by its idempotency key. Tests inject faults — refusals, outages, a deployment accepted whose
//! answer is lost — and inspect every request and every distinct deployment.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// One request the fake received, whatever it answered.
#[derive(Debug, Clone)]
pub struct CdRequest {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` when there was none or it was not JSON.
    pub body: Value,
    /// The status the fake answered.
    pub answered: u16,
}

impl CdRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A deployment the fake accepted (once per idempotency key).
#[derive(Debug, Clone)]
pub struct CdDeployment {
    pub id: String,
    pub idempotency_key: Option<String>,
    pub body: Value,
    /// Status GETs answered for it so far.
    pub polls: usize,
}

#[derive(Debug)]
struct State {
    requests: Vec<CdRequest>,
    deployments: Vec<CdDeployment>,
    by_key: HashMap<String, usize>,
    /// `(remaining, status)`: refuse the next deploy requests without deploying.
    fail_next: (usize, u16),
    /// Deploy the next requests but answer 500, as if the answer was lost.
    accept_then_fail: usize,
    required_header: Option<(String, String)>,
    /// Status GETs answered `running` before the final status.
    running_polls: usize,
    final_status: String,
}

/// Handle on a running fake CD system. Clones share the same server.
#[derive(Clone)]
pub struct FakeCd {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
}

type Shared = Arc<Mutex<State>>;

impl FakeCd {
    /// Starts the fake on an ephemeral loopback port. Deployments report `running` on the
    /// first status GET and `succeeded` from then on.
    pub async fn start() -> FakeCd {
        let state = Arc::new(Mutex::new(State {
            requests: Vec::new(),
            deployments: Vec::new(),
            by_key: HashMap::new(),
            fail_next: (0, 500),
            accept_then_fail: 0,
            required_header: None,
            running_polls: 1,
            final_status: "succeeded".into(),
        }));
        let router = Router::new()
            .route("/deploy", post(deploy))
            .route("/deployments/{id}", get(deployment))
            .with_state(state.clone());
        let addr = super::serve("FakeCd", router).await;
        FakeCd { addr, state }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next `n` deploy requests are refused with `status` (nothing is deployed).
    pub fn fail_next(&self, n: usize, status: u16) {
        StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.lock().fail_next = (n, status);
    }

    /// The next `n` deploy requests are deployed but answered 500: a lost response.
    pub fn accept_then_fail_next(&self, n: usize) {
        self.lock().accept_then_fail = n;
    }

    /// Every request must carry this header with this value, else 401.
    pub fn require_header(&self, name: &str, value: &str) {
        self.lock().required_header = Some((name.to_ascii_lowercase(), value.to_string()));
    }

    /// The status deployments end with (`succeeded`, `failed`, ...), after `running_polls`
    /// GETs that answer `running`.
    pub fn set_outcome(&self, final_status: &str, running_polls: usize) {
        let mut s = self.lock();
        s.final_status = final_status.to_string();
        s.running_polls = running_polls;
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<CdRequest> {
        self.lock().requests.clone()
    }

    /// The `POST /deploy` requests received, in order.
    pub fn deploy_requests(&self) -> Vec<CdRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/deploy")
            .collect()
    }

    /// Distinct deployments accepted (a repeated idempotency key adds none).
    pub fn deployments(&self) -> Vec<CdDeployment> {
        self.lock().deployments.clone()
    }

    /// Waits until at least `n` deployments exist, returning them.
    pub async fn wait_for_deployments(&self, n: usize, timeout: Duration) -> Vec<CdDeployment> {
        super::wait_until(&format!("FakeCd has {n} deployment(s)"), timeout, || {
            self.lock().deployments.len() >= n
        })
        .await;
        self.deployments()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("FakeCd state poisoned")
    }
}

fn lower_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Records the request, then answers 401 when a required header is missing or wrong.
fn admit(s: &mut State, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> bool {
    let headers = lower_headers(headers);
    let authorized = s
        .required_header
        .as_ref()
        .is_none_or(|(name, value)| headers.get(name) == Some(value));
    s.requests.push(CdRequest {
        method: method.to_string(),
        path: uri.path().to_string(),
        headers,
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        answered: if authorized { 0 } else { 401 },
    });
    authorized
}

fn answer(s: &mut State, status: StatusCode, body: Value) -> (StatusCode, Json<Value>) {
    if let Some(last) = s.requests.last_mut() {
        last.answered = status.as_u16();
    }
    (status, Json(body))
}

async fn deploy(
    AxState(state): AxState<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, Json<Value>) {
    let mut s = state.lock().expect("FakeCd state poisoned");
    if !admit(&mut s, &method, &uri, &headers, &body) {
        return answer(
            &mut s,
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized"}),
        );
    }
    if s.fail_next.0 > 0 {
        s.fail_next.0 -= 1;
        let status = StatusCode::from_u16(s.fail_next.1).expect("validated in fail_next");
        let msg = format!("FakeCd injected HTTP {}", status.as_u16());
        return answer(&mut s, status, json!({ "error": msg }));
    }
    let key = headers
        .get("idempotency-key")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let existing = key.as_ref().and_then(|k| s.by_key.get(k).copied());
    let index = match existing {
        Some(i) => i,
        None => {
            let i = s.deployments.len();
            s.deployments.push(CdDeployment {
                id: format!("dep-{}", i + 1),
                idempotency_key: key.clone(),
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                polls: 0,
            });
            if let Some(k) = key {
                s.by_key.insert(k, i);
            }
            i
        }
    };
    if s.accept_then_fail > 0 {
        s.accept_then_fail -= 1;
        return answer(
            &mut s,
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "FakeCd lost the answer"}),
        );
    }
    let id = s.deployments[index].id.clone();
    answer(
        &mut s,
        StatusCode::ACCEPTED,
        json!({"id": id, "status": "running"}),
    )
}

async fn deployment(
    AxState(state): AxState<Shared>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    let mut s = state.lock().expect("FakeCd state poisoned");
    if !admit(&mut s, &method, &uri, &headers, &[]) {
        return answer(
            &mut s,
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized"}),
        );
    }
    let found = s
        .deployments
        .iter()
        .position(|d| d.id == id)
        .or_else(|| s.by_key.get(&id).copied());
    let Some(i) = found else {
        return answer(
            &mut s,
            StatusCode::NOT_FOUND,
            json!({"error": "no such deployment"}),
        );
    };
    s.deployments[i].polls += 1;
    let status = if s.deployments[i].polls <= s.running_polls {
        "running".to_string()
    } else {
        s.final_status.clone()
    };
    let id = s.deployments[i].id.clone();
    answer(&mut s, StatusCode::OK, json!({"id": id, "status": status}))
}
