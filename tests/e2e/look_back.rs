//! The look-back rule end to end: after a rollback, the restored release's query still
//! averages the bad release's errors over its range; those mixed samples are not evidence, so
//! the rollback is verified, not condemned ("loop prevented") as it used to be.

use std::time::Duration;

use crate::common::prometheus::{FakePrometheus, Reply};
use crate::scenario::Stage;

const T: Duration = Duration::from_secs(30);
const QUERY: &str = "sum(rate(errors_total[2s]))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_not_condemned_by_the_bad_releases_look_back() {
    let prom = FakePrometheus::start().await;
    prom.set(QUERY, Reply::Value(0.0));
    let s = Stage::new(["1.0.0", "1.1.0"])
        .await
        .start(|stage| {
            stage.base()
                + &format!(
                    r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "300ms"
window = "3s"
interval = "100ms"

[[watch.check]]
name = "errors"
kind = "prometheus"
url = "{url}"
query = "{QUERY}"
timeout = "80ms"
max = 1.0
failure_limit = 3
"#,
                    url = prom.url()
                )
        })
        .await;
    let [r1, r2] = s.releases.clone();
    assert_eq!(s.daemon.announce("shop", &r1).await, 202);
    s.daemon
        .wait_watch("shop", "1.0.0 verified", T, |w| {
            w["last_good_release"] == r1.as_str()
        })
        .await;
    // 1.1.0 is bad; after the rollback its errors stay in the query's 2s range for a while.
    prom.set(QUERY, Reply::Value(5.0));
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    s.octopus.wait_for_created(1, T).await;
    let w = s
        .daemon
        .wait_watch("shop", "the rollback judged on mixed samples", T, |w| {
            w["observation"]["kind"] == "rollback"
                && w["observation"]["checks"][0]["no_data"].as_u64() >= Some(3)
        })
        .await;
    assert_eq!(w["observation"]["checks"][0]["failures"], 0, "{w:#}");
    // The bad release's data leaves the range: the rollback's own samples pass.
    prom.set(QUERY, Reply::Value(0.0));
    let w = s
        .daemon
        .wait_watch("shop", "rollback verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
                && w["last_verdict"]["release"] == r1.as_str()
        })
        .await;
    assert_eq!(w["state"], "idle", "{w:#}");
    assert_eq!(s.octopus.created_deployments().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_service_below_min_traffic_is_neither_condemned_nor_verified() {
    const TRAFFIC: &str = "sum(rate(requests_total[1m]))";
    let prom = FakePrometheus::start().await;
    // Two requests, one of them an error: a 50% error ratio on 0.03 req/s.
    prom.set(QUERY, Reply::Value(0.5));
    prom.set(TRAFFIC, Reply::Value(0.03));
    let s = Stage::new(["1.1.0"])
        .await
        .start(|stage| {
            stage.base()
                + &format!(
                    r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "2s"
interval = "100ms"

[[watch.check]]
name = "errors"
kind = "prometheus"
url = "{url}"
query = "{QUERY}"
timeout = "80ms"
max = 0.1
failure_limit = 3
min_traffic = {{ query = "{TRAFFIC}", min = 1.0 }}
"#,
                    url = prom.url()
                )
        })
        .await;
    let [r] = s.releases.clone();
    assert_eq!(s.daemon.announce("shop", &r).await, 202);
    let w = s
        .daemon
        .wait_watch("shop", "a verdict", T, |w| {
            w["last_verdict"]["verdict"].is_string()
        })
        .await;
    let v = &w["last_verdict"];
    assert_eq!(v["verdict"], "inconclusive", "{w:#}");
    assert!(
        v["summary"].as_str().unwrap().contains("min_samples"),
        "{w:#}"
    );
    assert_eq!(v["checks"][0]["failures"], 0);
    let sample = &v["checks"][0]["samples"][0];
    assert_eq!(sample["result"], "no_data", "{sample}");
    assert!(
        sample["reason"]
            .as_str()
            .unwrap()
            .contains("0.03 req/s, need 1"),
        "{sample}"
    );
    assert!(w["last_good_release"].is_null());
    assert_eq!(s.octopus.post_attempts(), 0);
}
