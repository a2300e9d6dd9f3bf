//! `control_query` against a real Prometheus: the app's latency and a control's (the same
//! signal for something the deployment did not touch) are two gauges Prometheus scrapes in
//! the same scrape, so each round reads both at the same instant. Both degrading after the
//! deployment is the world, not the release: no rollback. Only the app degrading is the
//! release: rolled back.

use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;

use super::{prometheus_for, query, Prometheus, T};
use crate::common::octopus::FakeOctopus;
use crate::harness::*;

/// The app's latency and the control's, each settable.
struct Levels {
    app: Arc<Mutex<f64>>,
    control: Arc<Mutex<f64>>,
}

/// An app exposing `app_latency_seconds` and the control `world_latency_seconds`, under a
/// real Prometheus holding 10s of both (the baseline window).
async fn app_and_control(dir: &std::path::Path) -> (Prometheus, String, Levels) {
    let app = Arc::new(Mutex::new(0.1_f64));
    let control = Arc::new(Mutex::new(0.2_f64));
    let (a, c) = (app.clone(), control.clone());
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let (a, c) = (*a.lock().unwrap(), *c.lock().unwrap());
            async move {
                format!(
                    "# TYPE app_latency_seconds gauge\napp_latency_seconds {a}\n# TYPE world_latency_seconds gauge\nworld_latency_seconds {c}\n"
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let (prom, prom_url) = prometheus_for(&addr, dir).await;
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + T;
    while query(
        &client,
        &prom_url,
        "count_over_time(world_latency_seconds[10s])",
    )
    .await
    .unwrap_or(0.0)
        < 45.0
    {
        assert!(std::time::Instant::now() < deadline, "no 10s of history");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (prom, prom_url, Levels { app, control })
}

/// A latency check whose failure is a doubling, with the world's latency as its control.
fn controlled_watch(prom_url: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "8s"
interval = "250ms"

[[watch.check]]
name = "latency"
kind = "prometheus"
url = "{prom_url}"
query = "max(app_latency_seconds)"
max_ratio = 2.0
baseline_window = "10s"
control_query = "max(world_latency_seconds)"
timeout = "200ms"
failure_limit = 3
"#
    )
}

/// The last sample's text (a failure's limit, else its reason) of the first check of the
/// last verdict.
fn last_reason(w: &serde_json::Value) -> String {
    let samples = w["last_verdict"]["checks"][0]["samples"]
        .as_array()
        .unwrap();
    let last = samples.last().unwrap();
    last["limit"]
        .as_str()
        .or(last["reason"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_world_degrading_too_is_not_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url, levels) = app_and_control(dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &controlled_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    // Everything is five times slower: the app and the world alike (the world first, so no
    // scrape between the two sees the app alone degraded).
    *levels.control.lock().unwrap() = 1.0;
    *levels.app.lock().unwrap() = 0.5;
    let w = d
        .wait_watch("shop", "a verdict", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
        })
        .await;
    assert_ne!(w["last_verdict"]["verdict"], "condemned", "{w:#}");
    let check = &w["last_verdict"]["checks"][0];
    assert_eq!(check["failures"], 0, "{check:#}");
    assert!(check["no_data"].as_u64().unwrap() >= 3, "{check:#}");
    let baseline = check["control_baseline"].as_f64().unwrap();
    assert!((baseline - 0.2).abs() < 0.05, "control baseline {baseline}");
    let reason = last_reason(&w);
    assert!(
        reason.contains("the world, not us: control up 5.0x too")
            && reason.contains("control 1 vs baseline 0.2"),
        "{reason}"
    );
    assert_eq!(
        octo.post_attempts(),
        0,
        "no deploy call for the world's trouble"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_app_degrading_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url, levels) = app_and_control(dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &controlled_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    *levels.app.lock().unwrap() = 0.5;
    let w = d
        .wait_watch("shop", "condemned verdict", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let reason = last_reason(&w);
    assert!(
        reason.contains("control flat (control 0.2 vs baseline 0.2): not the world"),
        "{reason}"
    );
    let created = octo.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
}
