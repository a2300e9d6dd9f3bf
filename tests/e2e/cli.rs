//! The command line and the process contract: check-config, status, SIGHUP reload, SIGTERM,
//! and a `/metrics` exposition that promtool accepts.

use std::process::Command;
use std::time::Duration;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn check_config_accepts_the_example_and_lists_every_error() {
    let root = env!("CARGO_MANIFEST_DIR");
    let (status, out, _err) = run_cli(
        &["check-config", "--config", "config/backstop.example.toml"],
        root.as_ref(),
    );
    assert!(status.success(), "example config rejected");
    assert!(out.contains("OK (1 watch, 1 deployer)"), "{out}");

    let setup = Setup::new();
    setup.write(
        &(setup.base("http://127.0.0.1:1")
            + r#"
[[watch]]
name = "shop"
deployer = "missing"
project = "Projects-1"
environment = "Environments-1"
interval = "soon"
on_failure = "reboot"
colour = "red"
[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://127.0.0.1:9090"
query = "up"
"#),
    );
    let (status, _out, err) = run_cli(
        &[
            "check-config",
            "--config",
            setup.config_path().to_str().unwrap(),
        ],
        setup.dir.path(),
    );
    assert!(!status.success());
    for needle in [
        "watch[0].deployer: no [deployers.missing] table",
        "watch[0].interval: malformed duration \"soon\"",
        "watch[0].on_failure: unknown value \"reboot\"",
        "watch[0].colour: unknown key",
        "watch[0].check[0].max: a prometheus check needs a rule",
        "5 problems",
    ] {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    let (status, _, err) = run_cli(
        &["check-config", "--config", "/nonexistent/backstop.toml"],
        setup.dir.path(),
    );
    assert!(!status.success());
    assert!(err.contains("no such file"), "{err}");
}

#[test]
fn run_refuses_an_invalid_config() {
    let setup = Setup::new();
    setup.write("[server]\nlisten = \"nowhere\"\n");
    let (status, _, err) = run_cli(
        &["run", "--config", setup.config_path().to_str().unwrap()],
        setup.dir.path(),
    );
    assert!(!status.success());
    assert!(err.contains("server.listen"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_keeps_observations_and_rejects_bad_files_then_sigterm_exits_0() {
    let octo = FakeOctopus::start(API_KEY).await;
    let app = FakeApp::start().await;
    let setup = Setup::new();
    let shop =
        http_watch("shop", &app.url(), "").replace("window = \"1500ms\"", "window = \"60s\"");
    setup.write(&(setup.base(&octo.url()) + &shop));
    let mut d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", "Releases-1").await, 202);
    let w = d
        .wait_watch("shop", "observing", T, |w| w["state"] == "observing")
        .await;
    let id = w["observation"]["id"].clone();

    // A bad file is rejected; the old config keeps running.
    setup.write("[server\n");
    d.signal("HUP");
    let deadline = std::time::Instant::now() + T;
    while !d
        .metrics()
        .await
        .contains(r#"backstop_config_reloads_total{result="failure"} 1"#)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "reload failure not counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.logs().contains("reload rejected"));
    assert_eq!(d.watch("shop").await["observation"]["id"], id);

    // A good file adds a watch without disturbing the unchanged one.
    setup.write(&(setup.base(&octo.url()) + &shop + &http_watch("cart", &app.url(), "")));
    d.signal("HUP");
    d.wait_watch("cart", "new watch running", T, |w| w["state"] == "idle")
        .await;
    assert_eq!(
        d.watch("shop").await["observation"]["id"],
        id,
        "observation kept across reload"
    );

    // `backstop status` prints a table.
    let (status, out, err) = run_cli(&["status", "--url", &d.url], setup.dir.path());
    assert!(status.success(), "{err}");
    assert!(out.starts_with("WATCH"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("shop") && l.contains("observing")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("cart") && l.contains("idle")),
        "{out}"
    );

    // The exposition passes promtool's lint.
    let metrics = d.metrics().await;
    let scrape = setup.dir.path().join("scrape.txt");
    std::fs::write(&scrape, &metrics).unwrap();
    let lint = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < {}", scrape.display()))
        .output()
        .expect("promtool (Debian package prometheus) is installed by the test command");
    assert!(
        lint.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    for name in [
        "backstop_build_info",
        "backstop_checks_total",
        "backstop_watch_state",
        "backstop_rollbacks_total",
        "backstop_deployer_api_errors_total",
        "process_resident_memory_bytes",
        "backstop_store_transactions_total",
        "backstop_store_transaction_seconds_bucket",
        "backstop_store_queue",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    // Every round's samples are counted (once they were not: the count compared a sample's
    // time with a clock read after the round was stepped).
    let deadline = std::time::Instant::now() + T;
    loop {
        let m = d.metrics().await;
        let counted: f64 = m
            .lines()
            .filter(|l| l.starts_with("backstop_checks_total{") && l.contains(r#"watch="shop""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if counted >= 1.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no sample of shop counted in backstop_checks_total:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // shop's deployment was committed through the store's writer thread.
    let committed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("backstop_store_commits_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("backstop_store_commits_total in /metrics");
    assert!(committed >= 1.0, "{committed} transitions committed");

    let status = d.stop().await;
    assert_eq!(status.code(), Some(0), "SIGTERM exits 0:\n{}", d.logs());
}

#[test]
fn status_reports_an_unreachable_daemon() {
    let port = free_port();
    let (status, _, err) = run_cli(
        &["status", "--url", &format!("http://127.0.0.1:{port}")],
        std::path::Path::new("."),
    );
    assert!(!status.success());
    assert!(err.contains("cannot reach backstop"), "{err}");
}
