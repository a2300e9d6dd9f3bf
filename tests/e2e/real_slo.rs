//! `kind = "slo"` against a real Prometheus (Debian package `prometheus`) scraping a fake app
//! whose request counters grow on every scrape: an error ratio that jumps after the deployment
//! burns the budget too fast and is rolled back, with the burn rates and windows in the
//! evidence and `backstop explain`; a healthy release after a bad one is verified, because the
//! windows never reach before the deployment.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::routing::get;
use axum::Router;

use crate::common::octopus::FakeOctopus;
use crate::harness::*;
use crate::real_prometheus::Prometheus;

const T: Duration = Duration::from_secs(60);

/// Requests served per scrape; `errors` more, with code 500, are added per scrape.
const OK_PER_SCRAPE: u64 = 1000;

/// An app whose `http_requests_total` counters grow on every scrape: 1000 good requests and
/// the settable number of 500s.
async fn counting_app() -> (String, Arc<AtomicU64>) {
    let errors = Arc::new(AtomicU64::new(0));
    let e = errors.clone();
    let counts = Arc::new(std::sync::Mutex::new((0u64, 0u64)));
    let router = Router::new().route(
        "/metrics",
        get(move || {
            let (ok, bad) = {
                let mut c = counts.lock().unwrap();
                c.0 += OK_PER_SCRAPE;
                c.1 += e.load(Ordering::SeqCst);
                *c
            };
            async move {
                format!(
                    "# TYPE http_requests_total counter\nhttp_requests_total{{code=\"200\"}} {ok}\nhttp_requests_total{{code=\"500\"}} {bad}\n"
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, errors)
}

/// A real Prometheus scraping `app` every 200ms, once it holds a few seconds of counters.
async fn prometheus_for(app: &str, dir: &std::path::Path) -> (Prometheus, String) {
    crate::real_prometheus::prometheus_scraping(
        app,
        dir,
        "count_over_time(http_requests_total{code=\"200\"}[5s])",
    )
    .await
}

fn slo_watch(prom_url: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "6s"
interval = "250ms"

[[watch.check]]
name = "availability"
kind = "slo"
url = "{prom_url}"
objective = 0.999
good = 'sum(increase(http_requests_total{{code!~"5.."}}[$window]))'
total = 'sum(increase(http_requests_total[$window]))'
timeout = "200ms"
failure_limit = 3
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_ratio_jump_burns_the_budget_and_is_rolled_back() {
    let (app, errors) = counting_app().await;
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url) = prometheus_for(&app, dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &slo_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    // The new release fails 5% of requests: 50x the 0.1% budget.
    errors.store(50, Ordering::SeqCst);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let created = octo.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let w = d
        .wait_watch("shop", "condemned verdict", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    let hit = check["limit_hit"].as_str().unwrap();
    assert!(
        hit.contains("burning the error budget")
            && hit.contains("too fast (allowed 14.4x)")
            && hit.contains("objective 99.9%"),
        "{hit}"
    );
    let last = check["samples"].as_array().unwrap().last().unwrap();
    assert_eq!(last["result"], "fail", "{last}");
    let burn = last["value"].as_f64().unwrap();
    assert!((40.0..60.0).contains(&burn), "about 47.6x: {last}");
    assert!(
        last["note"].as_str().unwrap().starts_with("burn "),
        "{last}"
    );

    // The evidence, through `backstop explain`.
    let (_, history) = d.get_json("/v1/history?watch=shop").await;
    let condemned = history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["release"] == r2.as_str())
        .cloned()
        .unwrap();
    let id = condemned["id"].as_str().unwrap();
    let (status, out, err) = run_cli(&["explain", id, "--url", &d.url], setup.dir.path());
    assert!(status.success(), "{err}");
    for needle in [
        "availability (slo http://127.0.0.1:",
        "objective 99.9%, good sum(increase(http_requests_total{code!~\"5..\"}[$window]))",
        "long window up to 1h",
        "error-budget burn < 14.4x over both windows",
        "FAIL burning the error budget",
        "note: burn ",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_release_after_a_bad_one_is_verified() {
    // The previous release failed 10% of requests; the new one none. The windows start at the
    // deployment, so the old errors do not count against it.
    let (app, errors) = counting_app().await;
    errors.store(100, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url) = prometheus_for(&app, dir.path()).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &slo_watch(&prom_url)));
    let d = Daemon::start(&setup).await;
    errors.store(0, Ordering::SeqCst);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let w = d
        .wait_watch("shop", "a verdict", T, |w| !w["last_verdict"].is_null())
        .await;
    assert_eq!(w["last_verdict"]["verdict"], "verified", "{w:#}");
    let check = &w["last_verdict"]["checks"][0];
    assert_eq!(check["failures"], 0, "{w:#}");
    assert!(check["passes"].as_u64() >= Some(5), "{w:#}");
    assert_eq!(octo.post_attempts(), 0);
}
