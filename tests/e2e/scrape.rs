//! `kind = "scrape"`: backstop reads the app's `/metrics` itself. An error-ratio spike and a
//! latency regression (a summary's p90, or a histogram's p90 by `mode = "quantile"`) against
//! backstop's own pre-deployment baseline condemn a release; a counter reset (the app
//! restarting) in the middle of an observation does not, and neither does a failing ratio on
//! a service too quiet for `min_traffic`; backstop restarting or reloading keeps the baseline
//! it scraped before.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State as AxState;
use axum::routing::get;
use axum::Router;

use crate::common::octopus::FakeOctopus;
use crate::common::wait_until;
use crate::harness::*;

const T: Duration = Duration::from_secs(20);

/// A counter that grows at `per_sec` in real time, so rates do not depend on when backstop
/// happens to scrape.
struct Counter {
    base: f64,
    per_sec: f64,
    since: Instant,
}

impl Counter {
    fn new(per_sec: f64) -> Self {
        Counter {
            base: 0.0,
            per_sec,
            since: Instant::now(),
        }
    }

    fn value(&self) -> f64 {
        self.base + self.per_sec * self.since.elapsed().as_secs_f64()
    }

    fn set_rate(&mut self, per_sec: f64) {
        self.base = self.value();
        self.since = Instant::now();
        self.per_sec = per_sec;
    }

    /// The process restarted: counting starts again from zero.
    fn reset(&mut self) {
        self.base = 0.0;
        self.since = Instant::now();
    }
}

struct State {
    ok: Counter,
    errors: Counter,
    /// Whether the `code="500"` series is exported (client libraries create a labelled
    /// series on its first increment, so it appears late).
    errors_exported: bool,
    /// Set by a restart: the 500 series comes back one scrape after the 200 one.
    errors_back_next_scrape: bool,
    p90_latency: f64,
    latency: Histogram,
    hits: usize,
}

/// Finite bucket bounds of the fake latency histogram.
const LE: [f64; 5] = [0.05, 0.1, 0.25, 0.5, 1.0];

/// The `http_request_latency_seconds` histogram: `per_sec` requests a second, each taking
/// `latency` seconds. One clock for every bucket, so buckets that count the same requests
/// hold exactly the same number.
struct Histogram {
    /// Cumulative counts per bound of [`LE`] then `+Inf`, at `since`.
    base: Vec<f64>,
    since: Instant,
    per_sec: f64,
    latency: f64,
}

impl Histogram {
    fn new(per_sec: f64, latency: f64) -> Self {
        Histogram {
            base: vec![0.0; LE.len() + 1],
            since: Instant::now(),
            per_sec,
            latency,
        }
    }

    fn counts(&self) -> Vec<f64> {
        let grown = self.per_sec * self.since.elapsed().as_secs_f64();
        let bounds = LE.iter().copied().chain([f64::INFINITY]);
        self.base
            .iter()
            .zip(bounds)
            .map(|(b, le)| if self.latency <= le { b + grown } else { *b })
            .collect()
    }

    fn set_latency(&mut self, latency: f64) {
        self.base = self.counts();
        self.since = Instant::now();
        self.latency = latency;
    }

    fn reset(&mut self) {
        self.base = vec![0.0; LE.len() + 1];
        self.since = Instant::now();
    }
}

/// The app's `/metrics` endpoint, driven by the test (the slo tests count its requests too).
#[derive(Clone)]
pub(crate) struct FakeMetrics {
    pub(crate) url: String,
    state: Arc<Mutex<State>>,
}

impl FakeMetrics {
    pub(crate) async fn start(ok_per_sec: f64, errors_per_sec: f64, errors_exported: bool) -> Self {
        let state = Arc::new(Mutex::new(State {
            ok: Counter::new(ok_per_sec),
            errors: Counter::new(errors_per_sec),
            errors_exported,
            errors_back_next_scrape: false,
            p90_latency: 0.1,
            latency: Histogram::new(ok_per_sec + errors_per_sec, 0.1),
            hits: 0,
        }));
        let router = Router::new()
            .route("/metrics", get(metrics))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/metrics", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        FakeMetrics { url, state }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn hits(&self) -> usize {
        self.lock().hits
    }

    pub(crate) fn set_error_rate(&self, per_sec: f64) {
        let mut s = self.lock();
        s.errors.set_rate(per_sec);
        s.errors_exported = true;
    }

    /// Every request now takes `v` seconds: the summary's p90 and the histogram follow.
    fn set_latency(&self, v: f64) {
        let mut s = self.lock();
        s.p90_latency = v;
        s.latency.set_latency(v);
    }

    /// The app restarts: every counter starts from zero, the 500 series reappears late.
    fn restart(&self) {
        let mut s = self.lock();
        s.ok.reset();
        s.errors.reset();
        s.latency.reset();
        s.errors_exported = false;
        s.errors_back_next_scrape = true;
    }

    /// Waits until backstop has scraped `n` more times from now.
    pub(crate) async fn wait_scrapes(&self, n: usize) {
        let target = self.hits() + n;
        wait_until(&format!("{n} more scrapes"), T, || self.hits() >= target).await;
    }
}

async fn metrics(AxState(state): AxState<Arc<Mutex<State>>>) -> String {
    let mut s = state.lock().unwrap();
    s.hits += 1;
    let mut out = String::from(
        "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n",
    );
    out += &format!(
        "http_requests_total{{code=\"200\",method=\"GET\"}} {}\n",
        s.ok.value()
    );
    if s.errors_exported {
        out += &format!(
            "http_requests_total{{code=\"500\",method=\"GET\"}} {}\n",
            s.errors.value()
        );
    }
    if s.errors_back_next_scrape {
        s.errors_back_next_scrape = false;
        s.errors_exported = true;
    }
    out += &format!(
        "# TYPE http_request_duration_seconds summary\n\
         http_request_duration_seconds{{quantile=\"0.9\"}} {}\n\
         http_request_duration_seconds_sum 12.5\nhttp_request_duration_seconds_count 125\n",
        s.p90_latency
    );
    out += "# TYPE http_request_latency_seconds histogram\n";
    for (i, count) in s.latency.counts().into_iter().enumerate() {
        let le = LE.get(i).map_or("+Inf".to_string(), |le| le.to_string());
        out += &format!("http_request_latency_seconds_bucket{{le=\"{le}\"}} {count}\n");
    }
    out
}

/// A watch with the given scrape checks (TOML bodies, `[[watch.check]]` headers included).
fn scrape_watch(warmup: &str, window: &str, checks: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "{warmup}"
window = "{window}"
interval = "100ms"
{checks}
"#
    )
}

fn error_ratio_check(url: &str) -> String {
    format!(
        r#"
[[watch.check]]
name = "errors"
kind = "scrape"
url = "{url}"
timeout = "80ms"
mode = "ratio"
numerator = {{ metric = "http_requests_total", labels = {{ code = "500" }} }}
denominator = {{ metric = "http_requests_total" }}
rate_window = "300ms"
max = 0.1
failure_limit = 3
"#
    )
}

/// Announces a deployment that started now, so the baseline window ends before anything the
/// test changes next.
pub(crate) async fn announce_now(d: &Daemon, release: &str) {
    let status = d
        .announce_json(serde_json::json!({
            "watch": "shop",
            "release": release,
            "deployed_at": chrono::Utc::now(),
        }))
        .await;
    assert_eq!(status, 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_ratio_spike_condemns_the_release_and_rolls_back() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    // No 5xx yet: the 500 series does not exist until the release breaks.
    let app = FakeMetrics::start(100.0, 0.0, false).await;
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url()) + &scrape_watch("500ms", "1500ms", &error_ratio_check(&app.url))),
    );
    let d = Daemon::start(&setup).await;
    app.wait_scrapes(3).await;

    announce_now(&d, &r2).await;
    app.set_error_rate(50.0);
    let created = octo.wait_for_created(1, T).await;
    app.set_error_rate(0.0);
    assert_eq!(created[0]["ReleaseId"], r1.as_str());

    let w = d
        .wait_watch("shop", "condemned verdict recorded", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    assert!(
        check["limit_hit"]
            .as_str()
            .unwrap()
            .contains("failure_limit 3"),
        "{check}"
    );
    let last = check["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "fail");
    // Over the 10% limit, and at most 50 errors a second out of 150 requests a second.
    let ratio = last["value"].as_f64().unwrap();
    assert!(ratio > 0.1 && ratio < 0.4, "{last}");

    let id = w["last_verdict"]["observation_id"].as_str().unwrap();
    let (status, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(ev["checks"][0]["kind"], "scrape");
    assert_eq!(ev["checks"][0]["url"], app.url.as_str());
    assert_eq!(
        ev["checks"][0]["query"],
        "sum(increase(http_requests_total{code=\"500\"}[300ms])) / sum(increase(http_requests_total[300ms]))"
    );

    // The rolled-back release has no errors: it is verified.
    let w = d
        .wait_watch("shop", "rollback verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
                && w["last_verdict"]["release"] == r1.as_str()
        })
        .await;
    assert_eq!(w["last_good_release"], r1.as_str());
    assert_eq!(octo.created_deployments().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_doubling_against_the_pre_deployment_baseline_condemns() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let app = FakeMetrics::start(100.0, 0.0, false).await;
    let setup = Setup::new();
    let check = format!(
        r#"
[[watch.check]]
name = "latency"
kind = "scrape"
url = "{}"
timeout = "80ms"
metric = "http_request_duration_seconds"
labels = {{ quantile = "0.9" }}
baseline_window = "10m"
max_ratio = 2.0
failure_limit = 3
"#,
        app.url
    );
    setup.write(&(setup.base(&octo.url()) + &scrape_watch("0s", "3s", &check)));
    let d = Daemon::start(&setup).await;
    // The baseline is backstop's own: it must have scraped before the deployment.
    app.wait_scrapes(5).await;

    announce_now(&d, &r2).await;
    app.set_latency(0.3);
    let created = octo.wait_for_created(1, T).await;
    app.set_latency(0.1);
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let comments = created[0]["Comments"].as_str().unwrap();
    assert!(comments.contains("latency"), "{comments}");

    let w = d
        .wait_watch("shop", "condemned verdict recorded", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    let baseline = check["baseline"].as_f64().unwrap();
    assert!((baseline - 0.1).abs() < 1e-9, "{check}");
    assert!(
        check["limit_hit"]
            .as_str()
            .unwrap()
            .contains("value 0.3 > max_ratio 2 x baseline 0.1 = 0.2"),
        "{check}"
    );
    let id = w["last_verdict"]["observation_id"].as_str().unwrap();
    let (_, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    assert_eq!(
        ev["checks"][0]["query"],
        "sum(http_request_duration_seconds{quantile=\"0.9\"})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_reset_mid_observation_does_not_condemn_a_healthy_release() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    // A steady 5% error ratio, under the 10% limit.
    let app = FakeMetrics::start(190.0, 10.0, true).await;
    let setup = Setup::new();
    let throughput = format!(
        r#"
[[watch.check]]
name = "throughput"
kind = "scrape"
url = "{}"
timeout = "80ms"
mode = "rate"
metric = "http_requests_total"
rate_window = "500ms"
baseline_window = "10m"
min_ratio = 0.5
failure_limit = 3
"#,
        app.url
    );
    setup.write(
        &(setup.base(&octo.url())
            + &scrape_watch("0s", "2s", &(error_ratio_check(&app.url) + &throughput))),
    );
    let d = Daemon::start(&setup).await;
    app.wait_scrapes(6).await;

    announce_now(&d, &r2).await;
    d.wait_watch("shop", "a few rounds judged", T, |w| {
        w["observation"]["rounds"].as_u64() >= Some(4)
    })
    .await;
    // The app restarts: counters drop to zero and the 500 series comes back a scrape late.
    // Read naively, the drop is a negative rate (throughput "collapsed") for a whole window.
    app.restart();
    app.wait_scrapes(5).await;
    let w = d
        .wait_watch("shop", "release verified", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
        })
        .await;
    assert_eq!(w["last_verdict"]["verdict"], "verified", "{w}");
    assert_eq!(w["last_good_release"], r2.as_str());
    assert_eq!(octo.post_attempts(), 0);
    for check in w["last_verdict"]["checks"].as_array().unwrap() {
        assert_eq!(check["failures"], 0, "{check}");
        assert!(check["passes"].as_u64().unwrap() >= 10, "{check}");
    }
    let throughput = &w["last_verdict"]["checks"][1];
    let baseline = throughput["baseline"].as_f64().unwrap();
    assert!((baseline - 200.0).abs() < 40.0, "{throughput}");
    for s in throughput["samples"].as_array().unwrap() {
        if let Some(v) = s["value"].as_f64() {
            assert!(v > 100.0, "throughput dipped at the reset: {throughput}");
        }
    }
}

/// A latency gauge and a throughput rate, both against a baseline of a few seconds.
fn baseline_checks(url: &str) -> String {
    format!(
        r#"
[[watch.check]]
name = "latency"
kind = "scrape"
url = "{url}"
timeout = "80ms"
metric = "http_request_duration_seconds"
labels = {{ quantile = "0.9" }}
baseline_window = "5s"
max_ratio = 2.0
failure_limit = 3

[[watch.check]]
name = "throughput"
kind = "scrape"
url = "{url}"
timeout = "80ms"
mode = "rate"
metric = "http_requests_total"
rate_window = "500ms"
baseline_window = "5s"
min_ratio = 0.5
failure_limit = 3
"#
    )
}

/// Announces a deployment that started at `at` (before backstop's latest start), waits for
/// two judged rounds and returns the checks' baselines.
async fn baselines_of_deployment_at(
    d: &Daemon,
    release: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> (Option<f64>, Option<f64>) {
    let status = d
        .announce_json(serde_json::json!({
            "watch": "shop", "release": release, "deployed_at": at,
        }))
        .await;
    assert_eq!(status, 202);
    let w = d
        .wait_watch("shop", "two rounds judged", T, |w| {
            w["observation"]["rounds"].as_u64() >= Some(2)
        })
        .await;
    let checks = &w["observation"]["checks"];
    assert_eq!(checks[0]["name"], "latency", "{w}");
    (
        checks[0]["baseline"].as_f64(),
        checks[1]["baseline"].as_f64(),
    )
}

fn assert_baselines(b: (Option<f64>, Option<f64>), d: &Daemon) {
    let (Some(latency), Some(throughput)) = b else {
        panic!(
            "no baseline from before the restart or reload: {b:?}\n{}",
            d.logs()
        );
    };
    assert!((latency - 0.1).abs() < 1e-9, "{latency}");
    assert!((throughput - 200.0).abs() < 40.0, "{throughput}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_the_scrape_baseline() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeMetrics::start(190.0, 10.0, true).await;
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &scrape_watch("0s", "2s", &baseline_checks(&app.url))));
    let mut d = Daemon::start(&setup).await;
    app.wait_scrapes(15).await;
    // The deployment started now, while backstop goes down: it learns of it after its
    // restart, and only the previous process scraped the window before it.
    let deployed_at = chrono::Utc::now();
    assert!(d.stop().await.success());

    let d = Daemon::start(&setup).await;
    let b = baselines_of_deployment_at(&d, &r2, deployed_at).await;
    assert_baselines(b, &d);
    // Rates after the restart start from its first scrape: throughput is judged healthy.
    let w = d
        .wait_watch("shop", "release verified", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
        })
        .await;
    assert_eq!(w["last_verdict"]["verdict"], "verified", "{w}");
    let throughput = &w["last_verdict"]["checks"][1];
    assert!(throughput["passes"].as_u64().unwrap() >= 3, "{throughput}");
    assert_eq!(throughput["failures"], 0, "{throughput}");
    assert_eq!(octo.post_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_the_watch_keeps_the_scrape_baseline() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeMetrics::start(190.0, 10.0, true).await;
    let setup = Setup::new();
    let config = |window: &str| {
        setup.base(&octo.url()) + &scrape_watch("0s", window, &baseline_checks(&app.url))
    };
    setup.write(&config("2s"));
    let d = Daemon::start(&setup).await;
    app.wait_scrapes(15).await;
    // The watch changes (its collectors restart); the deployment started just before.
    let deployed_at = chrono::Utc::now();
    setup.write(&config("3s"));
    d.signal("HUP");
    crate::common::wait_until_async("reload applied", T, || async {
        d.metrics()
            .await
            .contains(r#"backstop_config_reloads_total{result="success"} 1"#)
    })
    .await;
    let b = baselines_of_deployment_at(&d, &r2, deployed_at).await;
    assert_baselines(b, &d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_p90_jump_in_a_latency_histogram_condemns_the_release_once() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let app = FakeMetrics::start(100.0, 0.0, false).await;
    let setup = Setup::new();
    let check = format!(
        r#"
[[watch.check]]
name = "p90"
kind = "scrape"
url = "{}"
timeout = "80ms"
mode = "quantile"
quantile = 0.9
metric = "http_request_latency_seconds_bucket"
rate_window = "300ms"
baseline_window = "10m"
max_ratio = 2.0
failure_limit = 3
"#,
        app.url
    );
    setup.write(&(setup.base(&octo.url()) + &scrape_watch("0s", "3s", &check)));
    let d = Daemon::start(&setup).await;
    // The baseline is backstop's own: it must have scraped before the deployment.
    app.wait_scrapes(5).await;

    announce_now(&d, &r2).await;
    // Every request now takes 0.3s: the p90 moves from the (0.05, 0.1] bucket to (0.25, 0.5].
    app.set_latency(0.3);
    let created = octo.wait_for_created(1, T).await;
    app.set_latency(0.1);
    assert_eq!(created[0]["ReleaseId"], r1.as_str());

    let w = d
        .wait_watch("shop", "condemned verdict recorded", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    // All requests in (0.05, 0.1]: p90 interpolates to 0.05 + 0.05 x 0.9.
    let baseline = check["baseline"].as_f64().unwrap();
    assert!((baseline - 0.095).abs() < 1e-9, "{check}");
    assert!(
        check["limit_hit"]
            .as_str()
            .unwrap()
            .contains("> max_ratio 2 x baseline 0.095 = 0.19"),
        "{check}"
    );
    let last = check["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "fail");
    // At most 0.25 + 0.25 x 0.9, when the whole window is the slow release's.
    let p90 = last["value"].as_f64().unwrap();
    assert!(p90 > 0.19 && p90 <= 0.475 + 1e-9, "{last}");
    let id = w["last_verdict"]["observation_id"].as_str().unwrap();
    let (_, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    assert_eq!(
        ev["checks"][0]["query"],
        "histogram_quantile(0.9, sum by (le) (rate(http_request_latency_seconds_bucket[300ms])))"
    );

    // The rollback is fast again: verified, and the only deployment backstop made.
    let w = d
        .wait_watch("shop", "rollback verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
                && w["last_verdict"]["release"] == r1.as_str()
        })
        .await;
    assert_eq!(w["last_good_release"], r1.as_str());
    let passes = &w["last_verdict"]["checks"][0]["samples"];
    assert!(
        passes
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["value"].as_f64())
            .any(|v| (v - 0.095).abs() < 1e-9),
        "{passes}"
    );
    assert_eq!(octo.created_deployments().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_service_below_min_traffic_is_neither_condemned_nor_verified() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    // Half the requests fail, far over the 10% limit, on 0.4 requests a second.
    let app = FakeMetrics::start(0.2, 0.2, true).await;
    let setup = Setup::new();
    let check = error_ratio_check(&app.url)
        + "min_traffic = { metric = \"http_requests_total\", labels = { method = \"GET\" }, min = 1 }\n";
    setup.write(&(setup.base(&octo.url()) + &scrape_watch("300ms", "1500ms", &check)));
    let d = Daemon::start(&setup).await;
    app.wait_scrapes(3).await;

    announce_now(&d, &r2).await;
    let w = d
        .wait_watch("shop", "a verdict on the quiet release", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
        })
        .await;
    let v = &w["last_verdict"];
    assert_eq!(v["verdict"], "inconclusive", "{w:#}");
    assert!(
        v["summary"].as_str().unwrap().contains("min_samples"),
        "{w:#}"
    );
    let check = &v["checks"][0];
    assert_eq!(check["failures"], 0, "{check}");
    let samples = check["samples"].as_array().unwrap();
    let quiet: Vec<_> = samples
        .iter()
        .filter(|s| s["result"] == "no_data")
        .collect();
    assert!(quiet.len() >= samples.len() / 2, "{check}");
    for s in quiet {
        // The ratio was measured (and over the limit); the traffic made it no data.
        assert!(s["value"].as_f64().unwrap() > 0.1, "{s}");
        let reason = s["reason"].as_str().unwrap();
        assert!(reason.contains("req/s, need 1 (min_traffic)"), "{s}");
        let rate: f64 = reason.split(' ').next().unwrap().parse().unwrap();
        assert!(rate > 0.2 && rate < 0.6, "{s}");
    }
    assert_ne!(w["last_good_release"], r2.as_str());
    assert_eq!(octo.post_attempts(), 0);
}

/// `compare = "mann-whitney"` on a scrape check: backstop's own scrapes before the deployment
/// against those after it.
fn compare_check(url: &str) -> String {
    format!(
        r#"
[[watch.check]]
name = "latency"
kind = "scrape"
url = "{url}"
timeout = "80ms"
metric = "http_request_duration_seconds"
labels = {{ quantile = "0.9" }}
compare = "mann-whitney"
baseline_window = "10m"
compare_min_samples = 5
failure_limit = 3
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_on_a_scrape_check_condemns_a_tripled_latency_and_keeps_an_unchanged_one() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let r3 = octo.add_release("Projects-1", "1.2.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let app = FakeMetrics::start(100.0, 0.0, false).await;
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &scrape_watch("0s", "3s", &compare_check(&app.url))));
    let d = Daemon::start(&setup).await;
    // The pre set is backstop's own scrapes: let it scrape before the deployment.
    app.wait_scrapes(8).await;

    // Unchanged: every post sample equals every pre one; the test is not significant.
    announce_now(&d, &r2).await;
    let w = d
        .wait_watch("shop", "the unchanged release verified", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
        })
        .await;
    assert_eq!(w["last_verdict"]["verdict"], "verified", "{w:#}");

    // Tripled: condemned by the comparison, rolled back once.
    announce_now(&d, &r3).await;
    app.set_latency(0.3);
    let created = octo.wait_for_created(1, T).await;
    app.set_latency(0.1);
    assert_eq!(created[0]["ReleaseId"], r2.as_str());
    let w = d
        .wait_watch("shop", "condemned verdict recorded", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let hit = w["last_verdict"]["checks"][0]["limit_hit"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(hit.contains("mann-whitney"), "{w:#}");
    assert_eq!(octo.created_deployments().len(), 1);
}
