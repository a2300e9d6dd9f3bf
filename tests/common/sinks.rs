//! Fakes of the notification receivers: a Slack incoming webhook (`FakeSlack`), a generic JSON
//! webhook (`FakeJsonHook`) and Alertmanager's `POST /api/v2/alerts` (`FakeAlertmanager`).
//!
//! All three record what they accepted, count every attempt (failed ones included), can fail
//! the next requests with a chosen status (`fail_next`; a 429 carries `Retry-After: 1`) and can
//! hold requests open until released (`hold`/`release`), to prove a sender does not wait for
//! its receiver. They validate payloads the way the real receivers do, so a malformed message
//! is refused here as it would be there.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use tokio::sync::watch;

/// One accepted request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Header names in lower case.
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

#[derive(Debug, Default)]
struct State {
    accepted: Vec<Recorded>,
    /// Arrival time of every request, accepted or not.
    attempts: Vec<Instant>,
    /// Statuses to answer the next requests with, in order.
    failures: VecDeque<u16>,
}

/// What the three fakes share: the record, the scripted failures and the gate.
#[derive(Clone)]
struct Recorder {
    name: &'static str,
    state: Arc<Mutex<State>>,
    /// `true` while requests are held open.
    gate: Arc<watch::Sender<bool>>,
}

impl Recorder {
    fn new(name: &'static str) -> Recorder {
        Recorder {
            name,
            state: Arc::default(),
            gate: Arc::new(watch::channel(false).0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|_| panic!("{} state poisoned", self.name))
    }

    /// Counts the attempt, waits while held, then answers a scripted failure if one is due.
    async fn arrive(&self) -> Option<Response> {
        self.lock().attempts.push(Instant::now());
        let mut gate = self.gate.subscribe();
        // The sender lives in `self`, so the channel cannot close while we wait.
        let _ = gate.wait_for(|held| !held).await;
        let status = self.lock().failures.pop_front()?;
        let status = StatusCode::from_u16(status).expect("validated in fail_next");
        let mut response = (status, "scripted failure").into_response();
        if status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        Some(response)
    }

    fn accept(&self, headers: &HeaderMap, body: Value) {
        let headers = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        self.lock().accepted.push(Recorded { headers, body });
    }

    fn fail_next(&self, n: usize, status: u16) {
        StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.lock().failures.extend(std::iter::repeat_n(status, n));
    }

    fn hold(&self) {
        self.gate.send_replace(true);
    }

    fn release(&self) {
        self.gate.send_replace(false);
    }

    fn accepted(&self) -> Vec<Recorded> {
        self.lock().accepted.clone()
    }

    fn attempts(&self) -> Vec<Instant> {
        self.lock().attempts.clone()
    }

    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let what = format!("{} accepted {n} requests", self.name);
        super::wait_until(&what, timeout, || self.lock().accepted.len() >= n).await;
        self.accepted()
    }
}

/// Generates the methods every fake has, delegating to its `Recorder`.
macro_rules! common_methods {
    () => {
        /// Answers the next `n` requests with `status` (after any failures already scripted).
        /// A 429 carries `Retry-After: 1`.
        pub fn fail_next(&self, n: usize, status: u16) {
            self.rec.fail_next(n, status);
        }

        /// Holds every request open (counted as an attempt, not answered) until [`Self::release`].
        pub fn hold(&self) {
            self.rec.hold();
        }

        /// Lets held and future requests through.
        pub fn release(&self) {
            self.rec.release();
        }

        /// Number of requests received, failed and held ones included.
        pub fn attempts(&self) -> usize {
            self.rec.attempts().len()
        }

        /// Arrival time of every request, in order.
        pub fn attempt_times(&self) -> Vec<Instant> {
            self.rec.attempts()
        }
    };
}

fn parse(body: &Bytes) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A Slack incoming webhook: `POST /services/T000/B000/<token>` answering `ok`. Like Slack it
/// refuses bodies that are not JSON (`invalid_payload`), that have neither `text` nor `blocks`
/// (`no_text`) or more than 50 blocks (`invalid_blocks`).
#[derive(Clone)]
pub struct FakeSlack {
    addr: std::net::SocketAddr,
    rec: Recorder,
}

/// The token part of [`FakeSlack::url`]: tests assert it never shows up in logs.
pub const SLACK_TOKEN: &str = "XyZsEcReTtOkEn42";

impl FakeSlack {
    pub async fn start() -> FakeSlack {
        let rec = Recorder::new("FakeSlack");
        let router = Router::new()
            .route("/services/T000/B000/{token}", post(slack))
            .with_state(rec.clone());
        let addr = super::serve("FakeSlack", router).await;
        FakeSlack { addr, rec }
    }

    /// The full webhook URL (a secret in backstop's config).
    pub fn url(&self) -> String {
        format!("http://{}/services/T000/B000/{SLACK_TOKEN}", self.addr)
    }

    /// The accepted messages.
    pub fn bodies(&self) -> Vec<Value> {
        self.rec.accepted().into_iter().map(|r| r.body).collect()
    }

    /// Waits until `n` messages were accepted; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let got = self.rec.wait_for(n, timeout).await;
        got.into_iter().map(|r| r.body).collect()
    }

    common_methods!();
}

async fn slack(
    AxState(rec): AxState<Recorder>,
    axum::extract::Path(token): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(failure) = rec.arrive().await {
        return failure;
    }
    if token != SLACK_TOKEN {
        return (StatusCode::FORBIDDEN, "invalid_token").into_response();
    }
    let Some(message) = parse(&body) else {
        return (StatusCode::BAD_REQUEST, "invalid_payload").into_response();
    };
    let text = message.get("text").and_then(Value::as_str);
    let blocks = message.get("blocks").and_then(Value::as_array);
    if text.is_none() && blocks.is_none() {
        return (StatusCode::BAD_REQUEST, "no_text").into_response();
    }
    if blocks.is_some_and(|b| b.len() > 50 || b.iter().any(|b| b["type"].as_str().is_none())) {
        return (StatusCode::BAD_REQUEST, "invalid_blocks").into_response();
    }
    rec.accept(&headers, message);
    (StatusCode::OK, "ok").into_response()
}

/// A generic JSON webhook receiver: `POST /hook`, answers 204; records headers and bodies.
/// Bodies that are not JSON get a 400.
#[derive(Clone)]
pub struct FakeJsonHook {
    addr: std::net::SocketAddr,
    rec: Recorder,
}

impl FakeJsonHook {
    pub async fn start() -> FakeJsonHook {
        let rec = Recorder::new("FakeJsonHook");
        let router = Router::new()
            .route("/hook", post(json_hook))
            .with_state(rec.clone());
        let addr = super::serve("FakeJsonHook", router).await;
        FakeJsonHook { addr, rec }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The accepted requests (headers and bodies).
    pub fn requests(&self) -> Vec<Recorded> {
        self.rec.accepted()
    }

    /// Waits until `n` requests were accepted; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        self.rec.wait_for(n, timeout).await
    }

    common_methods!();
}

async fn json_hook(AxState(rec): AxState<Recorder>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(failure) = rec.arrive().await {
        return failure;
    }
    let Some(doc) = parse(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not JSON").into_response();
    };
    rec.accept(&headers, doc);
    StatusCode::NO_CONTENT.into_response()
}

/// Alertmanager's alert intake: `POST /api/v2/alerts` with an array of `postableAlert`. Like
/// the real one it answers 200 with an empty body, or 400 `{"code":400,"message":...}` when the
/// body is not an array of objects whose `labels` map (strings only) has an `alertname`, whose
/// `annotations`, if present, are strings and whose `startsAt`/`endsAt` are RFC 3339 times.
#[derive(Clone)]
pub struct FakeAlertmanager {
    addr: std::net::SocketAddr,
    rec: Recorder,
}

impl FakeAlertmanager {
    pub async fn start() -> FakeAlertmanager {
        let rec = Recorder::new("FakeAlertmanager");
        let router = Router::new()
            .route("/api/v2/alerts", post(alerts))
            .with_state(rec.clone());
        let addr = super::serve("FakeAlertmanager", router).await;
        FakeAlertmanager { addr, rec }
    }

    /// Base URL, as configured in backstop (without `/api/v2`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every accepted alert, flattened across requests.
    pub fn alerts(&self) -> Vec<Value> {
        flatten(self.rec.accepted())
    }

    /// Waits until `n` alerts (not requests) were accepted; returns them.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Value> {
        super::wait_until("FakeAlertmanager accepted the alerts", timeout, || {
            self.alerts().len() >= n
        })
        .await;
        self.alerts()
    }

    common_methods!();
}

fn flatten(requests: Vec<Recorded>) -> Vec<Value> {
    requests
        .into_iter()
        .flat_map(|r| r.body.as_array().cloned().unwrap_or_default())
        .collect()
}

async fn alerts(AxState(rec): AxState<Recorder>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(failure) = rec.arrive().await {
        return failure;
    }
    let doc = parse(&body).unwrap_or(Value::Null);
    if let Err(message) = validate_alerts(&doc) {
        let body = json!({"code": 400, "message": message});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    rec.accept(&headers, doc);
    StatusCode::OK.into_response()
}

fn validate_alerts(doc: &Value) -> Result<(), String> {
    let list = doc
        .as_array()
        .ok_or("alerts in body must be of type array")?;
    for (i, alert) in list.iter().enumerate() {
        let labels = alert
            .get("labels")
            .and_then(Value::as_object)
            .ok_or(format!("{i}.labels in body is required"))?;
        if labels.values().any(|v| !v.is_string()) {
            return Err(format!("{i}.labels in body must be a map of strings"));
        }
        if !labels.contains_key("alertname") {
            return Err(format!("{i}.labels: alertname is required"));
        }
        for key in ["startsAt", "endsAt"] {
            if let Some(t) = alert.get(key) {
                let ok = t
                    .as_str()
                    .is_some_and(|t| chrono::DateTime::parse_from_rfc3339(t).is_ok());
                if !ok {
                    return Err(format!("{i}.{key} in body must be of type date-time"));
                }
            }
        }
        if let Some(a) = alert.get("annotations") {
            let ok = a
                .as_object()
                .is_some_and(|m| m.values().all(Value::is_string));
            if !ok {
                return Err(format!("{i}.annotations in body must be a map of strings"));
            }
        }
    }
    Ok(())
}
