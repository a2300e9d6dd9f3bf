//! A fleet: several real `backstop` daemons on one real PostgreSQL (tests/postgres.sh starts it
//! and sets `BACKSTOP_TEST_POSTGRES_URL`; without it these tests say so and pass). Each test
//! gets its own schema, so tests run side by side on one server.
//!
//! Here: the helpers and kill -9 of the owner (mid-observation, and with its create in flight);
//! `fencing`: a paused owner resumes after its lease and must do nothing; `join`: a node joins
//! and watches move to it without restarting their observations.

mod fencing;
mod join;

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::*;

const T: Duration = Duration::from_secs(40);

/// Runs a blocking PostgreSQL client call off the test's runtime (the blocking client runs
/// its own and refuses to start inside another).
fn off_runtime<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(f)
        .join()
        .expect("database call panicked")
}

/// A fresh schema on the test server, dropped when the test ends.
pub struct Schema {
    base: String,
    pub name: String,
}

impl Schema {
    /// `None` (and a note on stderr) when no test server is configured.
    pub fn create() -> Option<Schema> {
        let Ok(base) = std::env::var("BACKSTOP_TEST_POSTGRES_URL") else {
            eprintln!("skipped: BACKSTOP_TEST_POSTGRES_URL not set (tests/postgres.sh sets it)");
            return None;
        };
        let name = format!("fleet_{:016x}", fastrand::u64(..));
        let (b, n) = (base.clone(), name.clone());
        off_runtime(move || {
            let mut c = postgres::Client::connect(&b, postgres::NoTls).expect("test server");
            c.batch_execute(&format!("CREATE SCHEMA {n}")).unwrap();
        });
        Some(Schema { base, name })
    }

    /// The URL a daemon uses: the test server, with this schema first on the search path.
    pub fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }

    /// Runs SQL in the schema (for assertions on what was written).
    pub fn query(&self, sql: &str) -> Vec<postgres::Row> {
        let (url, sql) = (self.url(), sql.to_string());
        off_runtime(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.query(&sql, &[]).unwrap()
        })
    }

    /// Runs statements in the schema.
    pub fn execute(&self, sql: &str) {
        let (url, sql) = (self.url(), sql.to_string());
        off_runtime(move || {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&sql).unwrap()
        })
    }

    /// From now on, every row written to a watch's state tables is recorded in `audit` with
    /// the writing connection's `application_name` (each node's URL names its node, see
    /// [`node_setup`]). A write refused by the fence never reaches its table, so it leaves no
    /// audit row. Call once the first node has created the tables.
    pub fn audit_writes(&self) {
        let s = &self.name;
        let mut sql = format!(
            "CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
               node text NOT NULL, tbl text NOT NULL, op text NOT NULL);
             CREATE FUNCTION audit_write() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
               INSERT INTO {s}.audit (node, tbl, op)
               VALUES (current_setting('application_name'), TG_TABLE_NAME, TG_OP);
               RETURN NULL;
             END $$;"
        );
        for t in STATE_TABLES {
            sql += &format!(
                "CREATE TRIGGER audit_{t} AFTER INSERT OR UPDATE OR DELETE ON {s}.{t} \
                 FOR EACH ROW EXECUTE FUNCTION {s}.audit_write();"
            );
        }
        self.execute(&sql);
    }

    /// The last audit row's id (0 when none).
    pub fn audit_mark(&self) -> i64 {
        self.query("SELECT coalesce(max(id), 0) FROM audit")[0].get(0)
    }

    /// (table, operation) of every write `node` made after audit row `after`.
    pub fn writes_by(&self, node: &str, after: i64) -> Vec<(String, String)> {
        self.query(&format!(
            "SELECT tbl, op FROM audit WHERE node = '{node}' AND id > {after} ORDER BY id"
        ))
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    }
}

/// The tables holding a watch's state: a node that lost the lease must not write any of them.
const STATE_TABLES: [&str; 9] = [
    "watches",
    "observations",
    "rollbacks",
    "outbox",
    "evidence",
    "evidence_series",
    "quarantine",
    "seen_deployments",
    "scrape_history",
];

impl Drop for Schema {
    fn drop(&mut self) {
        let (base, name) = (self.base.clone(), self.name.clone());
        off_runtime(move || {
            if let Ok(mut c) = postgres::Client::connect(&base, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA {name} CASCADE"));
            }
        });
    }
}

/// One node's setup: its own directory and port, the shared database (connecting with the
/// node's name as `application_name`, for [`Schema::audit_writes`]), its `[fleet]` name.
pub fn node_setup(schema: &Schema, node: &str, octopus_url: &str, watches: &str) -> Setup {
    let setup = Setup::new();
    let base = setup.base(octopus_url).replace(
        "[state]\n",
        &format!(
            "[state]\nurl = \"{}&application_name={node}\"\n",
            schema.url()
        ),
    );
    setup.write(&format!(
        "{base}\n[fleet]\nnode = \"{node}\"\nlease = \"3s\"\n{watches}"
    ));
    setup
}

/// The node that holds the watch's lease, as a node's status says.
pub async fn owner(d: &Daemon, watch: &str) -> Option<String> {
    d.watch(watch).await["owner"].as_str().map(str::to_string)
}

/// Waits until every daemon's status agrees on one owner of `watch`, and returns it.
pub async fn agreed_owner(nodes: &[(&str, &Daemon)], watch: &str) -> String {
    let deadline = Instant::now() + T;
    loop {
        let mut seen = Vec::new();
        for (_, d) in nodes {
            seen.push(owner(d, watch).await);
        }
        if let Some(Some(first)) = seen.first() {
            if seen.iter().all(|o| o.as_deref() == Some(first)) {
                return first.clone();
            }
        }
        assert!(
            Instant::now() < deadline,
            "no agreed owner of {watch}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A bad release's http watch: warmup long enough that the owner can be killed mid-observation.
fn shop(app_url: &str) -> String {
    shop_with(app_url, "", "6s")
}

/// [`shop`] with extra watch keys and its own window.
pub fn shop_with(app_url: &str, extra: &str, window: &str) -> String {
    http_watch("shop", app_url, extra)
        .replace("warmup = \"0s\"", "warmup = \"1s\"")
        .replace("window = \"1500ms\"", &format!("window = \"{window}\""))
}

/// Starts one daemon per setup, one after the other.
pub async fn start_all(setups: &[Setup]) -> Vec<Option<Daemon>> {
    let mut daemons = Vec::new();
    for s in setups {
        daemons.push(Some(Daemon::start(s).await));
    }
    daemons
}

/// Waits until `line` shows in the daemon's log.
pub async fn wait_log(d: &Daemon, line: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !d.logs().contains(line) {
        assert!(
            Instant::now() < deadline,
            "no {line:?} in the log:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Octopus with release 1.0.0 deployed and 1.1.0 (returned) ready to be announced.
pub fn octopus_with_a_new_release(octo: &FakeOctopus) -> (String, String) {
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    (r1, r2)
}

pub fn observing(w: &Value) -> bool {
    w["state"] == "observing" && w["observation"]["rounds"].as_u64().unwrap_or(0) >= 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_mid_observation_fails_over_and_rolls_back_once() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeApp::start().await;
    let watches = shop(&app.url());
    let names = ["n1", "n2", "n3"];
    let setups: Vec<Setup> = names
        .iter()
        .map(|n| node_setup(&schema, n, &octo.url(), &watches))
        .collect();
    let mut daemons = Vec::new();
    for s in &setups {
        daemons.push(Some(Daemon::start(s).await));
    }
    let all: Vec<(&str, &Daemon)> = names
        .iter()
        .copied()
        .zip(daemons.iter().map(|d| d.as_ref().unwrap()))
        .collect();
    let first = agreed_owner(&all, "shop").await;
    // Announced to a node that is not the owner: the trigger reaches the owner through the
    // database.
    let (i_owner, _) = all
        .iter()
        .enumerate()
        .find(|(_, (n, _))| *n == first)
        .unwrap();
    let other = all[(i_owner + 1) % 3].1;
    assert_eq!(other.announce("shop", &r2).await, 202);
    let owner_daemon = all[i_owner].1;
    owner_daemon
        .wait_watch("shop", "the owner observes the release", T, observing)
        .await;
    drop(all);
    // The owner dies mid-observation, and the release turns bad: only a takeover can catch it.
    let started = Instant::now();
    daemons[i_owner].take().unwrap().kill9();
    app.set_health(503);
    octo.wait_for_created(1, T).await;
    app.set_health(200);

    let survivors: Vec<&Daemon> = daemons.iter().flatten().collect();
    let w = survivors[0]
        .wait_watch("shop", "another node rolled back", T, |w| {
            // The intent's progress shows before the lifecycle takes its outcome in: wait for
            // the release too.
            w["rollback"]["state"] == "succeeded"
                && w["current_release"] == r1.as_str()
                && w["owner"].as_str().is_some_and(|o| o != first)
        })
        .await;
    let took = started.elapsed();
    assert_eq!(w["current_release"], r1.as_str(), "{w}");
    assert_eq!(octo.created_deployments().len(), 1, "exactly one rollback");
    assert_eq!(octo.post_attempts(), 1);
    // Taken over within the lease (3s) plus the rest of the observation; generous bound.
    assert!(took < Duration::from_secs(20), "failover took {took:?}");
    let survivor_owner = w["owner"].as_str().unwrap().to_string();
    let takeovers: u64 = survivors
        .iter()
        .map(|d| async move { d.metrics().await })
        .collect::<futures_util::future::JoinAll<_>>()
        .await
        .iter()
        .filter_map(|m| {
            m.lines()
                .find(|l| l.starts_with("backstop_lease_takeovers_total "))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map(|v| v as u64)
        .sum();
    assert_eq!(takeovers, 1, "one node took the lease over");
    // The fleet view lists the dead node as not alive once its heartbeat is a lease old.
    let status = survivors[0].status().await;
    assert!(
        status["fleet"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == first.as_str()),
        "{status}"
    );
    assert_ne!(survivor_owner, first);
    // One deploy intent in the shared database, and the lease moved on with a new epoch.
    let intents: i64 = schema.query("SELECT count(*) FROM rollbacks")[0].get(0);
    assert_eq!(intents, 1);
    let lease = schema.query("SELECT owner, epoch FROM leases WHERE watch = 'shop'");
    let (o, epoch): (String, i64) = (lease[0].get(0), lease[0].get(1));
    assert_eq!(o, survivor_owner);
    assert!(epoch >= 2, "epoch {epoch}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_owner_during_a_late_committing_create_adopts_it_once() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let octo = FakeOctopus::start(API_KEY).await;
    let (r1, r2) = octopus_with_a_new_release(&octo);
    let app = FakeApp::start().await;
    let watches = shop(&app.url());
    let names = ["n1", "n2", "n3"];
    // A settle period (8s, searched every 2s) that outlasts the takeover (2-4s after the kill:
    // the rest of the lease, then the survivors' next fleet round).
    let setups: Vec<Setup> = names
        .iter()
        .map(|n| {
            let s = node_setup(&schema, n, &octo.url(), &watches);
            let toml = std::fs::read_to_string(s.config_path()).unwrap();
            s.write(&toml.replace("settle = \"3s\"", "settle = \"8s\""));
            s
        })
        .collect();
    let mut daemons = start_all(&setups).await;
    let all: Vec<(&str, &Daemon)> = names
        .iter()
        .copied()
        .zip(daemons.iter().map(|d| d.as_ref().unwrap()))
        .collect();
    let first = agreed_owner(&all, "shop").await;
    let i_owner = names.iter().position(|n| *n == first).unwrap();
    let owner_daemon = all[i_owner].1;
    assert_eq!(owner_daemon.announce("shop", &r2).await, 202);
    owner_daemon
        .wait_watch("shop", "the owner observes the release", T, observing)
        .await;
    drop(all);
    // The rollback's create is stored when it arrives, shows in the API only 6s later (after
    // the takeover, within the client's timeout plus the settle period, 1s + 8s) and is
    // answered after 30s: the owner dies with the call in flight and its outcome unknown, and
    // the new owner's first marker search comes back without it.
    octo.commit_late_next_posts(1, Duration::from_secs(30), Duration::from_secs(6));
    app.set_health(503);
    let created = octo.wait_for_created(1, T).await;
    daemons[i_owner].take().unwrap().kill9();
    app.set_health(200);

    let survivors: Vec<&Daemon> = daemons.iter().flatten().collect();
    let w = survivors[0]
        .wait_watch("shop", "another node finished the rollback", T, |w| {
            // The intent's progress shows before the lifecycle takes its outcome in: wait for
            // the release too.
            w["rollback"]["state"] == "succeeded"
                && w["current_release"] == r1.as_str()
                && w["owner"].as_str().is_some_and(|o| o != first)
        })
        .await;
    // The intent was resolved by its marker: the deployment the dead owner's call made was
    // adopted, none was posted again.
    assert_eq!(w["rollback"]["deployment_id"], created[0]["Id"], "{w}");
    assert_eq!(w["current_release"], r1.as_str(), "{w}");
    assert_eq!(octo.created_deployments().len(), 1, "exactly one rollback");
    assert_eq!(octo.post_attempts(), 1, "the new owner made no create");
    let intents = schema.query("SELECT body::text FROM rollbacks");
    assert_eq!(intents.len(), 1);
    let intent: Value = serde_json::from_str(intents[0].get(0)).unwrap();
    assert_eq!(intent["state"], "succeeded", "{intent}");
    assert!(
        intent["duplicates"].as_array().is_none_or(|d| d.is_empty()),
        "{intent}"
    );
    // The new owner searched more than once: the first search did not show the create, and
    // the settle period kept it from posting again until the create showed.
    let new_owner = survivors
        .iter()
        .find(|d| d.logs().contains("resuming an unfinished rollback"))
        .expect("a survivor resumed the dead owner's intent");
    let searches = new_owner
        .logs()
        .matches("searched deployments for the intent's marker")
        .count();
    assert!(searches >= 2, "{}", new_owner.logs());
    let marker = intent["marker"].as_str().unwrap();
    assert!(
        created[0]["Comments"].as_str().unwrap().contains(marker),
        "{intent}"
    );
}
