//! `on_deploy_failure` end to end, with failed deployments announced by `POST /v1/deployments`
//! (`"outcome": "failed"`): observe with a healthy service (a notification, no deploy call) and
//! with a broken one (a rollback whose Comments carry the failure), rollback at once after the
//! `deploy_failed` hook, notify, and retry whose redeploy fails too.

use std::time::Duration;

use serde_json::json;

use crate::common::sinks::FakeJsonHook;
use crate::harness::*;
use crate::scenario::{scenario, Scenario};

const T: Duration = Duration::from_secs(30);

/// `[notify.ops]`, a JSON webhook sink, and watch `shop` notifying it.
fn config(hook: &FakeJsonHook, base: &str, app: &str, extra: &str) -> String {
    format!(
        "[notify.ops]\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url()
    ) + base
        + &http_watch("shop", app, &format!("notify = [\"ops\"]\n{extra}"))
}

async fn started(hook: &FakeJsonHook, extra: &str) -> Scenario<2> {
    let extra = extra.to_string();
    let hook = hook.clone();
    scenario(["1.0.0", "1.1.0"], move |stage| {
        config(&hook, &stage.base(), &stage.app.url(), &extra)
    })
    .await
}

async fn announce_failed(s: &Scenario<2>, release: &str) {
    let status = s
        .daemon
        .announce_json(json!({
            "watch": "shop",
            "release": release,
            "outcome": "failed",
            "error": "Step 2: Deploy web failed on web-02: exit code 1",
        }))
        .await;
    assert_eq!(status, 202);
}

/// Octopus's `DeploymentFailed` subscription webhook for `dep` of `release`; the status.
async fn deployment_failed(
    s: &Scenario<2>,
    event: &str,
    dep: &str,
    release: &str,
    task: &str,
) -> reqwest::StatusCode {
    let body = json!({
        "Timestamp": "2026-03-02T14:06:44.000+00:00",
        "EventType": "SubscriptionPayload",
        "Payload": {
            "ServerUri": "https://octopus.example.com",
            "Subscription": {"Id": "Subscriptions-1", "Name": "backstop"},
            "Event": {
                "Id": event, "Category": "DeploymentFailed",
                "Occurred": "2026-03-02T14:06:43.111+00:00",
                "RelatedDocumentIds": [dep, "Projects-1", release, "Environments-1", task, "Channels-1"],
                "SpaceId": "Spaces-1"
            }
        }
    });
    s.daemon
        .http()
        .post(format!("{}/v1/hooks/octopus", s.daemon.url))
        .header("X-Backstop-Secret", HOOK_SECRET)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
}

/// The id of the task of deployment `dep` in the fake.
fn task_of(s: &Scenario<2>, dep: &str) -> String {
    s.octopus
        .deployments()
        .into_iter()
        .find(|d| d["Id"] == dep)
        .unwrap()["TaskId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The notifications of `kind` received so far.
fn of_kind(hook: &FakeJsonHook, kind: &str) -> Vec<serde_json::Value> {
    hook.requests()
        .into_iter()
        .map(|r| r.body)
        .filter(|b| b["kind"] == kind)
        .collect()
}

async fn wait_kind(hook: &FakeJsonHook, kind: &str, n: usize) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + T;
    loop {
        let got = of_kind(hook, kind);
        if got.len() >= n {
            return got;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expected {n} {kind} notification(s), got {:#?}",
            hook.requests()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_keeps_a_healthy_service_and_tells_people_without_a_deploy_call() {
    let hook = FakeJsonHook::start().await;
    let s = started(&hook, "").await;
    let [r1, r2] = s.releases.clone();
    announce_failed(&s, &r2).await;
    let w = s
        .daemon
        .wait_watch("shop", "the failed deployment judged", T, |w| {
            w["last_verdict"]["release"] == r2.as_str()
        })
        .await;
    assert_eq!(w["last_verdict"]["verdict"], "verified");
    assert_eq!(
        w["last_good_release"],
        r1.as_str(),
        "a failed deployment's release is not recorded as good: {w}"
    );
    let notes = wait_kind(&hook, "deploy_failed", 2).await;
    assert!(
        notes[0]["summary"]
            .as_str()
            .unwrap()
            .contains("exit code 1"),
        "{notes:#?}"
    );
    assert!(
        notes[1]["summary"]
            .as_str()
            .unwrap()
            .contains("the service is healthy"),
        "{notes:#?}"
    );
    assert!(s.octopus.created_deployments().is_empty());
    let (_, history) = s.daemon.get_json("/v1/history?watch=shop").await;
    let entry = &history["deployments"][0];
    assert_eq!(entry["outcome"], "failed", "{history}");
    assert!(entry["failure"]["error"]
        .as_str()
        .unwrap()
        .contains("web-02"));
    let m = s.daemon.metrics().await;
    assert!(
        m.contains(r#"backstop_deployments_seen_total{outcome="failed",source="announce"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn observe_rolls_a_broken_service_back_with_the_failure_in_the_comments() {
    let hook = FakeJsonHook::start().await;
    let s = started(&hook, "").await;
    let [r1, r2] = s.releases.clone();
    s.app.set_health(503);
    announce_failed(&s, &r2).await;
    let created = s.octopus.wait_for_created(1, T).await;
    s.app.set_health(200);
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let comments = created[0]["Comments"].as_str().unwrap();
    assert!(
        comments.contains("failed: Step 2: Deploy web failed on web-02: exit code 1"),
        "{comments}"
    );
    assert!(comments.contains("[backstop-rollback:"), "{comments}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_runs_the_hook_first_then_rolls_back_at_once() {
    let hook = FakeJsonHook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join("env.txt");
    let extra = format!(
        "on_deploy_failure = \"rollback\"\n[watch.hooks.deploy_failed]\nargv = [\"/bin/sh\", \"-c\", \"env > {}\"]\ntimeout = \"10s\"",
        env.display()
    );
    let s = started(&hook, &extra).await;
    let [r1, r2] = s.releases.clone();
    // Healthy, and rolled back anyway: the policy does not observe.
    let status = s
        .daemon
        .announce_json(json!({
            "watch": "shop",
            "release": r2,
            "deployment": "Deployments-77",
            "outcome": "failed",
            "task": "ServerTasks-77",
            "error": "the package feed timed out",
        }))
        .await;
    assert_eq!(status, 202);
    let created = s.octopus.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let env = std::fs::read_to_string(&env).expect("the hook ran before the deploy call");
    for line in [
        "BACKSTOP_WATCH=shop",
        &format!("BACKSTOP_RELEASE={r2}"),
        "BACKSTOP_DEPLOYMENT=Deployments-77",
        "BACKSTOP_TASK=ServerTasks-77",
        "BACKSTOP_VERDICT=deploy_failed",
        "BACKSTOP_ACTION=deploy_failed",
    ] {
        assert!(env.lines().any(|l| l == line), "missing {line} in {env}");
    }
    assert!(
        env.lines()
            .any(|l| l.starts_with("BACKSTOP_ERROR=") && l.contains("package feed timed out")),
        "{env}"
    );
    let w = s
        .daemon
        .wait_watch("shop", "the rollback verified", T, |w| {
            w["last_verdict"]["release"] == r1.as_str() && w["state"] == "idle"
        })
        .await;
    assert_eq!(w["last_good_release"], r1.as_str());
    // explain shows the failure of the condemned deployment.
    let (_, history) = s.daemon.get_json("/v1/history?watch=shop").await;
    let failed = history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["release"] == r2.as_str())
        .unwrap();
    let (status, out, err) = run_cli(
        &[
            "explain",
            failed["id"].as_str().unwrap(),
            "--url",
            &s.daemon.url,
        ],
        s.setup.dir.path(),
    );
    assert!(status.success(), "{err}");
    assert!(out.contains("The deployment FAILED"), "{out}");
    assert!(out.contains("package feed timed out"), "{out}");
    assert!(out.contains("deploy_failed hook"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_fails_the_watch_and_deploys_nothing() {
    let hook = FakeJsonHook::start().await;
    let s = started(&hook, "on_deploy_failure = \"notify\"").await;
    let [_, r2] = s.releases.clone();
    announce_failed(&s, &r2).await;
    let w = s
        .daemon
        .wait_watch("shop", "failed", T, |w| w["state"] == "failed")
        .await;
    assert!(
        w["attention"]
            .as_str()
            .unwrap()
            .contains("on_deploy_failure = \"notify\""),
        "{w}"
    );
    wait_kind(&hook, "deploy_failed", 1).await;
    assert!(s.octopus.created_deployments().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_redeploys_once_and_rolls_back_when_that_fails_too() {
    let hook = FakeJsonHook::start().await;
    let s = started(
        &hook,
        "on_deploy_failure = \"retry\"\non_deploy_failure_then = \"rollback\"",
    )
    .await;
    let [r1, r2] = s.releases.clone();
    // The redeploy's task fails as well.
    s.octopus.set_task_final_state("Failed");
    announce_failed(&s, &r2).await;
    let first = s.octopus.wait_for_created(1, T).await;
    assert_eq!(first[0]["ReleaseId"], r2.as_str(), "the same release, once");
    let both = s.octopus.wait_for_created(2, T).await;
    assert_eq!(both[1]["ReleaseId"], r1.as_str(), "then the rollback");
    // Two failed deployments announced: the announced one and the redeploy.
    let notes = wait_kind(&hook, "deploy_failed", 2).await;
    assert_ne!(notes[0]["id"], notes[1]["id"]);
    s.daemon
        .wait_watch("shop", "the rollback ended", T, |w| {
            w["state"] != "rolling_back" && w["rollback"]["target_release"] == r1.as_str()
        })
        .await;
    assert_eq!(
        s.octopus.created_deployments().len(),
        2,
        "never a second retry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_outcome_is_refused_naming_the_field() {
    let hook = FakeJsonHook::start().await;
    let s = started(&hook, "").await;
    let body = json!({"watch": "shop", "release": "Releases-2", "outcome": "meh"});
    let resp = s
        .daemon
        .http()
        .post(format!("{}/v1/deployments", s.daemon.url))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("outcome"), "{text}");
    let mixed = json!({"watch": "shop", "release": "Releases-2", "error": "x"});
    assert_eq!(s.daemon.announce_json(mixed).await, 400);
}

/// Octopus's own account travels end to end: a `DeploymentFailed` webhook for a deployment
/// whose task failed on one machine; the task's details (step, machine, log tail) reach the
/// notification, `backstop explain` and the rollback deployment's Comments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_failed_step_and_its_log_tail_reach_the_comments_and_explain() {
    use crate::common::octopus::TaskFailure;
    let hook = FakeJsonHook::start().await;
    let s = started(&hook, "on_deploy_failure = \"rollback\"").await;
    let [r1, r2] = s.releases.clone();
    let dep = s
        .octopus
        .add_deployment("Projects-1", "Environments-1", &r2, "Executing");
    s.octopus
        .fail_task(&dep, TaskFailure::failed("Deploy web", "web-02"));
    let task = task_of(&s, &dep);
    assert_eq!(
        deployment_failed(&s, "Events-90", &dep, &r2, &task).await,
        202
    );
    let created = s.octopus.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let comments = created[0]["Comments"].as_str().unwrap();
    for needle in [
        "step \"Deploy web\" failed on web-02",
        "migrate: command not found",
        "[backstop-rollback:",
    ] {
        assert!(comments.contains(needle), "{needle:?} not in {comments}");
    }
    let note = &wait_kind(&hook, "deploy_failed", 1).await[0];
    assert!(
        note["summary"]
            .as_str()
            .unwrap()
            .contains("step \"Deploy web\" failed on web-02"),
        "{note}"
    );
    let failure = &note["evidence"]["deployment"]["failure"];
    assert_eq!(failure["machine"], "web-02", "{note}");
    let id = note["evidence"]["id"].as_str().unwrap();
    let (status, out, err) = run_cli(&["explain", id, "--url", &s.daemon.url], s.setup.dir.path());
    assert!(status.success(), "{err}");
    for needle in [
        "The deployment FAILED",
        "step \"Deploy web\" failed on web-02",
        "| deploy.sh: line 12: migrate: command not found",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
}

/// A deployment announced once in place whose later step fails: the failure of the deployment
/// being observed is acted on, not dropped as "already handled".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_of_the_deployment_being_observed_is_acted_on() {
    use crate::common::octopus::TaskFailure;
    let hook = FakeJsonHook::start().await;
    let s = started(&hook, "on_deploy_failure = \"rollback\"").await;
    let [r1, r2] = s.releases.clone();
    let dep = s
        .octopus
        .add_deployment("Projects-1", "Environments-1", &r2, "Executing");
    let announced = json!({"watch": "shop", "release": r2, "deployment": dep});
    assert_eq!(s.daemon.announce_json(announced).await, 202);
    s.daemon
        .wait_watch("shop", "observing the announced deployment", T, |w| {
            w["observation"]["deployment_id"] == dep.as_str()
        })
        .await;
    s.octopus
        .fail_task(&dep, TaskFailure::failed("Smoke test", "web-01"));
    let task = task_of(&s, &dep);
    assert_eq!(
        deployment_failed(&s, "Events-91", &dep, &r2, &task).await,
        202
    );
    let created = s.octopus.wait_for_created(1, T).await;
    assert_eq!(created[0]["ReleaseId"], r1.as_str());
    let note = &wait_kind(&hook, "deploy_failed", 1).await[0];
    assert!(
        note["summary"].as_str().unwrap().contains("Smoke test"),
        "{note}"
    );
}
