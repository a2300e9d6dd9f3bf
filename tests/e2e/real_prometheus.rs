//! Against a real Prometheus server (Debian package `prometheus`), started on loopback:
//! the app exposes gauges, Prometheus scrapes them, backstop queries Prometheus. A
//! baseline-ratio breach rolls the release back through the fake Octopus; Prometheus going
//! away makes a good release inconclusive, never rolled back; a stopped exporter's series goes
//! stale and reads as no data, never as its last value. `compare = "mann-whitney"` alone
//! condemns a noisy latency that rose 50% after the deployment, and verifies one that did not.
//! `control_query` ([`control`]): the world degrading too is no rollback.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use crate::common::octopus::FakeOctopus;
use crate::harness::*;

#[path = "real_control.rs"]
mod control;

const T: Duration = Duration::from_secs(60);

pub(crate) struct Prometheus(pub(crate) Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An app exposing `app_latency_seconds` with a settable value.
pub(crate) async fn metrics_app() -> (String, Arc<Mutex<f64>>) {
    let value = Arc::new(Mutex::new(0.1_f64));
    let v = value.clone();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let v = *v.lock().unwrap();
            async move { format!("# TYPE app_latency_seconds gauge\napp_latency_seconds {v}\n") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, value)
}

pub(crate) async fn query(c: &reqwest::Client, prom: &str, q: &str) -> Option<f64> {
    let v: serde_json::Value = c
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", q)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_breach_seen_through_a_real_prometheus_rolls_back() {
    let (app, latency) = metrics_app().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let prom_url = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 200ms\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ['{app}']\n"
        ),
    )
    .unwrap();
    let _prom = Prometheus(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package) is installed by the test command"),
    );
    let c = reqwest::Client::new();
    // Baseline: wait until Prometheus holds a few seconds of the healthy value.
    let deadline = std::time::Instant::now() + T;
    loop {
        if query(&c, &prom_url, "count_over_time(app_latency_seconds[10s])")
            .await
            .unwrap_or(0.0)
            >= 10.0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never scraped the app"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &format!(
                r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "20s"
interval = "250ms"

[[watch.check]]
name = "latency"
kind = "prometheus"
url = "{prom_url}"
query = "max(app_latency_seconds)"
baseline_window = "10s"
max_ratio = 2.0
max = 10
timeout = "200ms"
failure_limit = 3
"#
            )),
    );
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    // The new release is five times slower.
    *latency.lock().unwrap() = 0.5;
    let created = octo.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let w = d
        .wait_watch("shop", "condemned verdict", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    let baseline = check["baseline"].as_f64().unwrap();
    assert!(
        (baseline - 0.1).abs() < 0.05,
        "baseline from real Prometheus history: {baseline}"
    );
    assert!(
        check["limit_hit"].as_str().unwrap().contains("max_ratio"),
        "{check}"
    );
}

/// A real Prometheus scraping `app` every 200ms, once it holds a few samples.
async fn prometheus_for(app: &str, dir: &std::path::Path) -> (Prometheus, String) {
    prometheus_scraping(app, dir, "count_over_time(app_latency_seconds[5s])").await
}

/// A real Prometheus scraping `app` every 200ms, once `ready` (a count of samples) reaches 5.
pub(crate) async fn prometheus_scraping(
    app: &str,
    dir: &std::path::Path,
    ready: &str,
) -> (Prometheus, String) {
    let (prom, prom_url) = start_prometheus(
        dir,
        &format!(
            "global:\n  scrape_interval: 200ms\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    scrape_timeout: 150ms\n    static_configs:\n      - targets: ['{app}']\n"
        ),
    )
    .await;
    let c = reqwest::Client::new();
    let deadline = std::time::Instant::now() + T;
    while query(&c, &prom_url, ready).await.unwrap_or(0.0) < 5.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never scraped the app"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (prom, prom_url)
}

/// A real Prometheus on a free loopback port, configured with `config` (prometheus.yml), its
/// TSDB in `dir/data` (where a test may have put blocks first), once it says it is ready.
pub(crate) async fn start_prometheus(dir: &std::path::Path, config: &str) -> (Prometheus, String) {
    let port = free_port();
    let prom_url = format!("http://127.0.0.1:{port}");
    std::fs::write(dir.join("prometheus.yml"), config).unwrap();
    let prom = Prometheus(
        Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package) is installed by the test command"),
    );
    let c = reqwest::Client::new();
    let ready = format!("{prom_url}/-/ready");
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Ok(r) = c.get(&ready).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus never became ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (prom, prom_url)
}

fn latency_watch(prom_url: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "30s"
interval = "250ms"
error_limit = 4

[[watch.check]]
name = "latency"
kind = "prometheus"
url = "{prom_url}"
query = "max(app_latency_seconds)"
max = 1
timeout = "200ms"
failure_limit = 3
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_down_is_never_a_broken_app() {
    // Prometheus itself goes away mid-window (a good release): errors, inconclusive, and no
    // deploy call. Telemetry down is not the application down.
    let (app, _latency) = metrics_app().await;
    let dir = tempfile::tempdir().unwrap();
    let (prom, prom_url) = prometheus_for(&app, dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &latency_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    d.wait_watch("shop", "passing samples", T, |w| {
        w["observation"]["checks"][0]["passes"].as_u64() >= Some(2)
    })
    .await;
    drop(prom);
    let w = d
        .wait_watch("shop", "inconclusive", T, |w| {
            w["last_verdict"]["verdict"] == "inconclusive"
        })
        .await;
    assert_eq!(w["last_verdict"]["checks"][0]["failures"], 0, "{w:#}");
    assert_eq!(
        octo.post_attempts(),
        0,
        "no deploy call when telemetry is down"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_exporter_reads_as_no_data_under_a_real_prometheus() {
    let (app, _latency, stop) = stoppable_metrics_app().await;
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url) = prometheus_for(&app, dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &latency_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    d.wait_watch("shop", "passing samples", T, |w| {
        w["observation"]["checks"][0]["passes"].as_u64() >= Some(2)
    })
    .await;
    stop.notify_one();
    let w = d
        .wait_watch("shop", "inconclusive on no data", T, |w| {
            w["last_verdict"]["verdict"] == "inconclusive"
        })
        .await;
    let last = w["last_verdict"]["checks"][0]["samples"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert!(
        last["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("no data"),
        "a stale series is no data, not the last value: {last}"
    );
    assert_eq!(octo.post_attempts(), 0);
}

/// Like [`metrics_app`], and stops serving (port closed) when notified.
async fn stoppable_metrics_app() -> (String, Arc<Mutex<f64>>, Arc<tokio::sync::Notify>) {
    let value = Arc::new(Mutex::new(0.1_f64));
    let v = value.clone();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let v = *v.lock().unwrap();
            async move { format!("# TYPE app_latency_seconds gauge\napp_latency_seconds {v}\n") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stop = Arc::new(tokio::sync::Notify::new());
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { s.notified().await })
            .await
    });
    (addr, value, stop)
}

/// Like [`metrics_app`], with ±10% uniform noise on every scrape around the settable level.
async fn noisy_metrics_app() -> (String, Arc<Mutex<f64>>) {
    let level = Arc::new(Mutex::new(0.1_f64));
    let l = level.clone();
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let v = *l.lock().unwrap() * (0.9 + 0.2 * fastrand::f64());
            async move { format!("# TYPE app_latency_seconds gauge\napp_latency_seconds {v}\n") }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, level)
}

/// A watch whose only rule is `compare`, over 10s of pre-deployment history.
fn compare_watch(prom_url: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "15s"
interval = "250ms"

[[watch.check]]
name = "latency"
kind = "prometheus"
url = "{prom_url}"
query = "max(app_latency_seconds)"
compare = "mann-whitney"
baseline_window = "10s"
step = "250ms"
timeout = "200ms"
failure_limit = 3
"#
    )
}

/// A noisy app under a real Prometheus, once Prometheus holds the 10s of history the
/// comparison's pre-deployment window needs.
async fn compared_app(dir: &std::path::Path) -> (Prometheus, String, Arc<Mutex<f64>>) {
    let (app, level) = noisy_metrics_app().await;
    let (prom, prom_url) = prometheus_for(&app, dir).await;
    let c = reqwest::Client::new();
    let deadline = std::time::Instant::now() + T;
    while query(&c, &prom_url, "count_over_time(app_latency_seconds[10s])")
        .await
        .unwrap_or(0.0)
        < 45.0
    {
        assert!(std::time::Instant::now() < deadline, "no 10s of history");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (prom, prom_url, level)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_condemns_a_fifty_percent_latency_rise_seen_through_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url, level) = compared_app(dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &compare_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    *level.lock().unwrap() = 0.15;
    let w = d
        .wait_watch("shop", "condemned verdict", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    let cmp = &check["comparison"];
    assert_eq!(cmp["failed"], true, "{check:#}");
    assert!(cmp["p_value"].as_f64().unwrap() < 0.02, "{cmp:#}");
    assert!(
        cmp["n_pre"].as_u64().unwrap() >= 30,
        "10s at 250ms: {cmp:#}"
    );
    let ratio = cmp["mean_ratio"].as_f64().unwrap();
    assert!((1.3..1.7).contains(&ratio), "mean ×{ratio}");
    assert!(cmp["shift"].as_f64().unwrap() > 0.02, "{cmp:#}");
    assert!(
        check["limit_hit"]
            .as_str()
            .unwrap()
            .contains("mann-whitney: post > pre"),
        "{check:#}"
    );
    let created = octo.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_verifies_an_unchanged_noisy_latency_under_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url, _level) = compared_app(dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &compare_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    let w = d
        .wait_watch("shop", "verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    assert_eq!(check["failures"], 0, "{check:#}");
    assert_eq!(check["comparison"]["failed"], false, "{check:#}");
    assert!(check["comparison"]["n_post"].as_u64().unwrap() >= 10);
    assert_eq!(octo.post_attempts(), 0);
}
