//! Unit tests of the webhook deployer.
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::*;
use crate::config::CallSettings;
use crate::model::ActionKind;
use crate::secret::Secret;

fn target() -> Target<'static> {
    Target {
        watch: "shop",
        project: "Projects-1",
        environment: "prod eu",
        application: None,
    }
}

fn record() -> DeployIntent {
    DeployIntent {
        id: "rb-1".into(),
        observation_id: "obs-1".into(),
        watch: "shop".into(),
        kind: ActionKind::Retry,
        calls: 0,
        condemned_release: "v2 \"hot\"fix".into(),
        target_release: "releases/1.0 b&c".into(),
        target_version: None,
        environment: "prod eu".into(),
        marker: "[backstop-rollback:rb-1]".into(),
        comments: String::new(),
        state: IntentState::Pending,
        deployment_id: None,
        task_id: None,
        detail: None,
        decided_at: Utc::now(),
        ..crate::model::DeployIntent::blank()
    }
}

#[test]
fn url_values_are_percent_encoded() {
    let rec = record();
    let url = fill_url(
        "http://cd.example/apps/{{watch}}/deploy/{{target_release}}?env={{environment}}&key={{idempotency_key}}",
        &placeholders(&target(), &rec),
    );
    assert_eq!(
        url,
        "http://cd.example/apps/shop/deploy/releases%2F1.0%20b%26c?env=prod%20eu&key=%5Bbackstop-rollback%3Arb-1%5D"
    );
    let parsed = reqwest::Url::parse(&url).unwrap();
    assert_eq!(parsed.path_segments().unwrap().count(), 4);
    assert_eq!(parsed.query_pairs().count(), 2);
    assert_eq!(percent_encode("é~"), "%C3%A9~");
}

#[test]
fn the_body_is_json_with_every_value_escaped() {
    let rec = record();
    let template = r#"{"app": "{{watch}}", "release": "{{target_release}}", "version": "{{version}}",
        "from": "{{condemned_release}}", "action": "{{action}}", "key": "{{idempotency_key}}"}"#;
    let body = fill(template, &placeholders(&target(), &rec), true);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        json!({"app": "shop", "release": "releases/1.0 b&c", "version": "",
               "from": "v2 \"hot\"fix", "action": "retry", "key": "[backstop-rollback:rb-1]"})
    );
}

#[test]
fn status_fields_are_found_by_dotted_path() {
    let v = json!({"status": "running", "operation": {"phase": "Succeeded", "attempt": 2},
                   "items": [{"state": true}], "none": null});
    let get = |path| lookup(&v, path).and_then(scalar);
    assert_eq!(get("status").as_deref(), Some("running"));
    assert_eq!(get("operation.phase").as_deref(), Some("Succeeded"));
    assert_eq!(get("operation.attempt").as_deref(), Some("2"));
    assert_eq!(get("items.0.state").as_deref(), Some("true"));
    assert_eq!(get("operation"), None, "an object is not a status");
    assert_eq!(get("none"), None);
    assert_eq!(get("operation.missing"), None);
    assert_eq!(get("status.deeper"), None);
    assert_eq!(get("items.x"), None);
    assert!(matches_any("Succeeded", &["succeeded".into()]));
    assert!(!matches_any("succeeded-ish", &["succeeded".into()]));
}

#[test]
fn answers_are_classified_for_retrying() {
    let e = classify(StatusCode::SERVICE_UNAVAILABLE, None, b"down");
    assert!(e.is_retryable());
    let e = classify(StatusCode::TOO_MANY_REQUESTS, Some(7), b"");
    assert!(e.is_retryable());
    assert_eq!(e.retry_after(), Some(7));
    let e = classify(
        StatusCode::BAD_REQUEST,
        None,
        b"{\"error\":\n  \"unknown release\"}",
    );
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "rejected (HTTP 400): {\"error\": \"unknown release\"}"
    );
    assert!(matches!(
        classify(StatusCode::FORBIDDEN, None, b""),
        DeployerError::Unauthorized { status: 403, .. }
    ));
    let long = excerpt("x".repeat(1000).as_bytes());
    assert_eq!(long.chars().count(), BODY_EXCERPT + 3);
}

/// A scripted endpoint: deploy answers and status answers are served in order, the last
/// one repeated; every deploy request's headers and body are kept.
#[derive(Default)]
struct Script {
    deploys: VecDeque<(u16, Value)>,
    statuses: VecDeque<Value>,
    received: Vec<(HeaderMap, String)>,
    status_paths: Vec<String>,
}

type Shared = Arc<Mutex<Script>>;

fn next<T: Clone>(q: &mut VecDeque<T>) -> T {
    if q.len() > 1 {
        q.pop_front().unwrap()
    } else {
        q.front().cloned().expect("script exhausted")
    }
}

async fn endpoint(script: Script) -> (String, Shared) {
    async fn deploy(
        State(s): State<Shared>,
        headers: HeaderMap,
        body: String,
    ) -> (AxStatus, axum::Json<Value>) {
        let mut s = s.lock().unwrap();
        s.received.push((headers, body));
        let (status, answer) = next(&mut s.deploys);
        (AxStatus::from_u16(status).unwrap(), axum::Json(answer))
    }
    async fn status(State(s): State<Shared>, Path(key): Path<String>) -> axum::Json<Value> {
        let mut s = s.lock().unwrap();
        s.status_paths.push(key);
        axum::Json(next(&mut s.statuses))
    }
    let shared = Arc::new(Mutex::new(script));
    let router = Router::new()
        .route("/deploy", post(deploy))
        .route("/status/{key}", get(status))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, shared)
}

fn deployer(url: &str, status_url: Option<&str>) -> WebhookDeployer {
    let config = WebhookDeployerConfig {
        method: "POST".into(),
        url: format!("{url}/deploy"),
        headers: BTreeMap::from([("X-Team".into(), "web".into())]),
        secret_headers: BTreeMap::from([("Authorization".into(), Secret::new("Bearer s3"))]),
        body: Some(r#"{"release": "{{target_release}}"}"#.into()),
        success_status: vec![200, 202],
        status_url: status_url.map(|s| format!("{url}{s}")),
        status_field: "operation.phase".into(),
        success_values: vec!["succeeded".into()],
        failure_values: vec!["failed".into()],
        calls: CallSettings {
            timeout: Duration::from_secs(5),
            task_poll: Duration::from_millis(10),
            task_timeout: Duration::from_secs(10),
            max_retries: 3,
            settle: std::time::Duration::from_secs(1),
        },
    };
    WebhookDeployer::new("cd", config, reqwest::Client::new(), Metrics::new())
}

/// Runs `execute`, returning the outcome and (state, calls) as seen by each `progress`.
async fn run(
    d: &WebhookDeployer,
    rec: &mut DeployIntent,
) -> (ExecOutcome, Vec<(IntentState, u32)>) {
    let cancel = CancellationToken::new();
    let mut seen = Vec::new();
    let mut progress = |r: &mut DeployIntent| {
        seen.push((r.state, r.calls));
        true
    };
    let exec = Exec {
        cancel: &cancel,
        progress: &mut progress,
    };
    let out = d.execute(&target(), rec, exec).await;
    (out, seen)
}

#[tokio::test]
async fn a_failed_attempt_is_resent_with_the_same_key_then_the_status_is_followed() {
    let (url, script) = endpoint(Script {
        deploys: [(503, json!({})), (202, json!({"id": 7}))].into(),
        statuses: [
            json!({"operation": {}}),
            json!({"operation": {"phase": "Running"}}),
            json!({"operation": {"phase": "Succeeded"}}),
        ]
        .into(),
        ..Script::default()
    })
    .await;
    let d = deployer(&url, Some("/status/{{idempotency_key}}"));
    let mut rec = record();
    let (out, seen) = run(&d, &mut rec).await;
    assert_eq!(out, ExecOutcome::Succeeded);
    assert_eq!(rec.state, IntentState::Succeeded);
    assert_eq!(rec.calls, 2);
    assert_eq!(rec.deployment_id.as_deref(), Some("7"));
    assert_eq!(
        rec.detail.as_deref(),
        Some("deployment 7: operation.phase = Succeeded")
    );
    // Each call was counted and persisted while the intent was still pending.
    assert!(seen.contains(&(IntentState::Pending, 1)));
    assert!(seen.contains(&(IntentState::Pending, 2)));
    let s = script.lock().unwrap();
    assert_eq!(s.received.len(), 2);
    for (headers, body) in &s.received {
        assert_eq!(headers["idempotency-key"], "[backstop-rollback:rb-1]");
        assert_eq!(headers["authorization"], "Bearer s3");
        assert_eq!(headers["x-team"], "web");
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(body, r#"{"release": "releases/1.0 b&c"}"#);
    }
    assert_eq!(s.status_paths.len(), 3);
    assert_eq!(s.status_paths[0], "[backstop-rollback:rb-1]");
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_a_failure_value_ends_the_wait() {
    let (url, script) = endpoint(Script {
        deploys: [(400, json!({"error": "unknown release"}))].into(),
        ..Script::default()
    })
    .await;
    let mut rec = record();
    let (out, _) = run(&deployer(&url, None), &mut rec).await;
    assert_eq!(
        out,
        ExecOutcome::Failed(
            r#"the deploy endpoint refused the deployment: rejected (HTTP 400): {"error":"unknown release"}"#
                .into()
        )
    );
    assert_eq!(rec.calls, 1);
    assert_eq!(script.lock().unwrap().received.len(), 1);

    // A created intent (as after a restart) is followed, not sent again.
    let (url, script) = endpoint(Script {
        statuses: [json!({"operation": {"phase": "FAILED"}})].into(),
        ..Script::default()
    })
    .await;
    let mut rec = record();
    rec.state = IntentState::Created;
    rec.calls = 1;
    rec.deployment_id = Some("dep-3".into());
    let (out, _) = run(&deployer(&url, Some("/status/{{deployment_id}}")), &mut rec).await;
    assert_eq!(
        out,
        ExecOutcome::Failed("deployment dep-3 ended with operation.phase = \"FAILED\"".into())
    );
    assert_eq!(rec.calls, 1);
    let s = script.lock().unwrap();
    assert!(s.received.is_empty());
    assert_eq!(s.status_paths, ["dep-3"]);
}

#[tokio::test]
async fn without_a_status_url_acceptance_is_success() {
    let (url, _script) = endpoint(Script {
        deploys: [(200, json!(null))].into(),
        ..Script::default()
    })
    .await;
    let mut rec = record();
    let (out, seen) = run(&deployer(&url, None), &mut rec).await;
    assert_eq!(out, ExecOutcome::Succeeded);
    assert_eq!(seen.last(), Some(&(IntentState::Succeeded, 1)));
    assert_eq!(rec.deployment_id, None);
}
