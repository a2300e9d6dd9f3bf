//! Any node of a fleet answers for every watch: status with the owner, and pause/resume sent to
//! a node that does not run the watch reach the one that does.

use std::time::Duration;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::fleet::{agreed_owner, node_setup, Schema};
use crate::harness::*;

const T: Duration = Duration::from_secs(30);

async fn post(d: &Daemon, path: &str) -> reqwest::StatusCode {
    d.http()
        .post(format!("{}{path}", d.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_through_a_node_that_does_not_run_the_watch() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let octo = FakeOctopus::start(API_KEY).await;
    let app = FakeApp::start().await;
    let watches = http_watch("shop", &app.url(), "");
    let (sa, sb) = (
        node_setup(&schema, "a", &octo.url(), &watches),
        node_setup(&schema, "b", &octo.url(), &watches),
    );
    let a = Daemon::start(&sa).await;
    let b = Daemon::start(&sb).await;
    let owner = agreed_owner(&[("a", &a), ("b", &b)], "shop").await;
    let (runs, other) = if owner == "a" { (&a, &b) } else { (&b, &a) };

    assert_eq!(post(other, "/v1/watches/shop/pause").await, 202);
    for d in [runs, other] {
        let w = d
            .wait_watch("shop", "paused, seen from every node", T, |w| {
                w["state"] == "paused"
            })
            .await;
        assert_eq!(w["owner"], owner.as_str(), "{w}");
    }
    assert_eq!(post(other, "/v1/watches/shop/resume").await, 202);
    runs.wait_watch("shop", "resumed", T, |w| w["state"] == "idle")
        .await;
    assert_eq!(post(other, "/v1/watches/nope/pause").await, 404);
    // The fleet is in every node's status and /metrics.
    let s = other.status().await;
    assert_eq!(s["fleet"]["node"], if owner == "a" { "b" } else { "a" });
    assert_eq!(s["fleet"]["nodes"].as_array().unwrap().len(), 2, "{s}");
    let m = other.metrics().await;
    assert!(m.contains("backstop_fleet_nodes 2"), "{m}");
    assert!(m.contains("backstop_fleet_unowned_watches 0"), "{m}");
    assert!(
        m.contains(&format!("backstop_watches_owned{{node=\"{owner}\"}} 1")),
        "{m}"
    );
    // The CLI's table names the owner.
    let (st, out, err) = run_cli(&["status", "--url", &other.url], std::path::Path::new("."));
    assert!(st.success(), "{err}");
    assert!(out.contains("OWNER"), "{out}");
    assert!(out.contains(&format!("shop   {owner}")), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_with_sigterm_hands_its_watches_over_instead_of_letting_them_expire() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let octo = FakeOctopus::start(API_KEY).await;
    let app = FakeApp::start().await;
    let watches = http_watch("shop", &app.url(), "");
    let (sa, sb) = (
        node_setup(&schema, "a", &octo.url(), &watches),
        node_setup(&schema, "b", &octo.url(), &watches),
    );
    let mut a = Daemon::start(&sa).await;
    let mut b = Daemon::start(&sb).await;
    let owner = agreed_owner(&[("a", &a), ("b", &b)], "shop").await;
    let (leaving, staying) = if owner == "a" {
        (&mut a, &b)
    } else {
        (&mut b, &a)
    };
    let status = leaving.stop().await;
    assert!(status.success(), "{}", leaving.logs());
    assert!(
        leaving.logs().contains("left the fleet"),
        "{}",
        leaving.logs()
    );
    let w = staying
        .wait_watch("shop", "the other node runs it", T, |w| {
            w["owner"].as_str().is_some_and(|o| o != owner)
        })
        .await;
    assert_eq!(w["state"], "idle");
    // Given up, not expired: the other node counts no takeover, and the leaving node's row
    // is gone from the fleet at once.
    let m = staying.metrics().await;
    assert!(m.contains("backstop_lease_takeovers_total 0"), "{m}");
    let nodes = schema.query("SELECT name FROM nodes");
    assert_eq!(nodes.len(), 1);
}
