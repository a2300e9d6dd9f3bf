//! Readiness instead of a blind warmup: `warmup` is the longest wait. Judging starts as soon
//! as every http check passes once; a release that answers 503 while it starts (for less than
//! its warmup) is never rolled back for it.

use std::time::{Duration, Instant};

use crate::harness::*;
use crate::scenario::Stage;

const T: Duration = Duration::from_secs(30);

fn watch(app: &str) -> String {
    http_watch("shop", app, "")
        .replace("warmup = \"0s\"", "warmup = \"20s\"")
        .replace("window = \"1500ms\"", "window = \"1s\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_is_up_is_judged_at_once_not_after_warmup() {
    let s = Stage::new(["1.1.0"])
        .await
        .start(|stage| stage.base() + &watch(&stage.app.url()))
        .await;
    let [r] = s.releases.clone();
    let started = Instant::now();
    assert_eq!(s.daemon.announce("shop", &r).await, 202);
    let w = s
        .daemon
        .wait_watch("shop", "verified long before the 20s warmup", T, |w| {
            w["last_good_release"] == r.as_str()
        })
        .await;
    assert!(started.elapsed() < Duration::from_secs(15), "{w:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_answering_503_while_it_starts_is_never_rolled_back_for_it() {
    let s = Stage::new(["1.0.0", "1.1.0"])
        .await
        .start(|stage| stage.base() + &watch(&stage.app.url()))
        .await;
    let [r1, r2] = s.releases.clone();
    s.octopus
        .add_deployment("Projects-1", "Environments-1", &r1, "Success");
    // Starting up: 503 for a while (well within the 20s warmup), then healthy.
    s.app.set_health(503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    let deadline = Instant::now() + T;
    while s.app.hits() < 8 {
        assert!(
            Instant::now() < deadline,
            "readiness is not probed during warmup"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.app.set_health(200);
    let w = s
        .daemon
        .wait_watch("shop", "verified once up", T, |w| {
            w["last_good_release"] == r2.as_str()
        })
        .await;
    assert_eq!(w["last_verdict"]["checks"][0]["failures"], 0, "{w:#}");
    assert_eq!(s.octopus.post_attempts(), 0);
}
