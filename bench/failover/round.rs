//! One side's rounds: start the nodes, then per round deploy a bad release, maybe kill its
//! owner, and time the rollback by the fake Octopus's clock.

use std::time::{Duration, Instant};

use backstop::fleet::plan;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::{http_watch, Daemon, Setup, API_KEY};
use crate::{DEADLINE, INTERVAL, LEASE};

/// When in the bad deployment's life the owner dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Before the release turns bad: only a takeover can catch it.
    Observing,
    /// Between the first failing sample and the condemn (a kill that comes after the rollback
    /// was created is not made: the round is reported with no kill).
    Condemn,
    /// The rollback's create has reached Octopus, its answer has not reached the owner.
    InFlight,
}

/// The bad release turns bad this long after its deployment.
const BAD_AFTER: Duration = Duration::from_millis(300);
/// How long the create in flight stays unanswered.
const HANG: Duration = Duration::from_secs(5);
/// The longest wait for a settled fleet between rounds.
const SETTLE_WAIT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, serde::Serialize)]
pub struct Round {
    pub release: String,
    pub phase: Option<Phase>,
    /// When the owner was killed, seconds after the bad deployment (None: nobody was).
    pub killed_at_s: Option<f64>,
    /// Bad deployment → rollback created, by the fake's clock; None: missed.
    pub to_post_s: Option<f64>,
    /// Bad deployment → a node reports the rollback succeeded (after any settle search).
    pub to_done_s: Option<f64>,
    /// Deployments created for this bad one (1 is right, more are duplicates).
    pub creates: usize,
}

/// The watch: 500 ms rounds, three failures condemn, a window that outlives a failover; every
/// round rolls back, so the loop guard (3 automatic deploys an hour by default) is raised.
fn watch(app_url: &str) -> String {
    http_watch("shop", app_url, "max_actions = 1000")
        .replace("window = \"1500ms\"", "window = \"8s\"")
        .replace(
            "interval = \"100ms\"",
            &format!("interval = \"{}ms\"", INTERVAL.as_millis()),
        )
        .replace("timeout = \"80ms\"", "timeout = \"400ms\"")
}

fn setup(url: &str, node: &str, octopus_url: &str, watches: &str) -> Setup {
    let setup = Setup::new();
    let base = setup
        .base(octopus_url)
        .replace("[state]\n", &format!("[state]\nurl = \"{url}\"\n"));
    setup.write(&format!(
        "{base}\n[fleet]\nnode = \"{node}\"\nlease = \"{}s\"\n{watches}",
        LEASE.as_secs()
    ));
    setup
}

fn created_at(d: &Value) -> DateTime<Utc> {
    d["Created"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("a deployment's Created")
}

/// The fleet of one side.
struct Nodes {
    names: Vec<String>,
    setups: Vec<Setup>,
    daemons: Vec<Option<Daemon>>,
}

impl Nodes {
    fn live(&self) -> impl Iterator<Item = &Daemon> {
        self.daemons.iter().flatten()
    }

    fn logs(&self) -> String {
        self.live()
            .zip(&self.names)
            .map(|(d, n)| format!("--- {n}\n{}", d.logs()))
            .collect()
    }

    /// Waits until every node lists every node alive and agrees that the watch's owner is the
    /// node placement gives it to (so no handover is pending, e.g. to a node just restarted),
    /// and the watch is idle: the next round starts from a quiet fleet. Returns the owner's
    /// index.
    async fn settled(&self) -> usize {
        let deadline = Instant::now() + SETTLE_WAIT;
        loop {
            let mut owners = Vec::new();
            let mut all_alive = true;
            for d in self.live() {
                let s = d.status().await;
                let alive = s["fleet"]["nodes"]
                    .as_array()
                    .map_or(0, |n| n.iter().filter(|n| n["alive"] == true).count());
                all_alive &= alive == self.names.len();
                let w = s["watches"]
                    .as_array()
                    .and_then(|ws| ws.iter().find(|w| w["name"] == "shop").cloned())
                    .unwrap_or(Value::Null);
                owners.push((w["owner"].as_str().map(str::to_string), w["state"].clone()));
            }
            if let Some((Some(first), _)) = owners.first() {
                let agreed = owners.iter().all(|(o, _)| o.as_deref() == Some(first));
                let idle = owners.iter().all(|(_, s)| s == "idle");
                if agreed && idle && all_alive && first == self.winner() {
                    return self.names.iter().position(|n| n == first).unwrap();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the fleet did not settle: {owners:?}\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node placement gives the watch to when every node is alive.
    fn winner(&self) -> &str {
        let nodes: Vec<plan::Node> = self
            .names
            .iter()
            .map(|name| plan::Node {
                name: name.clone(),
                watches: ["shop".to_string()].into(),
                alive: true,
            })
            .collect();
        let w = plan::owner_of("shop", &nodes).expect("a winner");
        self.names.iter().find(|n| *n == w).unwrap()
    }

    /// Whether any live node reports the rollback of `release` succeeded.
    async fn rolled_back(&self, release: &str) -> bool {
        for d in self.live() {
            let w = d.watch("shop").await;
            if w["rollback"]["condemned_release"] == release
                && w["rollback"]["state"] == "succeeded"
            {
                return true;
            }
        }
        false
    }
}

/// Runs `rounds` bad deployments on a fleet of `n` nodes; with `rng`, kills the owner in each.
pub async fn run(
    url: &str,
    n: usize,
    rounds: usize,
    mut rng: Option<&mut fastrand::Rng>,
) -> Vec<Round> {
    let octo = FakeOctopus::start(API_KEY).await;
    let r0 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r0, "Success");
    let app = FakeApp::start().await;
    let watches = watch(&app.url());
    let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let setups: Vec<Setup> = names
        .iter()
        .map(|name| setup(url, name, &octo.url(), &watches))
        .collect();
    let mut daemons = Vec::new();
    for s in &setups {
        daemons.push(Some(Daemon::start(s).await));
    }
    let mut nodes = Nodes {
        names,
        setups,
        daemons,
    };
    let mut out: Vec<Round> = Vec::new();
    for k in 0..rounds {
        let owner = nodes.settled().await;
        let before = octo.created_deployments().len();
        if let Some(last) = out.last_mut() {
            last.creates = before - last.creates;
        }
        let phase = rng.as_deref_mut().map(|r| match r.usize(0..3) {
            0 => Phase::Observing,
            1 => Phase::Condemn,
            _ => Phase::InFlight,
        });
        let kill_at = match phase {
            Some(Phase::Observing) => Some(Duration::from_millis(
                rng.as_deref_mut().unwrap().u64(0..300),
            )),
            Some(Phase::Condemn) => {
                // From the first failing round to the third (the condemn): on a single node the
                // rollback is created about 1.5 s after the deployment.
                Some(BAD_AFTER + INTERVAL.mul_f64(1.0 + 1.6 * rng.as_deref_mut().unwrap().f64()))
            }
            _ => None,
        };
        if phase == Some(Phase::InFlight) {
            octo.hang_next_posts(1, HANG);
        }
        let posts = octo.post_attempts();
        let release = octo.add_release("Projects-1", &format!("1.{}.0", k + 1));
        let dep = octo.add_deployment("Projects-1", "Environments-1", &release, "Success");
        let t0 = created_at(
            octo.deployments()
                .iter()
                .find(|d| d["Id"] == dep.as_str())
                .expect("the bad deployment"),
        );
        let start = Instant::now();
        let announced = nodes
            .live()
            .next()
            .unwrap()
            .announce("shop", &release)
            .await;
        assert_eq!(announced, 202, "announce");
        let mut killed: Option<(usize, f64)> = None;
        let mut bad = false;
        let mut to_post = None;
        while start.elapsed() < DEADLINE {
            let now = start.elapsed();
            if !bad && now >= BAD_AFTER {
                app.set_health(503);
                bad = true;
            }
            let due = match (phase, kill_at) {
                (Some(Phase::InFlight), _) => octo.post_attempts() > posts,
                (Some(_), Some(at)) => now >= at,
                _ => false,
            };
            if due && killed.is_none() {
                nodes.daemons[owner].take().unwrap().kill9();
                killed = Some((owner, (Utc::now() - t0).as_seconds_f64()));
            }
            let created = octo.created_deployments();
            if created.len() > before {
                app.set_health(200);
                to_post = Some((created_at(&created[before]) - t0).as_seconds_f64());
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        app.set_health(200);
        let mut to_done = None;
        if to_post.is_some() {
            while start.elapsed() < DEADLINE * 2 {
                if nodes.rolled_back(&release).await {
                    to_done = Some((Utc::now() - t0).as_seconds_f64());
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if std::env::var_os("FAILOVER_DEBUG").is_some() {
            for (d, name) in nodes.daemons.iter().zip(&nodes.names) {
                let Some(d) = d else { continue };
                for l in d.logs().lines().filter(|l| {
                    ["took", "created", "condemned", "lease", "intent", "resum"]
                        .iter()
                        .any(|w| l.contains(w))
                }) {
                    eprintln!("{name}: {l}");
                }
            }
        }
        if let Some((i, _)) = killed {
            nodes.daemons[i] = Some(Daemon::start(&nodes.setups[i]).await);
        }
        eprintln!(
            "failover: round {k}: {phase:?} killed {:?} → rollback created after {to_post:?} s, reported done after {to_done:?} s",
            killed.map(|(_, at)| at)
        );
        out.push(Round {
            release,
            phase,
            killed_at_s: killed.map(|(_, at)| at),
            to_post_s: to_post,
            to_done_s: to_done,
            // Made a count at the next round's start (or below), once late creates had time.
            creates: before,
        });
    }
    nodes.settled().await;
    let total = octo.created_deployments().len();
    if let Some(last) = out.last_mut() {
        last.creates = total - last.creates;
    }
    out
}
