//! A release whose process is down is broken (issue: judge like an on-call engineer): its port
//! closed, the http check's connection is refused, and backstop rolls it back within warmup +
//! failure_limit samples; with `unreachable = "error"` the same outage is only an error.

use std::time::Duration;

use crate::harness::*;
use crate::scenario::scenario;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_never_starts_is_rolled_back() {
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        stage.base() + &http_watch("shop", &stage.app.url(), "")
    })
    .await;
    let [r1, r2] = s.releases.clone();
    // The new release's process never comes up: the port is closed.
    s.app.stop().await;
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    let created = s.octopus.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let w = s
        .daemon
        .wait_watch("shop", "condemned", T, |w| {
            w["rollback"]["state"].is_string()
        })
        .await;
    let (_, history) = s.daemon.get_json("/v1/history?watch=shop").await;
    let condemned = history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["verdict"] == "condemned")
        .cloned()
        .unwrap_or_else(|| panic!("no condemned verdict: {history:#} {w:#}"));
    let summary = condemned["summary"].as_str().unwrap();
    assert!(summary.contains("application unreachable"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_unreachable_error_a_closed_port_is_inconclusive_not_a_rollback() {
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        stage.base()
            + &http_watch("shop", &stage.app.url(), "error_limit = 3").replace(
                "failure_limit = 3",
                "failure_limit = 3\nunreachable = \"error\"",
            )
    })
    .await;
    let [_, r2] = s.releases.clone();
    s.app.stop().await;
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    let w = s
        .daemon
        .wait_watch("shop", "inconclusive", T, |w| {
            w["last_verdict"]["verdict"] == "inconclusive"
        })
        .await;
    assert!(
        w["last_verdict"]["summary"]
            .as_str()
            .unwrap()
            .contains("error_limit 3"),
        "{w}"
    );
    assert_eq!(s.octopus.post_attempts(), 0, "no deploy call");
}
