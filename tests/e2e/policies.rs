//! Policies and guards: retry (roll-over) then rollback or notify, the command policy,
//! irreversible releases (freeze), dry run, max_actions, pause/resume, and the evidence API.

use std::time::Duration;

use serde_json::json;

use crate::common::app::FakeApp;
use crate::harness::*;
use crate::scenario::{scenario, verified, Scenario, Stage};

const T: Duration = Duration::from_secs(30);

/// A watch with a 300ms warmup (time for the test to heal the app after a deploy call).
fn watch(app: &FakeApp, extra: &str) -> String {
    http_watch("shop", &app.url(), extra).replace("warmup = \"0s\"", "warmup = \"300ms\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_redeploys_once_then_rolls_back() {
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        stage.base() + &watch(&stage.app, "on_failure = \"retry\"\nthen = \"rollback\"")
    })
    .await;
    let (octo, app, d) = (&s.octopus, &s.app, &s.daemon);
    let [r1, r2] = s.releases.clone();

    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let first = octo.wait_for_created(1, T).await;
    assert_eq!(
        first[0]["ReleaseId"],
        r2.as_str(),
        "the retry redeploys the same release"
    );
    // Still broken after the retry: the fallback rolls back to the verified release.
    let both = octo.wait_for_created(2, T).await;
    app.set_health(200);
    assert_eq!(both[1]["ReleaseId"], r1.as_str());
    let w = d
        .wait_watch("shop", "rollback verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
                && w["last_verdict"]["release"] == r1.as_str()
        })
        .await;
    assert_eq!(w["state"], "idle");
    assert_eq!(octo.created_deployments().len(), 2);
    let m = d.metrics().await;
    assert!(
        m.contains(r#"backstop_actions_total{action="retry"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"backstop_actions_total{action="rollback"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_then_notify_stops_after_one_redeploy() {
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        stage.base() + &watch(&stage.app, "on_failure = \"retry\"\nthen = \"notify\"")
    })
    .await;
    let (octo, app, d) = (&s.octopus, &s.app, &s.daemon);
    let [_, r2] = s.releases.clone();
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let w = d
        .wait_watch("shop", "failed after the retry", T, |w| {
            w["state"] == "failed"
        })
        .await;
    assert!(
        w["attention"].as_str().unwrap().contains("condemned again"),
        "{w}"
    );
    assert_eq!(octo.created_deployments().len(), 1);
    assert_eq!(octo.created_deployments()[0]["ReleaseId"], r2.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_policy_runs_the_program_with_the_evidence() {
    let stage = Stage::new(["1.1.0"]).await;
    stage.app.set_health(500);
    let out = stage.setup.dir.path().join("hook-env.txt");
    let evidence_copy = stage.setup.dir.path().join("hook-evidence.json");
    let extra = format!(
        "on_failure = \"command\"\n[watch.command]\nargv = [\"sh\", \"-c\", \"env > {} && cat \\\"$BACKSTOP_EVIDENCE_FILE\\\" > {} && echo done\"]\ntimeout = \"10s\"",
        out.display(),
        evidence_copy.display()
    );
    let s = stage
        .start(|stage| stage.base() + &watch(&stage.app, &extra))
        .await;
    let (octo, d) = (&s.octopus, &s.daemon);
    let [r2] = s.releases.clone();
    assert_eq!(
        d.announce_json(json!({"watch": "shop", "release": r2, "version": "1.1.0"}))
            .await,
        202
    );
    let w = d
        .wait_watch("shop", "command ran", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    assert_eq!(
        w["state"], "idle",
        "a command that exits 0 leaves the watch idle: {w}"
    );
    let env = std::fs::read_to_string(&out).unwrap();
    for line in [
        "BACKSTOP_WATCH=shop",
        &format!("BACKSTOP_RELEASE={r2}"),
        "BACKSTOP_VERSION=1.1.0",
        "BACKSTOP_VERDICT=condemned",
    ] {
        assert!(
            env.lines().any(|l| l == line),
            "missing {line} in the command's environment"
        );
    }
    let ev: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&evidence_copy).unwrap()).unwrap();
    assert_eq!(ev["deployment"]["release"], r2.as_str());
    assert_eq!(ev["checks"][0]["name"], "health");
    // The command's result is part of the evidence served by the API.
    let id = w["last_verdict"]["observation_id"].as_str().unwrap();
    let (status, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(ev["action"]["chosen"], "command");
    assert_eq!(ev["action"]["command"]["exit_code"], 0);
    assert_eq!(ev["action"]["command"]["stdout"], "done\n");
    assert_eq!(octo.post_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn irreversible_releases_freeze_instead_of_rolling_back() {
    let stage = Stage::new(["1.0.0", "2.0.0", "2.0.1"]).await;
    let [r1, r2, r3] = stage.releases.clone();
    stage
        .octopus
        .set_release_notes(&r2, "Adds the orders.v2 table. [backstop:no-rollback]");
    let s = stage
        .start(|stage| stage.base() + &watch(&stage.app, ""))
        .await;
    let (octo, app, d) = (&s.octopus, &s.app, &s.daemon);
    verified(d, &r1).await;

    // The migrating release itself is condemned: frozen (read from the Octopus release notes).
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let w = d
        .wait_watch("shop", "frozen", T, |w| w["state"] == "failed")
        .await;
    assert!(
        w["attention"]
            .as_str()
            .unwrap()
            .contains("not safe to roll back"),
        "{w}"
    );
    assert_eq!(octo.post_attempts(), 0);

    // A later release is condemned: rolling back to 1.0.0 would cross 2.0.0, so frozen too.
    assert_eq!(d.announce("shop", &r3).await, 202);
    let w = d
        .wait_watch("shop", "frozen again", T, |w| {
            w["state"] == "failed" && w["last_verdict"]["release"] == r3.as_str()
        })
        .await;
    assert!(
        w["attention"]
            .as_str()
            .unwrap()
            .contains(&format!("would cross release {r2}")),
        "{w}"
    );
    assert_eq!(octo.post_attempts(), 0);
    let m = d.metrics().await;
    assert!(
        m.contains(r#"backstop_actions_total{action="freeze"} 2"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_irreversible_release_freezes() {
    let s = Stage::new([])
        .await
        .start(|stage| stage.base() + &watch(&stage.app, ""))
        .await;
    let (octo, app, d) = (&s.octopus, &s.app, &s.daemon);
    verified(d, "Releases-1").await;
    app.set_health(503);
    let body = json!({"watch": "shop", "release": "Releases-2", "rollback_safe": false});
    assert_eq!(d.announce_json(body).await, 202);
    let w = d
        .wait_watch("shop", "frozen", T, |w| w["state"] == "failed")
        .await;
    let id = w["last_verdict"]["observation_id"].as_str().unwrap();
    let (_, ev) = d.get_json(&format!("/v1/verdicts/{id}")).await;
    assert_eq!(ev["deployment"]["rollback_safe"], false);
    assert_eq!(ev["action"]["chosen"], "freeze");
    assert_eq!(octo.post_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_judges_and_reports_but_calls_nothing() {
    // Global dry run.
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        "dry_run = true\n".to_string() + &stage.base() + &watch(&stage.app, "")
    })
    .await;
    let (octo, app, d) = (&s.octopus, &s.app, &s.daemon);
    let [r1, r2] = s.releases.clone();
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let w = d
        .wait_watch("shop", "dry-run verdict", T, |w| {
            w["last_verdict"]["verdict"] == "condemned"
        })
        .await;
    let action = w["last_verdict"]["action"].as_str().unwrap();
    assert!(
        action.contains(&format!("dry run: would roll back to {r1}")),
        "{action}"
    );
    assert_eq!(octo.post_attempts(), 0);
    let m = d.metrics().await;
    assert!(
        m.contains(r#"backstop_actions_total{action="dry_run"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_actions_pauses_the_watch_and_pause_survives_restart() {
    let mut s = scenario(["1.0.0", "1.1.0", "1.2.0"], |stage| {
        stage.base() + &watch(&stage.app, "max_actions = 1\nmax_actions_period = \"1h\"")
    })
    .await;
    let (octo, app, setup) = (&s.octopus, &s.app, &s.setup);
    let [r1, r2, r3] = s.releases.clone();
    let d = &mut s.daemon;
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    octo.wait_for_created(1, T).await;
    app.set_health(200);
    d.wait_watch("shop", "rollback verified", T, |w| {
        w["last_verdict"]["verdict"] == "verified" && w["last_verdict"]["release"] == r1.as_str()
    })
    .await;
    // A second bad release within the hour: the budget is spent, the watch pauses.
    app.set_health(503);
    assert_eq!(d.announce("shop", &r3).await, 202);
    let w = d
        .wait_watch("shop", "paused", T, |w| w["state"] == "paused")
        .await;
    assert!(
        w["attention"].as_str().unwrap().contains("max_actions = 1"),
        "{w}"
    );
    assert_eq!(octo.created_deployments().len(), 1);

    // Paused survives a restart; deployments are recorded but not observed.
    d.kill9();
    let d = Daemon::start(setup).await;
    d.wait_watch("shop", "still paused", T, |w| w["state"] == "paused")
        .await;
    // A person redeploys Releases-1 (announced without an id: matched to that deployment).
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    assert_eq!(d.announce("shop", &r1).await, 202);
    d.wait_watch("shop", "recorded while paused", T, |w| {
        w["current_release"] == r1.as_str()
    })
    .await;
    assert!(d.watch("shop").await["observation"].is_null());

    // `backstop resume` with the token from a file.
    let token_file = setup.dir.path().join("token");
    let (status, out, err) = run_cli(
        &[
            "resume",
            "shop",
            "--url",
            &d.url,
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        setup.dir.path(),
    );
    assert!(status.success(), "{err}");
    assert!(out.contains("resume requested"));
    d.wait_watch("shop", "resumed", T, |w| w["state"] == "idle")
        .await;
    let (status, _, err) = run_cli(&["pause", "shop", "--url", &d.url], setup.dir.path());
    assert!(!status.success(), "no token, no pause");
    assert!(err.contains("no API token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_has_evidence_history_and_explanation() {
    let s = scenario(["1.0.0", "1.1.0"], |stage| {
        stage.base() + &watch(&stage.app, "")
    })
    .await;
    let (octo, app, setup, d) = (&s.octopus, &s.app, &s.setup, &s.daemon);
    let [r1, r2] = s.releases.clone();
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    let created = octo.wait_for_created(1, T).await;
    app.set_health(200);
    let w = d
        .wait_watch("shop", "rollback verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
                && w["last_verdict"]["release"] == r1.as_str()
        })
        .await;
    assert!(created[0]["Comments"]
        .as_str()
        .unwrap()
        .contains("GET /v1/verdicts/"));

    // History lists the three observations, newest first.
    let (_, h) = d.get_json("/v1/history?watch=shop").await;
    let entries = h["deployments"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "{h}");
    assert_eq!(entries[0]["kind"], "rollback");
    assert_eq!(entries[1]["verdict"], "condemned");
    let condemned_id = entries[1]["id"].as_str().unwrap().to_string();

    let (status, ev) = d.get_json(&format!("/v1/verdicts/{condemned_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(ev["schema"], 1);
    assert_eq!(ev["verdict"]["verdict"], "condemned");
    assert_eq!(ev["action"]["chosen"], "rollback");
    assert_eq!(ev["action"]["target_release"], r1.as_str());
    assert!(ev["action"]["target_why"]
        .as_str()
        .unwrap()
        .contains("verified"));
    assert_eq!(ev["action"]["deploy"]["state"], "succeeded");
    assert!(ev["checks"][0]["samples"].as_array().unwrap().len() >= 3);
    assert!(ev["checks"][0]["samples"][0]["at"].is_string());
    assert!(ev["timeline"].as_array().unwrap().len() >= 3);
    assert!(
        ev["links"].as_array().unwrap().iter().any(|l| l["url"]
            .as_str()
            .unwrap()
            .contains("/app#/Spaces-1/deployments/")),
        "{ev}"
    );
    let (status, _) = d.get_json("/v1/verdicts/nope").await;
    assert_eq!(status, 404);

    let (status, out, err) = run_cli(&["history", "shop", "--url", &d.url], setup.dir.path());
    assert!(status.success(), "{err}");
    assert!(out.starts_with("DEPLOYED (UTC)"), "{out}");
    assert!(
        out.contains("condemned") && out.contains(&condemned_id),
        "{out}"
    );
    let (status, out, err) = run_cli(
        &["explain", &condemned_id, "--url", &d.url],
        setup.dir.path(),
    );
    assert!(status.success(), "{err}");
    for needle in [
        "Verdict: CONDEMNED",
        "LIMIT HIT",
        "Action: rollback",
        &format!("target: {r1}"),
        "Timeline:",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    }
    assert_eq!(w["rollback"]["state"], "succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_after_the_rollback_runs_with_the_target_and_every_event_is_notified() {
    use crate::common::prometheus::{FakePrometheus, Reply};
    use crate::common::sinks::FakeJsonHook;
    let stage = Stage::new(["1.0.0", "1.1.0"]).await;
    stage.octopus.fail_next_posts(1, 400, None);
    let hook = FakeJsonHook::start().await;
    let out = stage.setup.dir.path().join("after.txt");
    let extra = format!(
        "notify = [\"ops\"]\n[watch.command]\nargv = [\"sh\", \"-c\", \"echo $BACKSTOP_ACTION $BACKSTOP_TARGET_RELEASE >> {}\"]\nwhen = \"after\"",
        out.display()
    );
    let sink = format!(
        "[notify.ops]\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url()
    );
    // Bound by value: the daemon is dropped (killed) halfway, the temp dir kept to the end.
    let Scenario {
        octopus: octo,
        app,
        setup: _first_setup,
        daemon: d,
        releases: [r1, r2],
    } = stage
        .start(|stage| sink + &stage.base() + &watch(&stage.app, &extra))
        .await;
    verified(&d, &r1).await;

    // The rollback is refused by Octopus (400): condemned, then rollback_failed.
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    d.wait_watch("shop", "failed rollback", T, |w| w["state"] == "failed")
        .await;
    let events = |n| {
        let hook = hook.clone();
        async move {
            hook.wait_for(n, T)
                .await
                .iter()
                .map(|r| r.body["kind"].as_str().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        }
    };
    // Deliveries run concurrently: compare without order.
    let mut first = events(2).await;
    first.sort();
    assert_eq!(first, ["condemned", "rollback_failed"]);
    let ran = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        ran.trim(),
        format!("rollback {r1}"),
        "the after-hook ran once, after the deploy call"
    );
    let sent = hook.requests();
    let failed = sent
        .iter()
        .find(|r| r.body["kind"] == "rollback_failed")
        .unwrap();
    assert_eq!(
        failed.body["evidence"]["action"]["target_release"],
        r1.as_str()
    );
    assert_eq!(failed.body["evidence"]["action"]["command"]["exit_code"], 0);

    // An operator pause is announced too.
    let r = d
        .http()
        .post(format!("{}/v1/watches/shop/pause", d.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(events(3).await[2], "paused");
    drop(d);

    // A blind watch (no data) is announced as inconclusive.
    let prom = FakePrometheus::start().await;
    prom.set("p", Reply::Empty);
    let setup = Setup::new();
    let sink = format!(
        "[notify.ops]\nkind = \"webhook\"\nurl = \"{}\"\n",
        hook.url()
    );
    let watch = format!(
        r#"
[[watch]]
name = "blind"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "5s"
interval = "100ms"
error_limit = 3
notify = ["ops"]
[[watch.check]]
name = "latency"
kind = "prometheus"
url = "{}"
query = "p"
max = 1
timeout = "80ms"
"#,
        prom.url()
    );
    setup.write(&(sink + &setup.base(&octo.url()) + &watch));
    let d = Daemon::start(&setup).await;
    assert_eq!(d.announce("blind", "Releases-7").await, 202);
    assert_eq!(events(4).await[3], "inconclusive");
}
