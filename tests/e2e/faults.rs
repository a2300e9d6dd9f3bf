//! Deployer faults during a rollback: 5xx, 429 with Retry-After, lost responses and timeouts
//! all end in exactly one rollback deployment.

use std::time::Duration;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);

async fn condemned_release(setup: &Setup, octo: &FakeOctopus) -> (Daemon, FakeApp, String) {
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeApp::start().await;
    app.set_health(503);
    setup.write(
        &(setup.base(&octo.url())
            + &http_watch("shop", &app.url(), "").replace("warmup = \"0s\"", "warmup = \"300ms\"")),
    );
    let d = Daemon::start(setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    (d, app, r1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_rate_limits_and_lost_responses_give_exactly_one_rollback() {
    let octo = FakeOctopus::start(API_KEY).await;
    octo.fail_next_posts(2, 503, None);
    octo.fail_next_posts(1, 429, Some(1));
    octo.create_then_fail_next_posts(1);
    let setup = Setup::new();
    let (d, app, r1) = condemned_release(&setup, &octo).await;
    octo.wait_for_created(1, T).await;
    app.set_health(200);
    let w = d
        .wait_watch("shop", "rollback verified", T, |w| {
            w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["current_release"], r1.as_str());
    let created = octo.created_deployments();
    assert_eq!(
        created.len(),
        1,
        "exactly one rollback deployment: {created:#?}"
    );
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    assert_eq!(
        octo.post_attempts(),
        4,
        "three refused, one landed with a lost response"
    );
    let m = d.metrics().await;
    assert!(
        m.contains(
            r#"backstop_deployer_api_errors_total{deployer="octo",operation="create_deployment"} 4"#
        ),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_times_out_is_found_not_repeated() {
    let octo = FakeOctopus::start(API_KEY).await;
    // The deployer timeout is 1s: the create lands but its answer comes too late.
    octo.hang_next_posts(1, Duration::from_secs(3));
    octo.fail_next_gets(2, 502);
    let setup = Setup::new();
    let (d, app, r1) = condemned_release(&setup, &octo).await;
    octo.wait_for_created(1, T).await;
    app.set_health(200);
    d.wait_watch("shop", "rollback verified", T, |w| {
        w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
    })
    .await;
    assert_eq!(octo.created_deployments().len(), 1);
    assert_eq!(
        octo.post_attempts(),
        1,
        "the lost create was adopted, never re-posted"
    );
    assert_eq!(octo.created_deployments()[0]["ReleaseId"], r1.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_rollback_leaves_the_watch_failed() {
    let octo = FakeOctopus::start(API_KEY).await;
    octo.fail_next_posts(1, 400, None);
    let setup = Setup::new();
    let (d, _app, _r1) = condemned_release(&setup, &octo).await;
    let w = d
        .wait_watch("shop", "failed rollback", T, |w| w["state"] == "failed")
        .await;
    assert_eq!(w["rollback"]["state"], "failed");
    assert!(w["attention"].as_str().unwrap().contains("refused"), "{w}");
    assert_eq!(octo.post_attempts(), 1, "a 400 is not retried");
    let m = d.metrics().await;
    assert!(m.contains(r#"backstop_rollbacks_total{outcome="failed"} 1"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rollback_task_is_reported() {
    let octo = FakeOctopus::start(API_KEY).await;
    octo.set_task_final_state("Failed");
    let setup = Setup::new();
    let (d, _app, _r1) = condemned_release(&setup, &octo).await;
    let w = d
        .wait_watch("shop", "failed rollback task", T, |w| {
            w["state"] == "failed"
        })
        .await;
    assert!(
        w["rollback"]["detail"].as_str().unwrap().contains("Failed"),
        "{w}"
    );
    assert_eq!(octo.created_deployments().len(), 1);
}
