//! `kind = "argocd"` end to end against `FakeArgoCd`: a condemned revision rolled back to the
//! verified one's history id and followed to Succeeded; auto-sync refused plainly with no call;
//! a refused call and a lost answer giving one operation; a failed operation reported; and
//! `kill -9` while the operation runs, resumed without a second call.

use std::time::Duration;

use serde_json::Value;

use crate::common::app::FakeApp;
use crate::common::argocd::FakeArgoCd;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);
/// No watch here uses Octopus; `Setup::base` still wants a URL for its deployer.
const UNUSED_OCTOPUS: &str = "http://127.0.0.1:9";
const ARGO_TOKEN: &str = "argo-token-xyz";
const SHA_A: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
const SHA_B: &str = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391";

struct World {
    argo: FakeArgoCd,
    app: FakeApp,
    setup: Setup,
    /// History id of revision A's deployment.
    id_a: i64,
}

/// Argo CD with application `shop` at revision A, and a config whose watch rolls it back.
async fn world() -> World {
    let argo = FakeArgoCd::start(ARGO_TOKEN).await;
    argo.add_app("shop");
    let id_a = argo.deploy("shop", SHA_A);
    let app = FakeApp::start().await;
    let setup = Setup::new();
    std::fs::write(
        setup.dir.path().join("argo-token"),
        format!("{ARGO_TOKEN}\n"),
    )
    .unwrap();
    let watch = http_watch("shop", &app.url(), "application = \"shop\"")
        .replace("deployer = \"octo\"", "deployer = \"argo\"")
        .replace("warmup = \"0s\"", "warmup = \"300ms\"");
    setup.write(&format!(
        r#"{base}
[deployers.argo]
kind = "argocd"
url = "{url}"
token_file = "argo-token"
timeout = "1s"
task_poll = "50ms"
task_timeout = "20s"
max_retries = 8
{watch}"#,
        base = setup.base(UNUSED_OCTOPUS),
        url = argo.url(),
    ));
    World {
        argo,
        app,
        setup,
        id_a,
    }
}

/// Starts the daemon, has A verified, then deploys B through "CI", makes the app fail and
/// announces B.
async fn condemn_b(w: &World) -> Daemon {
    let d = Daemon::start(&w.setup).await;
    assert_eq!(d.announce("shop", SHA_A).await, 202);
    d.wait_watch("shop", "revision A verified", T, |s| {
        s["last_good_release"] == SHA_A
    })
    .await;
    w.argo.deploy("shop", SHA_B);
    w.app.set_health(503);
    assert_eq!(d.announce("shop", SHA_B).await, 202);
    d
}

async fn wait_rolled_back_to_a(d: &Daemon) -> Value {
    let s = d
        .wait_watch("shop", "rollback to A verified", T, |s| {
            s["rollback"]["state"] == "succeeded"
                && s["last_verdict"]["verdict"] == "verified"
                && s["last_verdict"]["release"] == SHA_A
        })
        .await;
    assert_eq!(s["state"], "idle");
    assert_eq!(s["current_release"], SHA_A);
    s
}

fn errors(metrics: &str, operation: &str) -> String {
    let prefix = format!(
        r#"backstop_deployer_api_errors_total{{deployer="argo",operation="{operation}"}} "#
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or("0")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_condemned_revision_is_rolled_back_to_the_verified_history_entry() {
    let w = world().await;
    let d = condemn_b(&w).await;
    let calls = w.argo.wait_for_rollbacks(1, T).await;
    w.app.set_health(200);
    assert_eq!(calls, vec![w.id_a], "rolled back to A's history id");
    let s = wait_rolled_back_to_a(&d).await;
    assert_eq!(
        s["rollback"]["deployment_id"],
        format!("shop#history-{}", w.id_a)
    );
    assert_eq!(w.argo.rollback_calls(), vec![w.id_a], "exactly one call");
    assert_eq!(w.argo.operations_started(), 1);
    assert_eq!(w.argo.current_revision("shop").as_deref(), Some(SHA_A));
    let history = w.argo.history("shop");
    let revisions: Vec<&str> = history.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(
        revisions,
        [SHA_A, SHA_B, SHA_A],
        "the rollback's sync is in the history"
    );
    assert_eq!(
        w.argo.application("shop")["status"]["sync"]["status"],
        "OutOfSync"
    );
    let m = d.metrics().await;
    assert_eq!(errors(&m, "rollback"), "0", "{m}");
    assert_eq!(errors(&m, "get_application"), "0", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_sync_is_reported_plainly_and_nothing_is_called() {
    let w = world().await;
    w.argo.set_auto_sync("shop", true);
    let d = condemn_b(&w).await;
    let s = d
        .wait_watch("shop", "failed for auto-sync", T, |s| {
            s["state"] == "failed"
        })
        .await;
    assert_eq!(s["rollback"]["state"], "failed");
    let detail = s["rollback"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("auto-sync enabled, which forbids rollback"),
        "{s}"
    );
    assert!(detail.contains("backstop did not roll back"), "{s}");
    assert!(
        s["attention"]
            .as_str()
            .unwrap_or_default()
            .contains("auto-sync"),
        "{s}"
    );
    assert!(w.argo.rollback_calls().is_empty(), "no rollback was posted");
    assert_eq!(w.argo.current_revision("shop").as_deref(), Some(SHA_B));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_and_a_lost_answer_give_exactly_one_operation() {
    let w = world().await;
    // First call refused before anything happens; the second starts the operation but its
    // answer is lost. backstop must find that operation rather than post a third time.
    w.argo.fail_next_rollbacks(1, 503);
    w.argo.rollback_then_fail_next(1);
    let d = condemn_b(&w).await;
    w.argo.wait_for_rollbacks(2, T).await;
    w.app.set_health(200);
    wait_rolled_back_to_a(&d).await;
    assert_eq!(w.argo.rollback_calls(), vec![w.id_a, w.id_a]);
    assert_eq!(
        w.argo.operations_started(),
        1,
        "one operation, adopted after the lost answer"
    );
    let a_syncs = w
        .argo
        .history("shop")
        .iter()
        .filter(|(_, r)| r == SHA_A)
        .count();
    assert_eq!(a_syncs, 2, "A's first deployment and the one rollback");
    assert!(d.logs().contains("adopting it"), "{}", d.logs());
    let m = d.metrics().await;
    assert_eq!(errors(&m, "rollback"), "2", "{m}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_sync_is_reported_with_argo_cds_message() {
    let w = world().await;
    w.argo.set_final_phase("shop", "Failed");
    let d = condemn_b(&w).await;
    let s = d
        .wait_watch("shop", "failed rollback", T, |s| s["state"] == "failed")
        .await;
    let detail = s["rollback"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("ended Failed"), "{s}");
    assert!(
        detail.contains("one or more objects failed to apply"),
        "{s}"
    );
    assert_eq!(w.argo.rollback_calls(), vec![w.id_a]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_the_sync_runs_resumes_following_it() {
    let w = world().await;
    w.argo.hold_operations("shop", true);
    let mut d = condemn_b(&w).await;
    w.argo.wait_for_rollbacks(1, T).await;
    w.argo.wait_for_phase("shop", "Running", T).await;
    d.wait_watch("shop", "following the sync", T, |s| {
        s["state"] == "rolling_back" && s["rollback"]["state"] == "created"
    })
    .await;
    d.kill9();
    w.app.set_health(200);

    let d = Daemon::start(&w.setup).await;
    d.wait_watch("shop", "still rolling back after restart", T, |s| {
        s["state"] == "rolling_back"
            && s["rollback"]["detail"]
                .as_str()
                .is_some_and(|t| t.contains("Running"))
    })
    .await;
    w.argo.hold_operations("shop", false);
    wait_rolled_back_to_a(&d).await;
    assert_eq!(w.argo.rollback_calls(), vec![w.id_a], "never posted again");
    assert_eq!(w.argo.operations_started(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_by_someone_else_after_the_condemned_revision_is_never_rolled_back_over() {
    const SHA_C: &str = "d670460b4b4aece5915caf5c68d12f560a9fe3e4";
    let w = world().await;
    // The first rollback call is refused; before the retry a person syncs C.
    w.argo.fail_next_rollbacks(1, 503);
    let d = condemn_b(&w).await;
    w.argo.wait_for_rollbacks(1, T).await;
    w.argo.deploy("shop", SHA_C);
    w.app.set_health(200);
    let s = d
        .wait_watch("shop", "rollback superseded", T, |s| {
            s["rollback"]["state"] == "superseded"
        })
        .await;
    assert_eq!(w.argo.operations_started(), 0, "no rollback operation");
    assert_eq!(w.argo.current_revision("shop").as_deref(), Some(SHA_C));
    assert_eq!(s["current_release"], SHA_C, "{s}");
}
