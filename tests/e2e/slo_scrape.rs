//! `kind = "slo"` with scrape selections: no Prometheus, backstop counts the good and total
//! requests from the app's own `/metrics` (the scrape tests' fake app). A release failing a
//! third of its requests burns a 99.9% budget hundreds of times too fast and is rolled back,
//! with the burn and the selections in the evidence and `backstop explain`; the rollback is
//! verified. A healthy release after a failing one is verified too: the windows count only
//! the scrapes since its deployment.

use std::time::Duration;

use crate::common::octopus::FakeOctopus;
use crate::harness::*;
use crate::scrape::{announce_now, FakeMetrics};

const T: Duration = Duration::from_secs(20);

/// A watch judging the app's availability against a 99.9% objective from its own counters.
/// Warmup 1.5s: the first judged windows (1s) start after the deployment's first scrapes.
fn slo_watch(metrics_url: &str) -> String {
    format!(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "1500ms"
window = "3s"
interval = "100ms"

[[watch.check]]
name = "availability"
kind = "slo"
url = "{metrics_url}"
objective = 0.999
good = {{ metric = "http_requests_total", labels = {{ code = {{ not_regex = "5.." }} }} }}
total = {{ metric = "http_requests_total" }}
timeout = "80ms"
failure_limit = 3
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_burning_its_error_budget_is_rolled_back_and_the_rollback_verified() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    // 100 good requests a second; no 5xx series until the release breaks.
    let app = FakeMetrics::start(100.0, 0.0, false).await;
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &slo_watch(&app.url)));
    let d = Daemon::start(&setup).await;
    app.wait_scrapes(3).await;

    announce_now(&d, &r2).await;
    // 50 errors a second beside the 100 good ones: a third of the requests, 333x the budget.
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
    let hit = check["limit_hit"].as_str().unwrap();
    assert!(
        hit.contains("failure_limit 3")
            && hit.contains("burning the error budget")
            && hit.contains("too fast (allowed 14.4x)")
            && hit.contains("objective 99.9%"),
        "{hit}"
    );
    let last = check["samples"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["result"], "fail", "{last}");
    // At most a third of the requests failed (the 5xx series counts from its first scrape).
    let burn = last["value"].as_f64().unwrap();
    assert!((100.0..=340.0).contains(&burn), "{last}");
    assert!(
        last["note"].as_str().unwrap().starts_with("burn "),
        "{last}"
    );

    let id = w["last_verdict"]["observation_id"].as_str().unwrap();
    let (status, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(ev["checks"][0]["kind"], "slo");
    assert_eq!(ev["checks"][0]["url"], app.url.as_str());
    assert_eq!(
        ev["checks"][0]["query"],
        r#"objective 99.9%, good http_requests_total{code!~"5.."} / total http_requests_total, long window up to 1h"#
    );
    let (status, out, err) = run_cli(&["explain", id, "--url", &d.url], setup.dir.path());
    assert!(status.success(), "{err}");
    let header = format!(
        r#"availability (slo {}: objective 99.9%, good http_requests_total{{code!~"5.."}} / total http_requests_total, long window up to 1h): error-budget burn < 14.4x over both windows"#,
        app.url
    );
    for needle in [
        header.as_str(),
        "FAIL burning the error budget",
        "note: burn ",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }

    // The rollback fails nothing: its windows start at its own deployment.
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
async fn a_healthy_release_after_a_failing_one_is_verified() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r2 = octo.add_release("Projects-1", "1.1.0");
    // The running release fails a third of its requests.
    let app = FakeMetrics::start(100.0, 50.0, true).await;
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &slo_watch(&app.url)));
    let d = Daemon::start(&setup).await;
    app.wait_scrapes(5).await;

    // The new release fails none: the old errors, scraped before it, are not its.
    app.set_error_rate(0.0);
    announce_now(&d, &r2).await;
    let w = d
        .wait_watch("shop", "a verdict", T, |w| !w["last_verdict"].is_null())
        .await;
    assert_eq!(w["last_verdict"]["verdict"], "verified", "{w:#}");
    let check = &w["last_verdict"]["checks"][0];
    assert_eq!(check["failures"], 0, "{w:#}");
    assert!(check["passes"].as_u64() >= Some(10), "{w:#}");
    let last = check["samples"].as_array().unwrap().last().unwrap();
    assert_eq!(last["value"], 0.0, "{last}");
    assert_eq!(octo.post_attempts(), 0);
}
