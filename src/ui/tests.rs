//! The dashboard's routes through the real router, without a socket.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

use crate::api::{router, ApiState};
use crate::sinks::{testing, AlertKind};
use crate::status::{StatusBoard, WatchState};
use crate::store::{Commit, Store};

/// An API with one watch, `shop`, and one stored verdict, `obs-42` (also for the API's and
/// the client's tests).
pub(crate) fn state() -> ApiState {
    let store = Store::in_memory().unwrap();
    let ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
    store
        .commit(
            "shop",
            &Commit {
                evidence: vec![ev],
                ..Commit::default()
            },
        )
        .unwrap();
    let status = StatusBoard::default();
    status.update("shop", |w| {
        w.state = WatchState::Idle;
        w.current_release = Some("Releases-1".into());
    });
    let metrics = crate::metrics::Metrics::new();
    let http = reqwest::Client::new();
    let tasks = tokio_util::task::TaskTracker::new();
    let shared = crate::engine::Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        status: status.clone(),
        http: http.clone(),
        tasks: tasks.clone(),
        sinks: crate::sinks::Sinks::new(&Default::default(), http, metrics.clone(), tasks),
        evidence_dir: std::env::temp_dir(),
        outbox: Default::default(),
        leases: crate::fleet::Leases::single(),
        lag: Default::default(),
        probes: Default::default(),
    };
    ApiState {
        engine: crate::engine::Engine::new(shared, tokio_util::sync::CancellationToken::new()),
        status,
        metrics,
        store,
        auth: Default::default(),
    }
}

async fn get(ui: bool, path: &str, accept: &str) -> (StatusCode, String, axum::http::HeaderMap) {
    let r = router(state(), ui)
        .oneshot(
            Request::get(path)
                .header(header::ACCEPT, accept)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap(), headers)
}

const HTML: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

#[tokio::test]
async fn pages_answer_html_to_browsers_and_json_to_programs() {
    let (s, body, h) = get(true, "/", HTML).await;
    assert_eq!(s, StatusCode::OK);
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(h[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("script-src 'self'"));
    assert!(body.contains("data-watch=\"shop\""), "{body}");
    let (_, json, _) = get(true, "/", "application/json").await;
    let (_, status, _) = get(true, "/v1/status", "application/json").await;
    assert_eq!(json, status, "the overview's JSON is /v1/status");

    let (s, body, _) = get(true, "/ui/verdicts/obs-42", HTML).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("<svg"), "{body}");
    let (_, json, _) = get(true, "/ui/verdicts/obs-42", "application/json").await;
    let (_, api, _) = get(true, "/v1/verdicts/obs-42", "application/json").await;
    assert_eq!(json, api);

    let (s, body, _) = get(true, "/ui/watches/shop", HTML).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("Timeline"), "{body}");
    let (_, json, _) = get(true, "/ui/watches/shop", "application/json").await;
    let (_, api, _) = get(true, "/v1/watches/shop", "application/json").await;
    assert_eq!(json, api);
}

#[tokio::test]
async fn unknown_pages_are_404_pages() {
    let (s, body, _) = get(true, "/ui/verdicts/nope", HTML).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.contains("no verdict with id"), "{body}");
    let (s, body, _) = get(true, "/ui/watches/nope", "application/json").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(body.starts_with("{\"error\""), "{body}");
}

#[tokio::test]
async fn assets_are_served_and_the_ui_can_be_turned_off() {
    let (s, css, _) = get(true, "/ui/style.css", "*/*").await;
    assert_eq!(s, StatusCode::OK);
    assert!(css.contains(".chart"));
    let (s, js, h) = get(true, "/ui/live.js", "*/*").await;
    assert_eq!(s, StatusCode::OK);
    assert!(js.contains("/v1/status"));
    assert!(h[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    for path in [
        "/",
        "/ui/watches/shop",
        "/ui/verdicts/obs-42",
        "/ui/style.css",
    ] {
        assert_eq!(
            get(false, path, HTML).await.0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    assert_eq!(get(false, "/v1/status", HTML).await.0, StatusCode::OK);
}

#[tokio::test]
async fn the_ui_writes_nothing() {
    for path in ["/", "/ui/watches/shop", "/ui/verdicts/obs-42"] {
        let r = router(state(), true)
            .oneshot(Request::post(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED, "{path}");
    }
}
