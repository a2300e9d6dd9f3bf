//! Deployments that fail (issue 15), the Octopus side: backstop learns of them from a
//! `DeploymentFailed` subscription webhook, from polling (a task that ended Failed, TimedOut or
//! Canceled) and from `POST /v1/deployments` with `"outcome": "failed"`, and observes them
//! like any deployment (what the lifecycle does with the failure is its own concern). The
//! deployer reads Octopus's account of a failure (step, machine, log tail) from the task's
//! details, and lists finished deployments of every outcome.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use backstop::config::{CallSettings, DeployerConfig, OctopusConfig};
use backstop::deployer::{Deployer, DeployerError, Target, TaskState};
use backstop::metrics::Metrics;
use backstop::model::DeployFailure;
use backstop::secret::Secret;

use crate::common::octopus::{FakeOctopus, TaskFailure};
use crate::harness::*;
use crate::scenario::Stage;

const T: Duration = Duration::from_secs(20);

/// A subscription payload as Octopus posts it for a failed deployment of `release`.
fn failed_event(id: &str, release: &str, deployment: &str, task: &str) -> Value {
    json!({
        "Timestamp": "2026-03-02T14:06:44.000+00:00",
        "EventType": "SubscriptionPayload",
        "Payload": {
            "ServerUri": "https://octopus.example.com", "ServerAuditUri": null,
            "BatchProcessingDate": "2026-03-02T14:06:44.000+00:00", "BatchId": "8d1e0f62-5b1c-4b57-a3f2-7a0b1f0c9e11",
            "TotalEventsInBatch": 1, "EventNumberInBatch": 1,
            "Subscription": {"Id": "Subscriptions-1", "Name": "backstop", "SpaceId": "Spaces-1", "IsDisabled": false, "Type": "Event"},
            "Event": {
                "Id": id, "Category": "DeploymentFailed",
                "Occurred": "2026-03-02T14:06:43.111+00:00",
                "Message": "Deploy to Production failed for shop release 1.4.0 to Production",
                "RelatedDocumentIds": [deployment, "Projects-1", release, "Environments-1", task, "Channels-1"],
                "SpaceId": "Spaces-1", "Username": "system", "UserId": "users-system", "IsService": false,
                "Links": {"Self": format!("/api/events/{id}")}
            }
        }
    })
}

/// The value of one series in an exposition (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn polls(d: &Daemon) -> f64 {
    metric(
        &d.metrics().await,
        r#"backstop_deployer_polls_total{deployer="octo",result="ok"}"#,
    )
}

/// Waits until the daemon has completed `n` more polls than `after`.
async fn more_polls(d: &Daemon, after: f64, n: f64) {
    let deadline = std::time::Instant::now() + T;
    while polls(d).await < after + n {
        assert!(
            std::time::Instant::now() < deadline,
            "no poll completed:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_failed_webhook_starts_one_observation() {
    let s = Stage::new([])
        .await
        .start(|stage| {
            stage.base()
                + &http_watch("shop", &stage.app.url(), "")
                    .replace("window = \"1500ms\"", "window = \"10s\"")
        })
        .await;
    let d = &s.daemon;
    let hook = format!("{}/v1/hooks/octopus", d.url);
    let send = |body: Value| {
        d.http()
            .post(&hook)
            .header("X-Backstop-Secret", HOOK_SECRET)
            .json(&body)
            .send()
    };
    let event = failed_event(
        "Events-41",
        "Releases-7",
        "Deployments-70",
        "ServerTasks-170",
    );

    let r = send(event.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["action"], &body["watches"]),
        (&json!("observing"), &json!(["shop"]))
    );
    let w = d
        .wait_watch("shop", "observing the failed deployment", T, |w| {
            w["state"] == "observing"
        })
        .await;
    assert_eq!(w["observation"]["release"], "Releases-7");
    assert_eq!(w["observation"]["deployment_id"], "Deployments-70");
    assert_eq!(w["observation"]["source"], "webhook");
    let observation = w["observation"]["id"].clone();
    assert!(
        d.logs()
            .lines()
            .any(|l| l.contains("deployment delivered by Octopus webhook")
                && l.contains("failed=true")),
        "the trigger carries the failure:\n{}",
        d.logs()
    );

    // Octopus delivers the event again: remembered, ignored, the observation goes on.
    let r = send(event).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (&body["action"], &body["reason"]),
        (&json!("ignored"), &json!("event already delivered"))
    );
    let w = d.watch("shop").await;
    assert_eq!(w["observation"]["id"], observation, "not restarted: {w:#}");
    let m = d.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"backstop_deployments_seen_total{outcome="failed",source="webhook"}"#
        ),
        1.0,
        "{m}"
    );

    // A failed deployment of a project nobody watches is acknowledged and ignored.
    let mut other = failed_event(
        "Events-42",
        "Releases-8",
        "Deployments-71",
        "ServerTasks-171",
    );
    other["Payload"]["Event"]["RelatedDocumentIds"][1] = json!("Projects-9");
    let r = send(other).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(d.watch("shop").await["observation"]["id"], observation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_finds_a_deployment_whose_task_failed_once_it_has_ended() {
    let stage = Stage::new(["1.0.0", "1.1.0"]).await;
    let [r1, r2] = stage.releases.clone();
    let octo = &stage.octopus;
    // History before backstop starts, failures included: never observed.
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Canceled");
    let s = stage
        .start(|stage| stage.base() + &http_watch("shop", &stage.app.url(), "poll = \"100ms\""))
        .await;
    let (octo, d) = (&s.octopus, &s.daemon);
    more_polls(d, 0.0, 1.0).await;

    // Running: not listed, not observed, however many polls pass.
    let dep = octo.add_deployment("Projects-1", "Environments-1", &r2, "Executing");
    more_polls(d, polls(d).await, 3.0).await;
    assert!(
        d.watch("shop").await["observation"].is_null(),
        "a running deployment is not news yet"
    );

    // It fails mid-deployment: the next poll finds it.
    octo.fail_task(&dep, TaskFailure::failed("Deploy web", "web-02"));
    let w = d
        .wait_watch("shop", "the failed deployment observed", T, |w| {
            w["observation"]["deployment_id"] == dep.as_str()
                || w["last_verdict"]["deployment_id"] == dep.as_str()
        })
        .await;
    let seen = if w["observation"].is_null() {
        &w["last_verdict"]
    } else {
        &w["observation"]
    };
    assert_eq!(seen["release"], r2.as_str(), "{w:#}");
    let m = d.metrics().await;
    assert_eq!(
        metric(
            &m,
            r#"backstop_deployments_seen_total{outcome="failed",source="poll"}"#
        ),
        1.0,
        "only the failed deployment was news: {m}"
    );
    assert!(
        d.logs()
            .lines()
            .any(|l| l.contains("poll found a new deployment") && l.contains("Failed")),
        "the trigger carries the failure:\n{}",
        d.logs()
    );
    assert_eq!(octo.post_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_outcome_is_announced_and_an_unknown_one_refused() {
    let s = Stage::new([])
        .await
        .start(|stage| {
            stage.base()
                + &http_watch("shop", &stage.app.url(), "")
                    .replace("window = \"1500ms\"", "window = \"10s\"")
        })
        .await;
    let d = &s.daemon;
    let url = format!("{}/v1/deployments", d.url);
    let post = |body: Value| d.http().post(&url).bearer_auth(TOKEN).json(&body).send();

    for outcome in [json!("exploded"), json!("FAILED"), json!(5), json!(null)] {
        let r = post(json!({"watch": "shop", "release": "Releases-3", "outcome": outcome}))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{outcome}");
        let body: Value = r.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(error.contains("outcome"), "{outcome}: {error}");
    }
    assert!(d.watch("shop").await["observation"].is_null());

    let r = post(json!({
        "watch": "shop", "release": "Releases-3", "deployment": "Deployments-30",
        "outcome": "failed", "task": "ServerTasks-130", "error": "deploy.sh exited 1",
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let w = d
        .wait_watch("shop", "observing the announced failure", T, |w| {
            w["state"] == "observing"
        })
        .await;
    assert_eq!(w["observation"]["release"], "Releases-3");
    assert_eq!(w["observation"]["source"], "announce");
}

/// An Octopus deployer of the library, pointed at `octo`, retrying a failed call twice.
fn deployer(octo: &FakeOctopus) -> Deployer {
    let config = DeployerConfig::Octopus(OctopusConfig {
        url: octo.url(),
        space: "Spaces-1".into(),
        api_key: Secret::new(API_KEY),
        webhook_header: None,
        webhook_secret: None,
        no_rollback_marker: "[backstop:no-rollback]".into(),
        calls: CallSettings {
            timeout: Duration::from_secs(2),
            task_poll: Duration::from_millis(50),
            task_timeout: Duration::from_secs(5),
            max_retries: 3,
            settle: Duration::from_secs(1),
        },
    });
    Deployer::new("octo", &config, reqwest::Client::new(), Metrics::new())
}

const TARGET: Target<'static> = Target {
    watch: "shop",
    project: "Projects-1",
    environment: "Environments-1",
    application: None,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployer_reads_the_step_machine_and_log_from_the_task_details() {
    let octo = FakeOctopus::start(API_KEY).await;
    let release = octo.add_release("Projects-1", "1.4.0");
    octo.fail_deployments_of(
        &release,
        TaskFailure::failed("Deploy web", "web-02").with_log(&[
            ("Info", "Running deploy.sh"),
            ("Verbose", "PATH=/usr/bin"),
            ("Error", "Job for shop.service failed"),
            ("Fatal", "The remote script failed with exit code 1"),
        ]),
    );
    let dep = octo.add_deployment("Projects-1", "Environments-1", &release, "Failed");
    let task = octo.deployments()[0]["TaskId"].as_str().unwrap().to_owned();
    let deployer = deployer(&octo);
    let cancel = CancellationToken::new();

    // What a webhook knew: the task. One answer lost to a 503 on the way.
    octo.fail_next_gets(1, 503);
    let known = DeployFailure {
        task: Some(task.clone()),
        state: Some("Failed".into()),
        ..DeployFailure::default()
    };
    let f = deployer
        .failure_details(&TARGET, &release, Some(&dep), known, &cancel)
        .await
        .unwrap();
    assert_eq!(f.task.as_deref(), Some(task.as_str()));
    assert_eq!(f.state.as_deref(), Some("Failed"));
    assert_eq!(
        f.error.as_deref(),
        Some("The deployment failed because one or more steps failed. Please see the deployment log for details.")
    );
    assert_eq!(f.step.as_deref(), Some("Deploy web"));
    assert_eq!(f.machine.as_deref(), Some("web-02"));
    assert_eq!(
        f.log_tail,
        [
            "Running deploy.sh",
            "Job for shop.service failed",
            "The remote script failed with exit code 1",
            "The action Deploy web on web-02 failed",
        ],
        "verbose lines are not asked for"
    );
    assert_eq!(
        f.summary(),
        "step \"Deploy web\" failed on web-02: The deployment failed because one or more steps failed. Please see the deployment log for details."
    );

    // What an announcement knew: the deployment and an error; Octopus finds the task.
    let known = DeployFailure {
        error: Some("deploy.sh exited 1".into()),
        ..DeployFailure::default()
    };
    let f = deployer
        .failure_details(&TARGET, &release, Some(&dep), known.clone(), &cancel)
        .await
        .unwrap();
    assert_eq!(f.task.as_deref(), Some(task.as_str()));
    assert_eq!(f.machine.as_deref(), Some("web-02"));

    // Neither task nor deployment: nothing to ask, what was known stands.
    let f = deployer
        .failure_details(&TARGET, &release, None, known.clone(), &cancel)
        .await
        .unwrap();
    assert_eq!(f, known);

    // An unknown task is an error the caller records; an id that is no id never leaves.
    let missing = DeployFailure {
        task: Some("ServerTasks-999".into()),
        ..DeployFailure::default()
    };
    let e = deployer
        .failure_details(&TARGET, &release, None, missing, &cancel)
        .await
        .unwrap_err();
    assert!(matches!(e, DeployerError::NotFound(_)), "{e}");
    let before = octo.post_attempts();
    let sneaky = DeployFailure {
        task: Some("ServerTasks-1/../../deployments".into()),
        ..DeployFailure::default()
    };
    let e = deployer
        .failure_details(&TARGET, &release, None, sneaky, &cancel)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not an Octopus id"), "{e}");
    assert_eq!(octo.post_attempts(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deployer_lists_finished_deployments_of_every_outcome() {
    let octo = FakeOctopus::start(API_KEY).await;
    let release = octo.add_release("Projects-1", "1.4.0");
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    let mut ended = vec![];
    for (i, state) in [
        "Success",
        "Failed",
        "Queued",
        "TimedOut",
        "Executing",
        "Canceled",
        "Cancelling",
    ]
    .into_iter()
    .enumerate()
    {
        let at = t0 + chrono::Duration::minutes(i as i64);
        let id = octo.add_deployment_at("Projects-1", "Environments-1", &release, state, at);
        if !matches!(state, "Queued" | "Executing" | "Cancelling") {
            ended.push((id, state));
        }
    }
    octo.add_deployment("Projects-2", "Environments-1", &release, "Failed");
    let listed = deployer(&octo)
        .finished_deployments("Projects-1", "Environments-1", 10)
        .await
        .unwrap();
    let got: Vec<(String, &str)> = listed
        .iter()
        .map(|d| {
            (
                d.id.clone(),
                d.task_state.as_ref().map_or("?", TaskState::as_str),
            )
        })
        .collect();
    ended.reverse();
    assert_eq!(got, ended, "newest first, each with its end state");
    assert!(listed.iter().all(|d| d.task_id.is_some()));

    // One listing failing fails the poll: no partial view.
    octo.fail_next_gets(20, 400);
    let e = deployer(&octo)
        .finished_deployments("Projects-1", "Environments-1", 10)
        .await
        .unwrap_err();
    assert!(matches!(e, DeployerError::Rejected { .. }), "{e}");
}
