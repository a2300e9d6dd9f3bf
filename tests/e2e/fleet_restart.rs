//! A fleet whose PostgreSQL restarts mid-observation (issue 12 §3): three real daemons on a
//! throwaway cluster of this test's own (the shared test server must stay up), a release under
//! observation, then the server stops and starts again, briefly or for longer than the lease.
//! The nodes must reconnect, the observation must carry on (same id, more rounds) and end once,
//! and nothing may be deployed twice.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::common::pg_cluster::Cluster;
use crate::fleet::agreed_owner;
use crate::harness::*;

const T: Duration = Duration::from_secs(40);
const NAMES: [&str; 3] = ["n1", "n2", "n3"];

/// One node's setup on the cluster (lease 3 s, as in `fleet.rs`).
fn node(cluster: &Cluster, name: &str, octopus_url: &str, watches: &str) -> Setup {
    let setup = Setup::new();
    let base = setup.base(octopus_url).replace(
        "[state]\n",
        &format!("[state]\nurl = \"{}\"\n", cluster.url()),
    );
    setup.write(&format!(
        "{base}\n[fleet]\nnode = \"{name}\"\nlease = \"3s\"\n{watches}"
    ));
    setup
}

/// A window (e.g. 10 s) at 100 ms rounds, long enough to outlive the outage and a lease. Nobody samples
/// while no node holds the lease (the outage, then up to a lease until a node takes it again),
/// so the default `min_samples` (half the window's rounds) would make the verdict of a long
/// outage inconclusive; 20 judged samples (2 s) still need rounds from after the restart.
fn shop(app_url: &str, window: &str) -> String {
    http_watch("shop", app_url, "")
        .replace("window = \"1500ms\"", &format!("window = \"{window}\""))
        .replace(
            "failure_limit = 3\n",
            "failure_limit = 3\nmin_samples = 20\n",
        )
}

/// A running fleet of three with a release (`r2`, after a verified `r1`) under observation.
struct Fleet {
    cluster: Arc<Cluster>,
    octo: FakeOctopus,
    app: FakeApp,
    r1: String,
    r2: String,
    _setups: Vec<Setup>,
    daemons: Vec<Daemon>,
}

impl Fleet {
    async fn observing(window: &str) -> Option<(Fleet, Value)> {
        let cluster = Cluster::start()?;
        let octo = FakeOctopus::start(API_KEY).await;
        let r1 = octo.add_release("Projects-1", "1.0.0");
        octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
        let r2 = octo.add_release("Projects-1", "1.1.0");
        let app = FakeApp::start().await;
        let watches = shop(&app.url(), window);
        let setups: Vec<Setup> = NAMES
            .iter()
            .map(|n| node(&cluster, n, &octo.url(), &watches))
            .collect();
        let mut daemons = Vec::new();
        for s in &setups {
            daemons.push(Daemon::start(s).await);
        }
        let f = Fleet {
            cluster: Arc::new(cluster),
            octo,
            app,
            r1,
            r2,
            _setups: setups,
            daemons,
        };
        let owner = f.owner().await;
        assert_eq!(f.daemons[0].announce("shop", &f.r2).await, 202);
        let w = f
            .by_name(&owner)
            .wait_watch("shop", "the owner observes the release", T, |w| {
                w["state"] == "observing" && w["observation"]["rounds"].as_u64().unwrap_or(0) >= 1
            })
            .await;
        Some((f, w))
    }

    fn by_name(&self, name: &str) -> &Daemon {
        let i = NAMES.iter().position(|n| *n == name).expect("a node");
        &self.daemons[i]
    }

    async fn owner(&self) -> String {
        let all: Vec<(&str, &Daemon)> = NAMES.iter().copied().zip(self.daemons.iter()).collect();
        agreed_owner(&all, "shop").await
    }

    /// Stops the server, keeps it down for `outage`, starts it again; returns when it is up.
    async fn restart_postgres(&self, outage: Duration, during: impl FnOnce()) -> DateTime<Utc> {
        // pg_ctl blocks: off the runtime, whose workers also serve the fakes.
        let c = Arc::clone(&self.cluster);
        tokio::task::spawn_blocking(move || c.stop_server())
            .await
            .expect("stopping the cluster");
        during();
        // The outage itself is the scenario, not a wait for a condition.
        tokio::time::sleep(outage).await;
        let c = Arc::clone(&self.cluster);
        tokio::task::spawn_blocking(move || c.start_server())
            .await
            .expect("starting the cluster");
        Utc::now()
    }

    /// Waits until every node answers its status and lists all three nodes alive with a
    /// heartbeat sent after `since` (the view from before the outage does not count).
    async fn all_reconnected(&self, since: DateTime<Utc>) {
        let deadline = Instant::now() + T;
        for (name, d) in NAMES.iter().zip(&self.daemons) {
            loop {
                let status = d.status().await;
                let nodes = status["fleet"]["nodes"].as_array().cloned();
                let fresh = nodes.as_ref().is_some_and(|nodes| {
                    nodes.len() == 3
                        && nodes.iter().all(|n| {
                            n["alive"] == true
                                && n["heartbeat_at"]
                                    .as_str()
                                    .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                                    .is_some_and(|t| t > since)
                        })
                });
                if fresh {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} never saw the whole fleet alive again: {:#}\nlogs:\n{}",
                    status["fleet"],
                    d.logs()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }

    /// Fleet rounds (heartbeat and lease renewal) that failed more than `GRACE` after the
    /// server was up again: a node still unable to use the database then has not reconnected
    /// (dead connections kept, or a backoff longer than a lease can afford).
    fn rounds_failed_after(&self, up: DateTime<Utc>) -> Vec<String> {
        const GRACE: chrono::TimeDelta = chrono::TimeDelta::milliseconds(1500);
        self.daemons
            .iter()
            .zip(NAMES)
            .flat_map(|(d, n)| {
                d.logs()
                    .lines()
                    .filter(|l| l.contains("fleet round failed"))
                    .filter(|l| {
                        l.split_whitespace()
                            .next()
                            .and_then(|t| t.parse::<DateTime<Utc>>().ok())
                            .is_some_and(|t| t > up + GRACE)
                    })
                    .map(|l| format!("{n}: {l}"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Waits until the observation `id` has judged more than `rounds` rounds, as its owner
    /// (whoever that is now) reports it.
    async fn rounds_continue(&self, id: &str, rounds: u64) {
        let owner = self.owner().await;
        self.by_name(&owner)
            .wait_watch("shop", "the observation carries on", T, |w| {
                w["observation"]["id"] == id
                    && w["observation"]["rounds"].as_u64().unwrap_or(0) > rounds
            })
            .await;
    }

    /// Sum over the nodes of a counter's samples whose line starts with `prefix`.
    async fn counter(&self, prefix: &str) -> u64 {
        let mut total = 0.0;
        for d in &self.daemons {
            total += d
                .metrics()
                .await
                .lines()
                .filter(|l| l.starts_with(prefix))
                .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
                .sum::<f64>();
        }
        total as u64
    }

    async fn history(&self) -> Vec<Value> {
        let (_, h) = self.daemons[0].get_json("/v1/history?watch=shop").await;
        h["deployments"].as_array().cloned().unwrap_or_default()
    }

    fn logs(&self) -> String {
        self.daemons
            .iter()
            .zip(NAMES)
            .map(|(d, n)| format!("--- {n}\n{}", d.logs()))
            .collect::<String>()
            + "--- postgres\n"
            + &self.cluster.logs()
    }
}

/// A healthy release under observation while the server is down for `outage`: the fleet
/// reconnects, the same observation carries on and is verified once, nothing is deployed.
async fn healthy_release_survives(outage: Duration, window: &str) {
    let Some((f, w)) = Fleet::observing(window).await else {
        return;
    };
    let id = w["observation"]["id"].as_str().unwrap().to_string();
    let before = f.owner().await;
    let rounds = f.by_name(&before).watch("shop").await["observation"]["rounds"]
        .as_u64()
        .unwrap();
    let up = f.restart_postgres(outage, || {}).await;
    f.all_reconnected(up).await;
    let late = f.rounds_failed_after(up);
    assert!(
        late.is_empty(),
        "rounds failed with the server up: {late:#?}"
    );
    f.rounds_continue(&id, rounds).await;
    let owner = f.owner().await;
    let w = f
        .by_name(&owner)
        .wait_watch("shop", "the release is verified", T, |w| {
            w["state"] == "idle" && w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["current_release"], f.r2.as_str(), "{w}");
    assert_eq!(w["last_good_release"], f.r2.as_str(), "{w}");
    let ours: Vec<Value> = f
        .history()
        .await
        .into_iter()
        .filter(|e| e["release"] == f.r2.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "one observation of the release: {ours:#?}");
    assert_eq!(
        ours[0]["id"],
        id.as_str(),
        "the same observation: {ours:#?}"
    );
    assert_eq!(ours[0]["verdict"], "verified", "{ours:#?}");
    assert_eq!(
        f.counter("backstop_verdicts_total{").await,
        1,
        "one verdict in the whole fleet\n{}",
        f.logs()
    );
    assert!(f.octo.created_deployments().is_empty(), "nothing deployed");
    assert_eq!(f.octo.post_attempts(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_observation_loses_nothing() {
    healthy_release_survives(Duration::from_secs(2), "10s").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_longer_than_the_lease_loses_nothing() {
    healthy_release_survives(Duration::from_secs(5), "10s").await;
}

/// Long enough for the pool's reconnection backoff to grow past a lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_of_15_s_loses_nothing() {
    healthy_release_survives(Duration::from_secs(15), "30s").await;
}

/// The release turns bad while the server is down (longer than the lease): once it is back,
/// the release is condemned and rolled back exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_turns_bad_during_an_outage_is_rolled_back_once() {
    let Some((f, w)) = Fleet::observing("10s").await else {
        return;
    };
    let id = w["observation"]["id"].as_str().unwrap().to_string();
    let up = f
        .restart_postgres(Duration::from_secs(5), || f.app.set_health(503))
        .await;
    // Healthy again as soon as the rollback is made, or its own observation condemns it.
    f.octo.wait_for_created(1, T).await;
    f.app.set_health(200);
    f.all_reconnected(up).await;
    let owner = f.owner().await;
    let w = f
        .by_name(&owner)
        .wait_watch("shop", "the rollback succeeded", T, |w| {
            w["rollback"]["state"] == "succeeded"
        })
        .await;
    assert_eq!(w["current_release"], f.r1.as_str(), "{w}");
    // The rollback is observed in turn; once that ends nothing else can start one.
    f.by_name(&owner)
        .wait_watch("shop", "the rollback's observation ends", T, |w| {
            w["state"] == "idle"
        })
        .await;
    let created = f.octo.created_deployments();
    assert_eq!(created.len(), 1, "exactly one rollback\n{}", f.logs());
    assert_eq!(created[0]["ReleaseId"], f.r1.as_str());
    assert_eq!(f.octo.post_attempts(), 1);
    let condemned: Vec<Value> = f
        .history()
        .await
        .into_iter()
        .filter(|e| e["release"] == f.r2.as_str())
        .collect();
    assert_eq!(condemned.len(), 1, "{condemned:#?}");
    assert_eq!(condemned[0]["id"], id.as_str());
    assert_eq!(condemned[0]["verdict"], "condemned", "{condemned:#?}");
}
