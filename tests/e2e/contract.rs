//! The API against its published contract: schemathesis generates requests from
//! `GET /v1/openapi.json` and checks every answer against the document, on the real daemon
//! with the fakes. Once without credentials (every change is refused and nothing changes), once
//! with the bearer token and the webhook secret.
//!
//! schemathesis comes from PyPI, pinned, in a virtualenv that `tests/run-all.sh` makes
//! (`BACKSTOP_TEST_SCHEMATHESIS`, else `target/venv/bin/schemathesis`).

use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;
use crate::scenario::{verified, Stage};

/// The webhook header as the document names it (a placeholder there: the real name is
/// configured), so that schemathesis's `ignored_auth` check strips the right header.
const WEBHOOK_HEADER: &str = "X-Backstop-Webhook-Secret";

/// Test cases per operation and phase: the two runs together stay well under a minute.
const EXAMPLES: &str = "10";

/// A run that takes longer than this is stuck.
const RUN_TIMEOUT: Duration = Duration::from_secs(150);

/// The conformance checks every answer must pass.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_headers_conformance,response_schema_conformance";

fn schemathesis() -> PathBuf {
    if let Some(p) = std::env::var_os("BACKSTOP_TEST_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/schemathesis");
    assert!(
        local.exists(),
        "schemathesis is not installed: run tests/run-all.sh (it makes target/venv), or set \
         BACKSTOP_TEST_SCHEMATHESIS to a schemathesis 4 executable"
    );
    local
}

/// Runs schemathesis against the daemon; panics with its report when it finds anything.
async fn run_schemathesis(d: &Daemon, cwd: &std::path::Path, checks: &str, headers: &[String]) {
    let seed = std::env::var("BACKSTOP_TEST_SCHEMATHESIS_SEED").unwrap_or_else(|_| "1".into());
    let mut cmd = tokio::process::Command::new(schemathesis());
    cmd.current_dir(cwd)
        .args(["--no-color", "--config-file", "schemathesis.toml", "run"])
        .arg(format!("{}/v1/openapi.json", d.url))
        .args([
            "--checks",
            checks,
            "--max-examples",
            EXAMPLES,
            "--seed",
            &seed,
        ])
        .args(["--workers", "1", "--request-timeout", "10"])
        .args([
            "--generation-database",
            "none",
            "--suppress-health-check",
            "all",
        ]);
    for h in headers {
        cmd.args(["--header", h]);
    }
    cmd.kill_on_drop(true);
    let out = tokio::time::timeout(RUN_TIMEOUT, cmd.output())
        .await
        .expect("schemathesis did not finish in time")
        .expect("schemathesis starts");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis (seed {seed}) found problems ({}):\n{report}\n{}\ndaemon logs:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        d.logs()
    );
}

/// The document with every RFC 3339 time replaced, to compare states taken apart in time.
fn without_times(v: Value) -> Value {
    match v {
        Value::String(s) if chrono::DateTime::parse_from_rfc3339(&s).is_ok() => {
            Value::String("<time>".into())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(without_times).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, without_times(v))).collect())
        }
        other => other,
    }
}

/// What must survive a run: the status of every watch and the history.
async fn state(d: &Daemon) -> (Value, Value) {
    let (s, status) = d.get_json("/v1/status").await;
    assert_eq!(s, 200, "{status}");
    let (s, history) = d.get_json("/v1/history").await;
    assert_eq!(s, 200, "{history}");
    (without_times(status), history)
}

fn watch_names(status: &Value) -> Vec<String> {
    status["watches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_keeps_its_contract_under_generated_requests() {
    let program = schemathesis();
    let stage = Stage::new(["1.0"]).await;
    let release = stage.releases[0].clone();
    let s = stage
        .start(|stage| {
            stage.base().replace("X-Backstop-Secret", WEBHOOK_HEADER)
                + &http_watch("shop", &stage.app.url(), "")
        })
        .await;
    let d = &s.daemon;
    // A verdict with its evidence, for `GET /v1/verdicts/{id}` to serve a real document.
    verified(d, &release).await;
    let (_, history) = d.get_json("/v1/history?watch=shop").await;
    let id = history["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = s.setup.dir.path();
    std::fs::write(
        dir.join("schemathesis.toml"),
        // The watch is named, so pause and resume reach it (a random name is a 404, which
        // would leave the bearer check and the watch's own answers unexercised); an operation
        // whose cases all missed is a failure, not a warning.
        format!(
            "[parameters]\n\"path.id\" = \"{id}\"\n\"path.name\" = \"shop\"\n\n\
             [warnings]\nfail-on = [\"missing_test_data\"]\n"
        ),
    )
    .unwrap();
    assert!(program.exists(), "{}", program.display());

    // Without credentials: every change is refused, so nothing changes.
    let before = state(d).await;
    run_schemathesis(d, dir, CHECKS, &[]).await;
    let after = state(d).await;
    assert_eq!(
        before, after,
        "requests without credentials changed the state"
    );
    // The refusals themselves, for the requests that would change the most.
    let c = d.http();
    for path in ["/v1/watches/shop/pause", "/v1/watches/shop/resume"] {
        let r = c.post(format!("{}{path}", d.url)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
    }
    let r = c
        .post(format!("{}/v1/deployments", d.url))
        .json(&serde_json::json!({"watch": "shop", "release": "Releases-9"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an announcement without a token");
    assert_eq!(watch_names(&after.0), ["shop"]);

    // With them: changes are made (announcements, pauses, webhooks) and must keep the
    // contract, and refusing a request without its credentials is checked too.
    let headers = [
        format!("Authorization: Bearer {TOKEN}"),
        format!("{WEBHOOK_HEADER}: {HOOK_SECRET}"),
    ];
    run_schemathesis(d, dir, &format!("{CHECKS},ignored_auth"), &headers).await;
    let (s, body) = d.get_json("/healthz").await;
    assert_eq!(s, 200, "{body}");
    let (status, _) = state(d).await;
    assert_eq!(watch_names(&status), ["shop"], "the watches changed");
}
