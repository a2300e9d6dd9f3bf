//! Credentials in configured URLs (`user:pass@`) never leave the daemon: a release condemned by
//! a health check whose URL carries a password, beside a Prometheus check, an Octopus deployer
//! and a notification webhook whose URLs carry one too, is rolled back and announced, and the
//! password shows up nowhere a human or another system can read it.

use std::time::Duration;

use serde_json::Value;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::common::prometheus::{FakePrometheus, Reply};
use crate::common::sinks::FakeJsonHook;
use crate::common::wait_until;
use crate::harness::*;

const T: Duration = Duration::from_secs(20);
const PASSWORD: &str = "s3cr3t";

/// `http://host...` with `user:PASSWORD@` put in front of the host.
fn with_password(url: &str, user: &str) -> String {
    url.replacen("http://", &format!("http://{user}:{PASSWORD}@"), 1)
}

/// A dashboard page, as a browser asks for it.
async fn page(d: &Daemon, path: &str) -> String {
    let r = d
        .http()
        .get(format!("{}{path}", d.url))
        .header("Accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.text().await.unwrap()
}

fn assert_hidden(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password leaked into {what}:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_passwords_reach_no_log_api_evidence_or_notification() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeApp::start().await;
    let prom = FakePrometheus::start().await;
    prom.set("error_rate", Reply::Value(0.01));
    let hook = FakeJsonHook::start().await;
    let setup = Setup::new();
    let sink = format!(
        "\n[notify.hook]\nkind = \"webhook\"\nurl = \"{}\"\n",
        with_password(&hook.url(), "hook")
    );
    let watch = http_watch(
        "shop",
        &with_password(&app.url(), "user"),
        r#"notify = ["hook"]"#,
    )
    .replace("warmup = \"0s\"", "warmup = \"300ms\"");
    let prom_check = format!(
        r#"
[[watch.check]]
name = "errors"
kind = "prometheus"
url = "{}"
query = "error_rate"
timeout = "80ms"
max = 0.05
"#,
        with_password(&prom.url(), "prom")
    );
    setup
        .write(&(setup.base(&with_password(&octo.url(), "deploy")) + &sink + &watch + &prom_check));
    let mut d = Daemon::start(&setup).await;

    assert_eq!(d.announce("shop", &r1).await, 202);
    d.wait_watch("shop", "release 1 verified", T, |w| {
        w["last_good_release"] == r1.as_str()
    })
    .await;
    app.set_health(503);
    assert_eq!(d.announce("shop", &r2).await, 202);
    octo.wait_for_created(1, T).await;
    app.set_health(200);
    d.wait_watch("shop", "the rollback verified", T, |w| {
        w["last_verdict"]["verdict"] == "verified" && w["last_verdict"]["release"] == r1.as_str()
    })
    .await;
    wait_until("the hook got condemned and rolled_back", T, || {
        let kinds: Vec<Value> = hook
            .requests()
            .iter()
            .map(|r| r.body["kind"].clone())
            .collect();
        kinds.contains(&"condemned".into()) && kinds.contains(&"rolled_back".into())
    })
    .await;

    // The notifications carry the evidence, with its URLs redacted.
    for r in hook.requests() {
        assert_hidden("a notification", &r.body.to_string());
    }
    let condemned = hook
        .requests()
        .into_iter()
        .find(|r| r.body["kind"] == "condemned")
        .unwrap()
        .body;
    let checks = &condemned["evidence"]["checks"];
    assert_eq!(
        checks[0]["url"],
        format!("{}/health", app.url().replace("http://", "http://***@"))
    );
    assert!(
        checks[1]["url"].as_str().unwrap().contains("***@"),
        "{checks}"
    );

    assert_hidden("GET /v1/status", &d.status().await.to_string());
    let (status, history) = d.get_json("/v1/history?watch=shop").await;
    assert_eq!(status, 200);
    assert_hidden("GET /v1/history", &history.to_string());
    let entries = history["deployments"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "r1, r2 and the rollback: {history}");
    let mut links = Vec::new();
    for e in entries {
        let (status, ev) = d
            .get_json(&format!("/v1/verdicts/{}", e["id"].as_str().unwrap()))
            .await;
        assert_eq!(status, 200);
        assert_hidden("GET /v1/verdicts/{id}", &ev.to_string());
        links.extend(ev["links"].as_array().unwrap().iter().cloned());
        let page = page(&d, &format!("/ui/verdicts/{}", e["id"].as_str().unwrap())).await;
        assert!(page.contains("<svg"), "{page}");
        assert_hidden("the dashboard's verdict page", &page);
    }
    for path in ["/", "/ui/watches/shop"] {
        assert_hidden(path, &page(&d, path).await);
    }
    // The deployer's task and deployment links and the Prometheus graphs are there, redacted.
    for name in ["Octopus task", "deployment", "graph of check errors"] {
        let link = links
            .iter()
            .find(|l| l["name"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} link among {links:#?}"));
        assert!(link["url"].as_str().unwrap().contains("://***@"), "{link}");
    }

    d.stop().await;
    assert_hidden("the daemon's logs", &d.logs());
}
