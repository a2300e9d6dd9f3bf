//! Exactly once under real faults: the four failures reproduced against the release build
//! before the lifecycle was rebuilt, each as its scenario.

use std::time::Duration;

use crate::harness::*;
use crate::scenario::{scenario, Scenario, Stage};

const T: Duration = Duration::from_secs(30);

/// A watch whose release 1.0.0 is verified; the app is then made to fail.
async fn verified_then_failing(extra_deployer: &str) -> Scenario<3> {
    let s = scenario(["1.0.0", "1.1.0", "1.2.0"], |stage| {
        let base = stage.base();
        let base = match extra_deployer {
            "" => base,
            e => base.replace("max_retries = 8\n", e),
        };
        base + &http_watch("shop", &stage.app.url(), "")
    })
    .await;
    s.app.set_health(503);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_commit_after_the_client_timeout_is_adopted_not_posted_again() {
    let s = verified_then_failing("").await;
    let [r1, r2, _] = s.releases.clone();
    // The server answers after the client's 1s timeout and commits only 2.5s after the
    // request: a search 250ms after the timeout finds nothing yet.
    s.octopus
        .commit_late_next_posts(1, Duration::from_secs(2), Duration::from_millis(2500));
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    s.octopus.wait_for_created(1, T).await;
    s.app.set_health(200);
    let w = s
        .daemon
        .wait_watch("shop", "rollback verified", T, |w| {
            w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["current_release"], r1.as_str());
    assert_eq!(
        s.octopus.created_deployments().len(),
        1,
        "one rollback deployment, not two"
    );
    assert_eq!(s.octopus.post_attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_answer_to_the_last_attempt_is_found_not_reported_failed() {
    let s = verified_then_failing("max_retries = 1\n").await;
    let [r1, r2, _] = s.releases.clone();
    s.octopus.commit_then_fail_next_posts(1, 503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    s.octopus.wait_for_created(1, T).await;
    s.app.set_health(200);
    let w = s
        .daemon
        .wait_watch("shop", "rollback adopted and verified", T, |w| {
            w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["current_release"], r1.as_str());
    assert!(w["attention"].is_null(), "{w}");
    assert_eq!(s.octopus.created_deployments().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_intent_never_deploys_over_a_newer_release_made_while_backstop_was_down() {
    let mut s = verified_then_failing("").await;
    let [_, r2, r3] = s.releases.clone();
    // Octopus cannot take the rollback: every create is refused before it is sent... as a
    // 503 the outcome is unknown, so backstop keeps searching and never posts blind.
    s.octopus.fail_next_posts(1000, 503, None);
    let r2_dep = s
        .octopus
        .add_deployment("Projects-1", "Environments-1", &r2, "Success");
    let body = serde_json::json!({"watch": "shop", "release": r2, "deployment": r2_dep});
    assert_eq!(s.daemon.announce_json(body).await, 202);
    s.daemon
        .wait_watch("shop", "rolling back", T, |w| w["state"] == "rolling_back")
        .await;
    let deadline = std::time::Instant::now() + T;
    while s.octopus.post_attempts() == 0 {
        assert!(std::time::Instant::now() < deadline, "no create attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.daemon.kill9();
    // Meanwhile a person ships a newer, good release.
    let newer = s
        .octopus
        .add_deployment("Projects-1", "Environments-1", &r3, "Success");
    s.app.set_health(200);
    let attempts = s.octopus.post_attempts();
    s.daemon = Daemon::start(&s.setup).await;
    let w = s
        .daemon
        .wait_watch("shop", "the newer release observed", T, |w| {
            w["rollback"]["state"] == "superseded"
                && w["observation"]["deployment_id"] == newer.as_str()
        })
        .await;
    assert_eq!(w["observation"]["release"], r3.as_str());
    assert_eq!(
        s.octopus.post_attempts(),
        attempts,
        "no deploy call after the restart"
    );
    assert!(s.octopus.created_deployments().is_empty());
    let m = s.daemon.metrics().await;
    assert!(
        m.contains(r#"backstop_rollbacks_total{outcome="superseded"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_reorders_and_adds_checks_mid_observation_still_rolls_back() {
    let two_checks = |app: &str| {
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "3s"
interval = "200ms"
"#
        .to_string()
            + &[("health", 8), ("ready", 8)]
            .iter()
            .map(|(n, limit)| {
                format!(
                    "\n[[watch.check]]\nname = \"{n}\"\nkind = \"http\"\nurl = \"{app}/health\"\ntimeout = \"150ms\"\nexpect_status = [200]\nfailure_limit = {limit}\n"
                )
            })
            .collect::<String>()
    };
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        stage.base() + &two_checks(&stage.app.url())
    })
    .await;
    let [r1, r2] = s.releases.clone();
    s.app.set_health(503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    s.daemon
        .wait_watch("shop", "two failures", T, |w| {
            w["observation"]["checks"][0]["consecutive_failures"].as_u64() >= Some(2)
        })
        .await;
    // Reorder the checks and add one, then reload while the bad release is observed.
    let app = s.app.url();
    let reordered = two_checks(&app)
        .replace("name = \"health\"", "name = \"tmp\"")
        .replace("name = \"ready\"", "name = \"health\"")
        .replace("name = \"tmp\"", "name = \"ready\"")
        + &format!("\n[[watch.check]]\nname = \"latency\"\nkind = \"http\"\nurl = \"{app}/health\"\ntimeout = \"150ms\"\nexpect_status = [200]\nfailure_limit = 50\n");
    s.setup
        .write(&(s.setup.base(&s.octopus.url()) + &reordered));
    s.daemon.signal("HUP");
    s.octopus.wait_for_created(1, T).await;
    s.app.set_health(200);
    let w = s
        .daemon
        .wait_watch("shop", "rolled back after the reload", T, |w| {
            w["rollback"]["state"] == "succeeded"
        })
        .await;
    assert_eq!(w["rollback"]["target_release"], r1.as_str());
    let (_, history) = s.daemon.get_json("/v1/history?watch=shop").await;
    let condemned = history["deployments"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["verdict"] == "condemned"))
        .cloned()
        .unwrap_or_default();
    let (_, ev) = s
        .daemon
        .get_json(&format!(
            "/v1/verdicts/{}",
            condemned["id"].as_str().unwrap_or_default()
        ))
        .await;
    let notes = ev["timeline"].to_string();
    assert!(notes.contains("reload added check latency"), "{ev:#}");
    assert!(!s.daemon.logs().contains("panicked"), "{}", s.daemon.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_webhook_for_an_older_deployment_never_replaces_the_newer_observation() {
    let s = Stage::new(["1.1.0", "1.2.0"])
        .await
        .start(|stage| {
            stage.base()
                + &http_watch("shop", &stage.app.url(), "")
                    .replace("window = \"1500ms\"", "window = \"30s\"")
        })
        .await;
    let [r2, r3] = s.releases.clone();
    let now = chrono::Utc::now();
    let older = s.octopus.add_deployment_at(
        "Projects-1",
        "Environments-1",
        &r2,
        "Success",
        now - chrono::Duration::seconds(60),
    );
    let newer = s.octopus.add_deployment_at(
        "Projects-1",
        "Environments-1",
        &r3,
        "Success",
        now - chrono::Duration::seconds(10),
    );
    let announce = |release: &str, dep: &str| serde_json::json!({"watch": "shop", "release": release, "deployment": dep});
    assert_eq!(s.daemon.announce_json(announce(&r3, &newer)).await, 202);
    let w = s
        .daemon
        .wait_watch("shop", "observing the newer", T, |w| {
            w["observation"]["deployment_id"] == newer.as_str()
        })
        .await;
    let id = w["observation"]["id"].clone();
    // The older deployment arrives late; then the newer one is announced again.
    s.daemon.announce_json(announce(&r2, &older)).await;
    s.daemon.announce_json(announce(&r3, &newer)).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !s.daemon.logs().contains("recorded and ignored") {
        assert!(std::time::Instant::now() < deadline, "{}", s.daemon.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let w = s.daemon.watch("shop").await;
    assert_eq!(
        w["observation"]["id"], id,
        "the observation was not restarted"
    );
    assert_eq!(w["observation"]["deployment_id"], newer.as_str());
}

/// `[notify.ops]`, a JSON webhook sink.
fn ops_sink(url: &str) -> String {
    format!("[notify.ops]\nkind = \"webhook\"\nurl = \"{url}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_not_delivered_before_a_crash_is_sent_after_it_with_its_id() {
    let hook = crate::common::sinks::FakeJsonHook::start().await;
    let mut s = Stage::new(["1.1.0"])
        .await
        .start(|stage| {
            ops_sink(&hook.url())
                + &stage.base()
                + &http_watch(
                    "shop",
                    &stage.app.url(),
                    "notify = [\"ops\"]\non_failure = \"notify\"",
                )
        })
        .await;
    let [r2] = s.releases.clone();
    // The sink holds every request: the condemned notification is in flight when we crash.
    hook.hold();
    s.app.set_health(503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    s.daemon
        .wait_watch("shop", "condemned", T, |w| w["state"] == "failed")
        .await;
    let deadline = std::time::Instant::now() + T;
    while hook.attempts() == 0 {
        assert!(std::time::Instant::now() < deadline, "no delivery attempt");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.daemon.kill9();
    hook.release();
    s.daemon = Daemon::start(&s.setup).await;
    let got = hook.wait_for(1, T).await;
    assert_eq!(got[0].body["kind"], "condemned");
    let id = got[0].body["id"].as_str().unwrap().to_string();
    assert!(id.ends_with(":condemned"), "{id}");
    // Every delivery of it, before and after the crash, carries the same id.
    for r in hook.requests() {
        if r.body["kind"] == "condemned" {
            assert_eq!(r.body["id"], id.as_str());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_on_failure_command_interrupted_by_a_crash_is_never_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let ran = dir.path().join("ran");
    let argv = format!(
        "on_failure = \"command\"\n[watch.command]\nargv = [\"/bin/sh\", \"-c\", \"echo ran >> {}; sleep 30\"]\ntimeout = \"60s\"\n",
        ran.display()
    );
    let mut s = Stage::new(["1.1.0"])
        .await
        .start(|stage| {
            stage.base()
                + &http_watch("shop", &stage.app.url(), "")
                    .replace("\n[[watch.check]]", &format!("{argv}\n[[watch.check]]"))
        })
        .await;
    let [r2] = s.releases.clone();
    s.app.set_health(503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    let deadline = std::time::Instant::now() + T;
    while !ran.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.daemon.kill9();
    s.daemon = Daemon::start(&s.setup).await;
    let w = s
        .daemon
        .wait_watch("shop", "failed, may have run", T, |w| {
            w["state"] == "failed"
        })
        .await;
    assert!(
        w["attention"]
            .as_str()
            .unwrap()
            .contains("may already have run"),
        "{w}"
    );
    assert_eq!(
        std::fs::read_to_string(&ran).unwrap().lines().count(),
        1,
        "run at most once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_octopus_event_survives_a_crash_before_the_watch_handles_it() {
    let mut s = scenario(["1.0.0", "1.1.0", "1.2.0"], |stage| {
        stage.base() + &http_watch("shop", &stage.app.url(), "")
    })
    .await;
    let [_, r2, r3] = s.releases.clone();
    // The watch is busy: its rollback's task does not end, so the actor stays in the deployer
    // while Octopus delivers a newer deployment.
    s.octopus.set_task_final_state("Executing");
    s.app.set_health(503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    let created = s.octopus.wait_for_created(1, T).await;
    let task = created[0]["TaskId"].as_str().unwrap().to_string();
    s.daemon
        .wait_watch("shop", "rolling back", T, |w| w["state"] == "rolling_back")
        .await;
    let d3 = s
        .octopus
        .add_deployment("Projects-1", "Environments-1", &r3, "Success");
    let event = serde_json::json!({
        "Timestamp": "2026-11-27T10:00:00.000+00:00",
        "EventType": "SubscriptionPayload",
        "Payload": {"Event": {
            "Id": "Events-42", "Category": "DeploymentSucceeded",
            "Occurred": "2026-11-27T10:00:00.000+00:00",
            "RelatedDocumentIds": [d3, "Projects-1", r3, "Environments-1"]
        }}
    });
    let post = |d: &Daemon| {
        d.http()
            .post(format!("{}/v1/hooks/octopus", d.url))
            .header("X-Backstop-Secret", HOOK_SECRET)
            .json(&event)
            .send()
    };
    assert_eq!(post(&s.daemon).await.unwrap().status(), 202);
    // The process dies before the busy watch handles the event; Octopus will not redeliver.
    s.daemon.kill9();
    s.octopus.set_task_state(&task, "Success");
    s.app.set_health(200);
    s.daemon = Daemon::start(&s.setup).await;
    s.daemon
        .wait_watch("shop", "observing the delivered deployment", T, |w| {
            w["observation"]["deployment_id"] == d3.as_str()
        })
        .await;
    // A redelivery of the same event is recognised.
    let r = post(&s.daemon).await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["action"], "ignored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_marker_search_reads_every_page_not_only_the_newest_thirty() {
    let s = verified_then_failing("").await;
    let [r1, r2, _] = s.releases.clone();
    // The rollback's create commits just after the client's 1s timeout; meanwhile 35 newer
    // deployments (made by other backstop intents, so they supersede nothing) push it off the
    // first page of the listing.
    s.octopus
        .commit_late_next_posts(1, Duration::from_secs(2), Duration::from_millis(1100));
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    let deadline = std::time::Instant::now() + T;
    while s.octopus.post_attempts() == 0 {
        assert!(std::time::Instant::now() < deadline, "no create attempt");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let url = format!("{}/api/Spaces-1/deployments", s.octopus.url());
    let http = reqwest::Client::new();
    for n in 0..35 {
        let body = serde_json::json!({
            "ReleaseId": r2, "EnvironmentId": "Environments-1",
            "Comments": format!("[backstop-retry:filler-{n}]")
        });
        let st = http
            .post(&url)
            .header("X-Octopus-ApiKey", API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert!(st.is_success(), "{st}");
    }
    s.app.set_health(200);
    s.daemon
        .wait_watch("shop", "rollback adopted", T, |w| {
            w["rollback"]["state"] == "succeeded"
        })
        .await;
    let ours: Vec<_> = s
        .octopus
        .created_deployments()
        .into_iter()
        .filter(|d| d["ReleaseId"] == r1.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "found on a later page, not posted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_that_refuses_for_good_is_dropped_and_the_others_are_not_resent() {
    let good = crate::common::sinks::FakeJsonHook::start().await;
    let gone = crate::common::sinks::FakeJsonHook::start().await;
    // The second sink answers 404 to everything: a revoked webhook.
    gone.fail_next(1000, 404);
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        format!(
            "[notify.good]\nkind = \"webhook\"\nurl = \"{}\"\n[notify.gone]\nkind = \"webhook\"\nurl = \"{}\"\n",
            good.url(),
            gone.url()
        ) + &stage.base()
            + &http_watch("shop", &stage.app.url(), "notify = [\"good\", \"gone\"]")
    })
    .await;
    let [_, r2] = s.releases.clone();
    s.app.set_health(503);
    assert_eq!(s.daemon.announce("shop", &r2).await, 202);
    s.octopus.wait_for_created(1, T).await;
    s.app.set_health(200);
    let got = good.wait_for(2, T).await;
    let mut kinds: Vec<String> = got
        .iter()
        .map(|r| r.body["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["condemned", "rolled_back"]);
    // Nothing stays in the outbox: the refused ones are dropped, the taken ones delivered, so
    // nothing can be sent again.
    let store = backstop::store::Store::open(&s.setup.state_dir()).unwrap();
    let deadline = std::time::Instant::now() + T;
    loop {
        let left = store.undelivered("shop").unwrap();
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "outbox never empties: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        good.requests().len(),
        2,
        "the good sink got each notification once"
    );
}
