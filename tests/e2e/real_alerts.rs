//! `kind = "alert"` against real servers on loopback: a Prometheus (Debian package
//! `prometheus`) evaluating a rule file over a fake app's gauge, and an Alertmanager (Debian
//! package `prometheus-alertmanager`) fed through its own API. An alert that fires after the
//! deployment rolls the release back once; one firing since before the deployment, a pending
//! one and a silenced one never condemn.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::octopus::FakeOctopus;
use crate::harness::*;
use crate::real_prometheus::{metrics_app, Prometheus};

const T: Duration = Duration::from_secs(60);

/// Polls `probe` until it returns `Some`, or panics with `what` after [`T`].
async fn until<F, Fut, R>(what: &str, mut probe: F) -> R
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<R>>,
{
    let deadline = std::time::Instant::now() + T;
    loop {
        if let Some(r) = probe().await {
            return r;
        }
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(c: &reqwest::Client, url: &str) -> Option<Value> {
    c.get(url).send().await.ok()?.json().await.ok()
}

/// A watch with one alert check; `check` holds the source, url and labels.
fn alert_watch(window: &str, check: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "{window}"
interval = "250ms"
fast_interval = "250ms"

[[watch.check]]
name = "pages"
kind = "alert"
timeout = "200ms"
{check}
"#
    )
}

/// The samples of the check of the last verdict.
fn samples(w: &Value) -> Vec<Value> {
    w["last_verdict"]["checks"][0]["samples"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_alert_firing_after_the_deployment_rolls_back_once() {
    let (app, latency) = metrics_app().await;
    let dir = tempfile::tempdir().unwrap();
    // AppSlow fires on the app's gauge (AppSlowForAnHour only goes pending); AlwaysOn fires
    // from the start, long before any deployment; Elsewhere is another service's.
    std::fs::write(
        dir.path().join("rules.yml"),
        r#"groups:
  - name: shop
    interval: 200ms
    rules:
      - alert: AppSlow
        expr: max(app_latency_seconds) > 1
        for: 0s
        labels: { service: shop, severity: page }
      - alert: AppSlowForAnHour
        expr: max(app_latency_seconds) > 1
        for: 1h
        labels: { service: shop, severity: page }
      - alert: AlwaysOn
        expr: vector(1)
        labels: { service: shop, severity: page }
      - alert: Elsewhere
        expr: max(app_latency_seconds) > 1
        labels: { service: cart, severity: page }
"#,
    )
    .unwrap();
    let port = free_port();
    let prom_url = format!("http://127.0.0.1:{port}");
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 200ms\n  evaluation_interval: 200ms\nrule_files: ['{}']\nscrape_configs:\n  - job_name: app\n    scrape_timeout: 150ms\n    static_configs:\n      - targets: ['{app}']\n",
            dir.path().join("rules.yml").display()
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
    // AlwaysOn is firing (and the app scraped) before anything is deployed.
    until("AlwaysOn firing and the app scraped", || async {
        let v = get_json(&c, &format!("{prom_url}/api/v1/alerts")).await?;
        let firing = v["data"]["alerts"]
            .as_array()?
            .iter()
            .any(|a| a["labels"]["alertname"] == "AlwaysOn" && a["state"] == "firing");
        let scraped = crate::real_prometheus::query(&c, &prom_url, "app_latency_seconds")
            .await
            .is_some();
        (firing && scraped).then_some(())
    })
    .await;

    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &alert_watch(
                "6s",
                &format!(
                    "source = \"prometheus\"\nurl = \"{prom_url}\"\nlabels = {{ service = \"shop\", severity = \"page\" }}"
                ),
            )),
    );
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    // Passing rounds first: AlwaysOn fired before the deployment, so it is not this release's.
    d.wait_watch("shop", "passes despite AlwaysOn", T, |w| {
        w["observation"]["checks"][0]["passes"].as_u64() >= Some(2)
    })
    .await;
    // The new release is slow: AppSlow fires after the deployment.
    *latency.lock().unwrap() = 5.0;
    let created = octo.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    // The rollback (r1) is observed while AppSlow still fires: it became active before the
    // rollback's deployment, so r1 is verified, and nothing is deployed again.
    let w = d
        .wait_watch("shop", "the rollback verified", T, |w| {
            w["last_verdict"]["release"] == r1.as_str()
                && w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(octo.post_attempts(), 1, "rolled back exactly once: {w:#}");
    let old = samples(&w);
    assert!(
        old.iter().all(|s| s["result"] == "pass"),
        "AppSlow firing since before the rollback does not condemn it: {w:#}"
    );
    assert!(
        old.iter().any(|s| s["note"]
            .as_str()
            .is_some_and(|n| n.contains("AppSlow") && n.contains("not this release's"))),
        "{w:#}"
    );

    // The condemned observation's evidence, through `backstop explain`.
    let (_, history) = d.get_json("/v1/history?watch=shop").await;
    let condemned = history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["release"] == r2.as_str())
        .cloned()
        .unwrap();
    let id = condemned["id"].as_str().unwrap();
    let (_, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    let check = &ev["checks"][0];
    assert_eq!(check["kind"], "alert");
    let hit = check["limit_hit"].as_str().unwrap();
    assert!(
        hit.contains("alert AppSlow{service=shop,severity=page} firing since")
            && hit.contains("after the deployment"),
        "{hit}"
    );
    let last = check["samples"].as_array().unwrap().last().unwrap();
    assert_eq!(last["result"], "fail");
    let names: Vec<&str> = last["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["AppSlow", "AlwaysOn", "AppSlowForAnHour"], "{last}");
    let note = last["note"].as_str().unwrap();
    assert!(
        note.contains("AlwaysOn{service=shop,severity=page} firing since before the deployment"),
        "{note}"
    );
    assert!(
        note.contains("AppSlowForAnHour{service=shop,severity=page} pending since"),
        "{note}"
    );
    assert!(
        !hit.contains("AppSlowForAnHour"),
        "pending is no failure: {hit}"
    );
    let (status, out, err) = run_cli(&["explain", id, "--url", &d.url], setup.dir.path());
    assert!(status.success(), "{err}");
    for needle in [
        "pages (alert http://127.0.0.1:",
        "prometheus alerts matching {service=\"shop\", severity=\"page\"}",
        "no matching alert firing since after the deployment",
        "FAIL alert AppSlow{service=shop,severity=page} firing since",
        "note: alert AlwaysOn{service=shop,severity=page} firing since before the deployment",
        "matching alerts at",
        "new       AppSlow{service=shop,severity=page}",
        "old       AlwaysOn{service=shop,severity=page}",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert!(!out.contains("Elsewhere"), "{out}");
}

/// A real Alertmanager on loopback (no cluster), with a receiver that sends nothing.
struct Alertmanager {
    _child: Prometheus,
    url: String,
}

async fn alertmanager(dir: &std::path::Path) -> Alertmanager {
    std::fs::write(
        dir.join("alertmanager.yml"),
        "route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n",
    )
    .unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let child = Prometheus(
        Command::new("prometheus-alertmanager")
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (Debian package) is installed by the test command"),
    );
    let c = reqwest::Client::new();
    until("alertmanager answers", || async {
        get_json(&c, &format!("{url}/api/v2/status"))
            .await
            .map(|_| ())
    })
    .await;
    Alertmanager { _child: child, url }
}

impl Alertmanager {
    /// Posts one alert, as Prometheus would, active since `starts_at`.
    async fn post(&self, name: &str, starts_at: chrono::DateTime<chrono::Utc>) {
        let status = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", self.url))
            .json(&json!([{
                "labels": { "alertname": name, "service": "shop", "severity": "page" },
                "startsAt": starts_at.to_rfc3339(),
            }]))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }

    /// Silences every alert named `name` for an hour.
    async fn silence(&self, name: &str) {
        let now = chrono::Utc::now();
        let status = reqwest::Client::new()
            .post(format!("{}/api/v2/silences", self.url))
            .json(&json!({
                "matchers": [{ "name": "alertname", "value": name, "isRegex": false, "isEqual": true }],
                "startsAt": now.to_rfc3339(),
                "endsAt": (now + chrono::Duration::hours(1)).to_rfc3339(),
                "createdBy": "backstop tests",
                "comment": "known, being worked on",
            }))
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.is_success(), "{status}");
    }

    /// The state Alertmanager reports for the alert named `name`, once it has it.
    async fn state(&self, name: &str) -> Option<String> {
        let v = get_json(
            &reqwest::Client::new(),
            &format!("{}/api/v2/alerts", self.url),
        )
        .await?;
        v.as_array()?
            .iter()
            .find(|a| a["labels"]["alertname"] == name)
            .and_then(|a| a["status"]["state"].as_str().map(String::from))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_alert_rolls_back_unless_silenced_or_older() {
    let dir = tempfile::tempdir().unwrap();
    let am = alertmanager(dir.path()).await;
    // Firing since a minute before the deployment: not the new release's.
    am.post("ShopOld", chrono::Utc::now() - chrono::Duration::minutes(1))
        .await;
    am.silence("ShopSilenced").await;

    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &alert_watch(
                "30s",
                &format!(
                    "source = \"alertmanager\"\nurl = \"{}\"\nlabels = {{ service = \"shop\" }}",
                    am.url
                ),
            )),
    );
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    d.wait_watch("shop", "observing", T, |w| {
        w["observation"]["checks"][0]["passes"].as_u64() >= Some(1)
    })
    .await;
    // A silenced alert fires after the deployment: seen, noted, ignored.
    am.post("ShopSilenced", chrono::Utc::now()).await;
    until("ShopSilenced suppressed", || async {
        (am.state("ShopSilenced").await.as_deref() == Some("suppressed")).then_some(())
    })
    .await;
    let w = d
        .wait_watch("shop", "the silenced alert noted", T, |w| {
            w["observation"]["checks"][0]["samples"]
                .as_array()
                .and_then(|s| s.last())
                .and_then(|s| s["note"].as_str())
                .is_some_and(|n| n.contains("ShopSilenced{service=shop,severity=page} silenced"))
        })
        .await;
    let check = &w["observation"]["checks"][0];
    assert_eq!(check["failures"], 0, "{w:#}");
    let note = check["samples"].as_array().unwrap().last().unwrap()["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("ShopOld{service=shop,severity=page} firing since before the deployment"),
        "{note}"
    );
    assert_eq!(octo.post_attempts(), 0);

    // An unsilenced alert fires after the deployment: rolled back, once.
    am.post("ShopDown", chrono::Utc::now()).await;
    let created = octo.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let w = d
        .wait_watch("shop", "condemned", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
                && w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let hit = w["last_verdict"]["checks"][0]["limit_hit"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        hit.contains("alert ShopDown{service=shop,severity=page} firing since"),
        "{hit}"
    );
    assert!(
        !hit.contains("ShopSilenced") && !hit.contains("ShopOld"),
        "{hit}"
    );
    // The rollback's observation sees ShopDown as older than itself: no second rollback.
    d.wait_watch("shop", "the rollback judged", T, |w| {
        w["observation"]["release"] == r1.as_str()
            && w["observation"]["checks"][0]["passes"].as_u64() >= Some(3)
    })
    .await;
    assert_eq!(octo.post_attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_server_that_does_not_answer_is_an_error_never_a_rollback() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let setup = Setup::new();
    let closed = format!("http://127.0.0.1:{}", free_port());
    setup.write(
        &(setup.base(&octo.url())
            + &alert_watch(
                "10s",
                &format!(
                    "source = \"alertmanager\"\nurl = \"{closed}\"\nlabels = {{ service = \"shop\" }}"
                ),
            )),
    );
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    let w = d
        .wait_watch("shop", "inconclusive", T, |w| {
            w["last_verdict"]["verdict"] == "inconclusive"
        })
        .await;
    let check = &w["last_verdict"]["checks"][0];
    assert_eq!(check["failures"], 0, "{w:#}");
    assert!(
        samples(&w).iter().all(
            |s| s["result"] == "error" && s["reason"].as_str().unwrap().contains("unreachable")
        ),
        "{w:#}"
    );
    assert_eq!(octo.post_attempts(), 0);
}
