//! The HTTP API as a client sees it: authentication, bad requests, Octopus webhooks, polling.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::*;
use crate::scenario::Stage;

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_trigger_nothing() {
    let s = Stage::new([])
        .await
        .start(|stage| stage.base() + &http_watch("shop", &stage.app.url(), ""))
        .await;
    let (octo, app, d) = (&s.octopus, &s.app, &s.daemon);
    let url = format!("{}/v1/deployments", d.url);
    let c = d.http();
    let ok_body = json!({"watch": "shop", "release": "Releases-9"});

    let r = c.post(&url).json(&ok_body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&url)
        .bearer_auth("wrong")
        .json(&ok_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&url)
        .bearer_auth(format!("{TOKEN}x"))
        .json(&ok_body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("invalid announcement"));
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"watch": "shop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({"watch": "nope", "release": "Releases-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let big = json!({"watch": "shop", "release": "x".repeat(70 * 1024)});
    let r = c
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let hook = format!("{}/v1/hooks/octopus", d.url);
    let payload = event(
        "Events-1",
        "DeploymentSucceeded",
        "Projects-1",
        "Environments-1",
        "Releases-9",
    );
    let r = c.post(&hook).json(&payload).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&hook)
        .header("X-Backstop-Secret", "wrong")
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c
        .post(&hook)
        .header("X-Backstop-Secret", HOOK_SECRET)
        .body("[1,2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let w = d.watch("shop").await;
    assert_eq!(w["state"], "idle");
    assert!(w["observation"].is_null());
    assert_eq!(app.hits(), 0, "nothing was observed");
    assert_eq!(octo.post_attempts(), 0);
    let r = c.get(format!("{}/healthz", d.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !d.logs().contains(TOKEN),
        "the token never reaches the logs"
    );
}

fn event(id: &str, category: &str, project: &str, env: &str, release: &str) -> Value {
    event_for(id, category, project, env, release, "Deployments-77")
}

fn event_for(
    id: &str,
    category: &str,
    project: &str,
    env: &str,
    release: &str,
    deployment: &str,
) -> Value {
    json!({
        "Timestamp": "2026-11-27T10:00:00.000+00:00",
        "EventType": "SubscriptionPayload",
        "Payload": {
            "ServerUri": "https://octopus.example.com",
            "BatchId": "b-1",
            "TotalEventsInBatch": 1,
            "Subscription": {"Id": "Subscriptions-1", "Name": "backstop", "SpaceId": "Spaces-1"},
            "Event": {
                "Id": id,
                "Category": category,
                "Occurred": "2026-11-27T10:00:00.000+00:00",
                "Message": "Deploy to Production succeeded",
                "RelatedDocumentIds": [deployment, project, release, env, "ServerTasks-9", "Channels-1"],
                "SpaceId": "Spaces-1",
                "Username": "system",
                "Links": {"Self": "/api/events/x"}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octopus_webhook_starts_one_observation_per_event() {
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
    let c = d.http();
    let send = |body: Value| {
        c.post(&hook)
            .header("X-Backstop-Secret", HOOK_SECRET)
            .json(&body)
            .send()
    };

    let r = send(event(
        "Events-1",
        "DeploymentStarted",
        "Projects-1",
        "Environments-1",
        "Releases-5",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = send(event(
        "Events-2",
        "DeploymentSucceeded",
        "Projects-9",
        "Environments-1",
        "Releases-5",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(d.watch("shop").await["observation"].is_null());

    let r = send(event(
        "Events-3",
        "DeploymentSucceeded",
        "Projects-1",
        "Environments-1",
        "Releases-5",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let w = d
        .wait_watch("shop", "observing the webhook deployment", T, |w| {
            w["state"] == "observing"
        })
        .await;
    let id = w["observation"]["id"].clone();
    assert_eq!(w["observation"]["release"], "Releases-5");
    assert_eq!(w["observation"]["deployment_id"], "Deployments-77");
    assert_eq!(w["observation"]["source"], "webhook");

    // Octopus redelivers the same event: ignored, the observation is not restarted.
    let r = send(event(
        "Events-3",
        "DeploymentSucceeded",
        "Projects-1",
        "Environments-1",
        "Releases-5",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["action"], "ignored");
    // A different event about the same deployment is recognised by its deployment id.
    let r = send(event(
        "Events-4",
        "DeploymentSucceeded",
        "Projects-1",
        "Environments-1",
        "Releases-5",
    ))
    .await
    .unwrap();
    assert!(r.status().is_success());
    // A newer deployment supersedes the observation. The actor handles commands in order, so
    // once it observes this one it has handled (and ignored) the duplicate above.
    let r = send(event_for(
        "Events-5",
        "DeploymentSucceeded",
        "Projects-1",
        "Environments-1",
        "Releases-6",
        "Deployments-78",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let w = d
        .wait_watch("shop", "observing the newer deployment", T, |w| {
            w["observation"]["release"] == "Releases-6"
        })
        .await;
    assert_ne!(w["observation"]["id"], id);
    assert_eq!(w["last_verdict"]["verdict"], "superseded");
    assert_eq!(w["last_verdict"]["release"], "Releases-5");
    assert!(
        w["last_good_release"].is_null(),
        "superseded is never verified"
    );
    let m = d.metrics().await;
    assert!(
        m.contains(r#"backstop_deployments_seen_total{outcome="succeeded",source="webhook"} 2"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_discovers_new_deployments_only() {
    let stage = Stage::new(["1.0.0", "1.1.0"]).await;
    let [r1, r2] = stage.releases.clone();
    stage
        .octopus
        .add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let s = stage
        .start(|stage| stage.base() + &http_watch("shop", &stage.app.url(), "poll = \"100ms\""))
        .await;
    let (octo, d) = (&s.octopus, &s.daemon);
    // Wait for a completed poll: what existed before backstop started is history.
    let deadline = std::time::Instant::now() + T;
    while metric(
        &d.metrics().await,
        r#"backstop_deployer_polls_total{deployer="octo",result="ok"}"#,
    ) < 1.0
    {
        assert!(std::time::Instant::now() < deadline, "no poll completed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(d.watch("shop").await["observation"].is_null());
    let dep = octo.add_deployment("Projects-1", "Environments-1", &r2, "Success");
    let w = d
        .wait_watch("shop", "verified polled deployment", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["last_verdict"]["deployment_id"], dep.as_str());
    assert_eq!(w["last_good_release"], r2.as_str());
    let m = d.metrics().await;
    assert!(
        m.contains(r#"backstop_deployments_seen_total{outcome="succeeded",source="poll"} 1"#),
        "{m}"
    );
}

/// The value of one series in an exposition (0 when absent).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// A burst of pause and resume requests (a script toggling a watch) is accepted whole and
/// handled in order: each is committed to the watch's inbox before its 202, so none finds the
/// actor's queue full, and the last one decides the state. An announcement after the burst
/// shares the inbox, so once it is recorded every request before it has been handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_pauses_and_resumes_is_accepted_whole_and_ends_as_the_last_asked() {
    let s = Stage::new([])
        .await
        .start(|stage| stage.base() + &http_watch("shop", &stage.app.url(), ""))
        .await;
    let d = &s.daemon;
    let c = d.http();
    let post = |action: &str| {
        c.post(format!("{}/v1/watches/shop/{action}", d.url))
            .bearer_auth(TOKEN)
            .send()
    };
    // More than the actor's command queue (64) holds, sent as fast as they are answered,
    // ending with a pause.
    for i in 0..101 {
        let action = if i % 2 == 0 { "pause" } else { "resume" };
        assert_eq!(post(action).await.unwrap().status(), 202, "request {i}");
    }
    assert_eq!(d.announce("shop", "Releases-7").await, 202);
    let w = d
        .wait_watch(
            "shop",
            "the announcement after the burst recorded",
            T,
            |w| w["current_release"] == "Releases-7",
        )
        .await;
    assert_eq!(w["state"], "paused", "the last request was a pause: {w}");
    assert!(w["observation"].is_null(), "recorded, not observed: {w}");
    // And a resume after it is the state again.
    assert_eq!(post("resume").await.unwrap().status(), 202);
    d.wait_watch("shop", "resumed", T, |w| w["state"] == "idle")
        .await;
}
