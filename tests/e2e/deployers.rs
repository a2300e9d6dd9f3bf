//! The generic deployers end to end: `kind = "webhook"` against `FakeCd` (body template,
//! secret header, status polling, a lost answer re-sent with the same idempotency key, a
//! refusal) and `kind = "command"` with a shell script (argv and environment, a failing
//! script, and `kill -9` while the script runs: never run twice).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::app::FakeApp;
use crate::common::wait_until;
use crate::common::webhook_target::FakeCd;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);
/// No watch here uses Octopus; `Setup::base` still wants a URL for its deployer.
const UNUSED_OCTOPUS: &str = "http://127.0.0.1:9";
const CD_TOKEN: &str = "Bearer cd-secret-1";

/// A watch on `app` deploying through `deployer`; the warmup lets a rolled-back app answer
/// healthy again before it is judged.
fn watch(app: &FakeApp, deployer: &str) -> String {
    http_watch("shop", &app.url(), "")
        .replace("deployer = \"octo\"", &format!("deployer = \"{deployer}\""))
        .replace("warmup = \"0s\"", "warmup = \"300ms\"")
}

fn webhook_config(setup: &Setup, cd: &FakeCd) -> String {
    std::fs::write(setup.dir.path().join("cd-token"), format!("{CD_TOKEN}\n")).unwrap();
    format!(
        r#"
[deployers.cd]
kind = "webhook"
url = "{cd}/deploy"
body = '{{"app": "{{{{watch}}}}", "release": "{{{{target_release}}}}", "from": "{{{{condemned_release}}}}", "action": "{{{{action}}}}", "key": "{{{{idempotency_key}}}}"}}'
status_url = "{cd}/deployments/{{{{idempotency_key}}}}"
timeout = "1s"
task_poll = "50ms"
task_timeout = "20s"
max_retries = 5

[deployers.cd.headers]
X-Team = "web"

[deployers.cd.secret_headers]
Authorization = "cd-token"
"#,
        cd = cd.url()
    )
}

/// Starts a daemon whose watch `shop` has verified release `A`, then makes the app fail and
/// announces `B`.
async fn condemn_b(setup: &Setup, app: &FakeApp) -> Daemon {
    let d = Daemon::start(setup).await;
    assert_eq!(d.announce("shop", "A").await, 202);
    d.wait_watch("shop", "release A verified", T, |w| {
        w["last_good_release"] == "A"
    })
    .await;
    app.set_health(503);
    assert_eq!(d.announce("shop", "B").await, 202);
    d
}

async fn wait_rolled_back_to_a(d: &Daemon) -> Value {
    let w = d
        .wait_watch("shop", "rollback to A verified", T, |w| {
            w["last_verdict"]["verdict"] == "verified" && w["last_verdict"]["release"] == "A"
        })
        .await;
    assert_eq!(w["state"], "idle");
    assert_eq!(w["current_release"], "A");
    assert_eq!(w["rollback"]["state"], "succeeded");
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deployer_rolls_back_once_and_follows_the_status() {
    let cd = FakeCd::start().await;
    cd.require_header("Authorization", CD_TOKEN);
    cd.set_outcome("succeeded", 2);
    let app = FakeApp::start().await;
    let setup = Setup::new();
    setup.write(&(setup.base(UNUSED_OCTOPUS) + &webhook_config(&setup, &cd) + &watch(&app, "cd")));
    let d = condemn_b(&setup, &app).await;

    let deployments = cd.wait_for_deployments(1, T).await;
    app.set_health(200);
    let key = deployments[0]
        .idempotency_key
        .clone()
        .expect("an idempotency key");
    assert!(!key.is_empty());
    assert_eq!(
        deployments[0].body,
        json!({"app": "shop", "release": "A", "from": "B", "action": "rollback", "key": key})
    );

    let w = wait_rolled_back_to_a(&d).await;
    assert_eq!(w["rollback"]["deployment_id"], "dep-1");
    assert_eq!(cd.deployments().len(), 1);
    let posts = cd.deploy_requests();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].header("authorization"), Some(CD_TOKEN));
    assert_eq!(posts[0].header("x-team"), Some("web"));
    assert_eq!(posts[0].header("content-type"), Some("application/json"));
    let polls: Vec<_> = cd
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .collect();
    assert_eq!(polls.len(), 3, "two `running` answers, then `succeeded`");
    assert!(polls
        .iter()
        .all(|r| r.answered == 200 && r.header("authorization") == Some(CD_TOKEN)));
    let m = d.metrics().await;
    assert!(
        m.contains(r#"backstop_rollbacks_total{outcome="succeeded"} 1"#),
        "{m}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deployer_resends_a_lost_answer_with_the_same_key() {
    let cd = FakeCd::start().await;
    cd.accept_then_fail_next(1);
    let app = FakeApp::start().await;
    let setup = Setup::new();
    setup.write(&(setup.base(UNUSED_OCTOPUS) + &webhook_config(&setup, &cd) + &watch(&app, "cd")));
    let d = condemn_b(&setup, &app).await;
    cd.wait_for_deployments(1, T).await;
    app.set_health(200);

    let w = wait_rolled_back_to_a(&d).await;
    assert_eq!(w["rollback"]["deployment_id"], "dep-1");
    let posts = cd.deploy_requests();
    assert_eq!(posts.len(), 2, "the lost answer was retried once");
    assert_eq!(posts[0].answered, 500);
    assert_eq!(posts[1].answered, 202);
    assert_eq!(
        posts[0].header("idempotency-key"),
        posts[1].header("idempotency-key")
    );
    assert_eq!(cd.deployments().len(), 1, "still exactly one deployment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_deployer_refusal_fails_the_watch_with_the_message() {
    let cd = FakeCd::start().await;
    cd.fail_next(1, 400);
    let app = FakeApp::start().await;
    let setup = Setup::new();
    setup.write(&(setup.base(UNUSED_OCTOPUS) + &webhook_config(&setup, &cd) + &watch(&app, "cd")));
    let d = condemn_b(&setup, &app).await;

    let w = d
        .wait_watch("shop", "watch failed", T, |w| w["state"] == "failed")
        .await;
    let attention = w["attention"].as_str().unwrap();
    assert!(
        attention.contains("HTTP 400") && attention.contains("FakeCd injected HTTP 400"),
        "{attention}"
    );
    assert_eq!(w["rollback"]["state"], "failed");
    assert_eq!(cd.deploy_requests().len(), 1, "a refusal is not retried");
    assert!(cd.deployments().is_empty());
    let m = d.metrics().await;
    assert!(
        m.contains(
            r#"backstop_deployer_api_errors_total{deployer="cd",operation="create_deployment"} 1"#
        ),
        "{m}"
    );
}

/// The evidence document of the observation that condemned `B`.
async fn condemned_evidence(d: &Daemon) -> Value {
    let get = |path: String| async move {
        let r = d
            .http()
            .get(format!("{}{path}", d.url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json::<Value>().await.unwrap()
    };
    let history = get("/v1/history?watch=shop".into()).await;
    let condemned = history["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["release"] == "B" && e["verdict"] == "condemned")
        .unwrap_or_else(|| panic!("no condemned B in {history}"));
    get(format!(
        "/v1/verdicts/{}",
        condemned["id"].as_str().unwrap()
    ))
    .await
}

/// Writes a script that appends one line per run to `runs` (its pid, argv and the
/// `BACKSTOP_*` environment), then does `then`.
fn script(dir: &Path, then: &str) -> (PathBuf, PathBuf) {
    let runs = dir.join("runs");
    let path = dir.join("deploy.sh");
    let text = format!(
        r#"printf '%s|%s|%s|%s|%s|%s|%s|%s\n' "$$" "$*" "$BACKSTOP_WATCH" "$BACKSTOP_RELEASE" \
  "$BACKSTOP_VERSION" "$BACKSTOP_CONDEMNED_RELEASE" "$BACKSTOP_ACTION" "$BACKSTOP_IDEMPOTENCY_KEY" >> '{runs}'
echo "deployed $1"
{then}
"#,
        runs = runs.display()
    );
    std::fs::write(&path, text).unwrap();
    (path, runs)
}

fn command_config(script: &Path) -> String {
    format!(
        r#"
[deployers.script]
kind = "command"
argv = ["/bin/sh", "{script}", "{{{{target_release}}}}", "--from={{{{condemned_release}}}}"]
timeout = "20s"
"#,
        script = script.display()
    )
}

fn runs(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_deployer_runs_the_script_once_with_the_intent() {
    let app = FakeApp::start().await;
    let setup = Setup::new();
    let (path, runs_file) = script(setup.dir.path(), "");
    setup.write(&(setup.base(UNUSED_OCTOPUS) + &command_config(&path) + &watch(&app, "script")));
    let d = condemn_b(&setup, &app).await;
    wait_until("the script ran", T, || !runs(&runs_file).is_empty()).await;
    app.set_health(200);

    wait_rolled_back_to_a(&d).await;
    // The script's output is in the condemned verdict's evidence.
    let evidence = condemned_evidence(&d).await;
    let deploy = &evidence["action"]["deploy"];
    assert_eq!(deploy["deployer"], "script");
    assert_eq!(deploy["state"], "succeeded");
    let detail = deploy["detail"].as_str().unwrap_or_default();
    assert!(
        detail.starts_with("exit 0") && detail.ends_with("deployed A"),
        "output summary: {deploy}"
    );
    let runs = runs(&runs_file);
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run = &runs[0];
    assert_eq!(run[1], "A --from=B");
    assert_eq!(&run[2..4], ["shop", "A"]);
    assert_eq!(&run[5..7], ["B", "rollback"]);
    assert!(!run[7].is_empty(), "an idempotency key: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_deployer_failure_fails_the_watch_with_the_exit() {
    let app = FakeApp::start().await;
    let setup = Setup::new();
    let (path, runs_file) = script(setup.dir.path(), "echo 'cluster unreachable' >&2; exit 1");
    setup.write(&(setup.base(UNUSED_OCTOPUS) + &command_config(&path) + &watch(&app, "script")));
    let d = condemn_b(&setup, &app).await;

    let w = d
        .wait_watch("shop", "watch failed", T, |w| w["state"] == "failed")
        .await;
    let attention = w["attention"].as_str().unwrap();
    assert!(
        attention.contains("exit 1") && attention.contains("cluster unreachable"),
        "{attention}"
    );
    assert_eq!(
        runs(&runs_file).len(),
        1,
        "a failed script is not run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_deployer_never_runs_twice_across_kill_9() {
    let app = FakeApp::start().await;
    let setup = Setup::new();
    // `exec` makes the recorded pid the sleep itself, so the test can end it.
    let (path, runs_file) = script(setup.dir.path(), "exec sleep 30");
    setup.write(&(setup.base(UNUSED_OCTOPUS) + &command_config(&path) + &watch(&app, "script")));
    let mut d = condemn_b(&setup, &app).await;
    wait_until("the slow script started", T, || {
        !runs(&runs_file).is_empty()
    })
    .await;
    d.kill9();
    app.set_health(200);

    let d = Daemon::start(&setup).await;
    let w = d
        .wait_watch("shop", "watch failed after restart", T, |w| {
            w["state"] == "failed"
        })
        .await;
    let attention = w["attention"].as_str().unwrap();
    assert!(
        attention.contains("may already have run before a restart"),
        "{attention}"
    );
    let runs = runs(&runs_file);
    assert_eq!(runs.len(), 1, "the script ran again: {runs:?}");
    // The orphaned script outlived the daemon it was started by; end it.
    let _ = std::process::Command::new("kill").arg(&runs[0][0]).status();
}
