//! `backstop backtest` end to end: a real Prometheus holding a known history (written as
//! OpenMetrics and backfilled with `promtool tsdb create-blocks-from openmetrics`), the fake
//! Octopus listing the deployments of that history, and the real binary replaying them.
//!
//! The last five hours, one deployment an hour: 1.0.0 (before the range), 1.1.0 good (an
//! alert firing since before it is not its fault), 1.2.0 bad (errors), 1.3.0 whose error
//! series is missing, 1.4.0 whose deployment failed but whose service is healthy; and half an
//! hour ago 1.5.0, which set off an alert and nothing else.

use std::fmt::Write;
use std::process::ExitStatus;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::octopus::FakeOctopus;
use crate::harness::*;
use crate::real_prometheus::{start_prometheus, Prometheus};

const HOUR: i64 = 3600;

/// The error ratio at `t` seconds from now, or none (the series is missing then).
fn error_ratio(t: i64) -> Option<f64> {
    let d3 = -3 * HOUR;
    let d4 = -2 * HOUR;
    if (d3..d3 + 1800).contains(&t) {
        Some(0.3)
    } else if (d4 - 600..d4 + 1800).contains(&t) {
        None
    } else {
        Some(0.01)
    }
}

/// The history as OpenMetrics: the error ratio every 15s, and `ALERTS` series for an alert
/// firing since before 1.1.0, one that 1.2.0 set off 3 minutes in and one that 1.5.0 set off
/// 2 minutes in.
fn history(now: i64) -> String {
    let mut om = String::from("# TYPE shop_error_ratio gauge\n");
    for t in (-6 * HOUR..-120).step_by(15) {
        if let Some(v) = error_ratio(t) {
            let _ = writeln!(om, "shop_error_ratio{{service=\"shop\"}} {v} {}", now + t);
        }
    }
    om.push_str("# TYPE ALERTS gauge\n");
    let alert = |om: &mut String, name: &str, from: i64, to: i64| {
        for t in (from..to).step_by(15) {
            let _ = writeln!(
                om,
                "ALERTS{{alertname=\"{name}\",alertstate=\"firing\",service=\"shop\",severity=\"page\"}} 1 {}",
                now + t
            );
        }
    };
    alert(&mut om, "ShopDiskFull", -4 * HOUR - 1800, -4 * HOUR + 1200);
    alert(&mut om, "ShopErrors", -3 * HOUR + 180, -3 * HOUR + 1800);
    alert(&mut om, "ShopLatency", -1800 + 120, -600);
    om.push_str("# EOF\n");
    om
}

/// A real Prometheus whose TSDB holds [`history`].
async fn prometheus_with_history(dir: &std::path::Path, now: i64) -> (Prometheus, String) {
    let file = dir.join("history.om");
    std::fs::write(&file, history(now)).unwrap();
    let out = std::process::Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.join("data"))
        .output()
        .expect("promtool (Debian package prometheus) is installed by the test command");
    assert!(
        out.status.success(),
        "promtool backfill failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start_prometheus(dir, "global:\n  scrape_interval: 15s\n").await
}

fn watch(prom_url: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "1m"
window = "10m"
interval = "30s"

[[watch.check]]
name = "health"
kind = "http"
url = "http://127.0.0.1:1/health"
expect_status = [200]

[[watch.check]]
name = "errors"
kind = "prometheus"
url = "{prom_url}"
query = "max(shop_error_ratio)"
max = 0.05
failure_limit = 3

[[watch.check]]
name = "pages"
kind = "alert"
source = "prometheus"
url = "{prom_url}"
labels = {{ service = "shop", severity = "page" }}
"#
    )
}

/// `backstop backtest` with `args`, off the runtime (the fakes keep serving meanwhile).
async fn backtest(setup: &Setup, args: &[&str]) -> (ExitStatus, String, String) {
    let mut all = vec![
        "backtest".to_string(),
        "--config".into(),
        setup.config_path().display().to_string(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let cwd = setup.dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = all.iter().map(String::as_str).collect();
        run_cli(&args, &cwd)
    })
    .await
    .unwrap()
}

fn seconds(v: &Value) -> f64 {
    v["time_to_verdict_seconds"].as_f64().unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_replays_past_deployments_against_real_prometheus_history() {
    let now = Utc::now().timestamp();
    let dir = tempfile::tempdir().unwrap();
    let (_prom, prom_url) = prometheus_with_history(dir.path(), now).await;
    let octo = FakeOctopus::start(API_KEY).await;
    let ago = |h: i64| DateTime::<Utc>::from_timestamp(now - h * HOUR, 0).unwrap();
    let mut releases = Vec::new();
    let deployed = [
        ("Success", ago(5)),
        ("Success", ago(4)),
        ("Success", ago(3)),
        ("Success", ago(2)),
        ("Failed", ago(1)),
        ("Success", ago(1) + chrono::Duration::minutes(30)),
    ];
    for (i, (state, at)) in deployed.into_iter().enumerate() {
        let r = octo.add_release("Projects-1", &format!("1.{i}.0"));
        octo.add_deployment_at("Projects-1", "Environments-1", &r, state, at);
        releases.push(r);
    }
    // Another environment's deployment is not the watch's.
    octo.add_deployment_at(
        "Projects-1",
        "Environments-2",
        &releases[2],
        "Success",
        ago(1),
    );
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &watch(&prom_url)));

    let from = ago(4) - chrono::Duration::minutes(30);
    let (status, out, err) = backtest(
        &setup,
        &["--watch", "shop", "--from", &from.to_rfc3339(), "--json"],
    )
    .await;
    assert!(status.success(), "backtest failed: {err}\n{out}");
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    let deps = doc["deployments"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = deps
        .iter()
        .map(|d| {
            (
                d["version"].as_str().unwrap_or("?").to_string(),
                d["verdict"].as_str().unwrap_or("?").to_string(),
                d["action"]["kind"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect();
    let expected = [
        ("1.1.0", "verified", "none"),
        ("1.2.0", "condemned", "rollback"),
        ("1.3.0", "inconclusive", "none"),
        ("1.4.0", "verified", "none"),
        ("1.5.0", "condemned", "rollback"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(summary, expected, "{doc:#}");

    let (good, bad, blind, failed, alerted) = (&deps[0], &deps[1], &deps[2], &deps[3], &deps[4]);
    // Verified at the end of the window: warmup 1m + window 10m.
    assert!((655.0..=700.0).contains(&seconds(good)), "{good:#}");
    // Condemned on the third failure: 1m warmup, then every 6s (fast cadence).
    assert!((60.0..=100.0).contains(&seconds(bad)), "{bad:#}");
    assert_eq!(bad["action"]["target"], releases[1].as_str(), "{bad:#}");
    assert_eq!(bad["action"]["target_version"], "1.1.0");
    assert!(
        bad["summary"].as_str().unwrap().contains("errors"),
        "{bad:#}"
    );
    assert!(
        blind["summary"].as_str().unwrap().contains("no data"),
        "{blind:#}"
    );
    // 1.2.0 was condemned: backstop would never roll back to it.
    assert_eq!(blind["previous_release"], releases[1].as_str(), "{blind:#}");
    assert_eq!(failed["task_state"], "Failed");
    assert_eq!(failed["previous_release"], releases[3].as_str());
    // Condemned by the alert alone, 2 minutes in; a failed deployment is no rollback target.
    let why = alerted["summary"].as_str().unwrap();
    assert!(
        why.contains("pages") && why.contains("ShopLatency"),
        "{alerted:#}"
    );
    assert!((120.0..=160.0).contains(&seconds(alerted)), "{alerted:#}");
    assert_eq!(
        alerted["action"]["target"],
        releases[3].as_str(),
        "{alerted:#}"
    );
    assert_eq!(
        deps[0]["deployed_at"],
        ago(4).to_rfc3339().replace("+00:00", "Z")
    );

    let s = &doc["summary"];
    assert_eq!(s["deployments"], 5);
    assert_eq!(s["rolled_back"], 2);
    assert_eq!(
        (s["verified"].clone(), s["condemned"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(doc["skipped_checks"][0]["name"], "health");
    let replayed: Vec<&str> = doc["replayed_checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(replayed, ["errors", "pages"]);
    assert_eq!(octo.write_attempts(), 0, "backtest is read-only");

    // The same as text, the range given as a duration.
    let (status, text, err) = backtest(&setup, &["--watch", "shop", "--from", "270m"]).await;
    if std::env::var_os("BACKSTOP_SHOW_BACKTEST").is_some() {
        eprintln!("{text}");
    }
    assert!(status.success(), "{err}");
    for needle in [
        "backtest of watch shop (octo Projects-1 in Environments-1)",
        "replayed: errors (prometheus), pages (alert)",
        "skipped:  health (http): needs the live service;",
        "1.2.0 (Releases-3)",
        "condemned",
        "roll back to 1.1.0 (Releases-2)",
        "Deployments-5 (failed deployment)",
        "summary: would have rolled back 2 of 5 deployments (2 verified, 2 condemned, 1 inconclusive)",
        "time to verdict: median",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert_eq!(octo.write_attempts(), 0, "backtest is read-only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backtest_refuses_bad_input_with_a_clear_error() {
    let setup = Setup::new();
    let http_only = http_watch("web", "http://127.0.0.1:1", "");
    // Nothing listens on port 1: one attempt, not eight with backoff.
    let base = setup
        .base("http://127.0.0.1:1")
        .replace("max_retries = 8", "max_retries = 1");
    setup.write(
        &(base
            + &watch("http://127.0.0.1:1")
            + &http_only
            + r#"
[deployers.hook]
kind = "webhook"
url = "http://127.0.0.1:1/deploy"

[[watch]]
name = "cart"
deployer = "hook"
project = "Projects-2"
environment = "Environments-1"

[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://127.0.0.1:1"
query = "up"
max = 1
"#),
    );
    for (args, needle) in [
        (
            vec!["--watch", "nope", "--from", "1d"],
            "no watch named \"nope\" in the config (watches: shop, web, cart)",
        ),
        (
            vec!["--watch", "shop", "--from", "1h", "--to", "2h"],
            "--from (",
        ),
        (
            vec!["--watch", "shop", "--from", "last tuesday"],
            "--from \"last tuesday\" is neither an RFC 3339 time",
        ),
        (
            vec!["--watch", "web", "--from", "1d"],
            "watch \"web\" has no check that can be replayed from history: health (http: needs the live service",
        ),
        (
            vec!["--watch", "cart", "--from", "1d"],
            "backtest needs a deployer that can list past deployments (octopus); watch \"cart\" uses deployer \"hook\" of kind webhook",
        ),
    ] {
        let (status, out, err) = backtest(&setup, &args).await;
        assert!(!status.success(), "{args:?} succeeded: {out}");
        assert!(err.contains(needle), "{args:?}: missing {needle:?} in:\n{err}");
        assert!(out.is_empty(), "{out}");
    }
    // Octopus unreachable: said so, non-zero, and the API key is never printed.
    let (status, _, err) = backtest(&setup, &["--watch", "shop", "--from", "1d"]).await;
    assert!(!status.success());
    assert!(
        err.contains("cannot list the past deployments from deployer \"octo\""),
        "{err}"
    );
    assert!(!err.contains(API_KEY), "{err}");
}
