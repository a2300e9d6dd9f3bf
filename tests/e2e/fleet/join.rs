//! A node joins a running fleet: the watches it now wins move to it (handed over, not taken
//! over after a lease), and their observations carry on where they were.

use std::collections::BTreeMap;

use backstop::fleet::plan::{owner_of, Node};

use super::*;

/// Six watches on one healthy app, long enough windows to span the join.
fn six_watches(app_url: &str) -> (Vec<String>, String) {
    let names: Vec<String> = (1..=6).map(|i| format!("w{i}")).collect();
    let toml = names
        .iter()
        .map(|w| {
            http_watch(w, app_url, "")
                .replace("window = \"1500ms\"", "window = \"12s\"")
                .replace("interval = \"100ms\"", "interval = \"200ms\"")
        })
        .collect();
    (names, toml)
}

/// The live lease owner of every watch, from the shared database.
fn lease_owners(schema: &Schema) -> BTreeMap<String, String> {
    schema
        .query("SELECT watch, owner FROM leases WHERE owner IS NOT NULL AND expires_at > now()")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Where rendezvous placement puts each watch on `nodes` (all alive, all configured alike).
fn placement(watches: &[String], nodes: &[&str]) -> BTreeMap<String, String> {
    let nodes: Vec<Node> = nodes
        .iter()
        .map(|n| Node {
            name: n.to_string(),
            watches: watches.iter().cloned().collect(),
            alive: true,
        })
        .collect();
    watches
        .iter()
        .map(|w| (w.clone(), owner_of(w, &nodes).unwrap().to_string()))
        .collect()
}

/// Waits until the lease table places every watch as `want` and every node's status agrees.
async fn placed(schema: &Schema, nodes: &[(&str, &Daemon)], want: &BTreeMap<String, String>) {
    let deadline = Instant::now() + T;
    loop {
        if lease_owners(schema) == *want {
            let mut agreed = true;
            for (w, o) in want {
                agreed &= agreed_owner(nodes, w).await == *o;
            }
            if agreed {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "not placed as {want:?}: {:?}",
            lease_owners(schema)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `backstop_verdicts_total` of `watch` with `verdict`, from one node's metrics.
fn verdicts(metrics: &str, watch: &str, verdict: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("backstop_verdicts_total{"))
        .filter(|l| l.contains(&format!("watch=\"{watch}\"")))
        .filter(|l| l.contains(&format!("verdict=\"{verdict}\"")))
        .filter_map(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_node_takes_watches_over_without_restarting_their_observations() {
    let Some(schema) = Schema::create() else {
        return;
    };
    let octo = FakeOctopus::start(API_KEY).await;
    let (_, r2) = octopus_with_a_new_release(&octo);
    let app = FakeApp::start().await;
    let (watches, toml) = six_watches(&app.url());
    let names = ["n1", "n2", "n3"];
    let setups: Vec<Setup> = names
        .iter()
        .map(|n| node_setup(&schema, n, &octo.url(), &toml))
        .collect();
    let mut daemons = start_all(&setups[..2]).await;
    {
        let two: Vec<(&str, &Daemon)> = names
            .iter()
            .copied()
            .zip(daemons.iter().flatten())
            .collect();
        placed(&schema, &two, &placement(&watches, &names[..2])).await;
        for w in &watches {
            assert_eq!(two[0].1.announce(w, &r2).await, 202);
        }
    }
    // Every watch observes, a few rounds in; remember where each observation is.
    let mut seen: BTreeMap<String, (Value, u64)> = BTreeMap::new();
    for w in &watches {
        let s = daemons[0]
            .as_ref()
            .unwrap()
            .wait_watch(w, "observing a few rounds in", T, |s| {
                observing(s) && s["observation"]["rounds"].as_u64().unwrap_or(0) >= 3
            })
            .await;
        let o = &s["observation"];
        seen.insert(w.clone(), (o["id"].clone(), o["rounds"].as_u64().unwrap()));
    }
    let before = lease_owners(&schema);
    let after = placement(&watches, &names);
    assert!(
        after.values().any(|o| o == "n3"),
        "the newcomer wins some watches: {after:?}"
    );

    daemons.push(Some(Daemon::start(&setups[2]).await));
    let all: Vec<(&str, &Daemon)> = names
        .iter()
        .copied()
        .zip(daemons.iter().flatten())
        .collect();
    // Until the watches have rebalanced, every observation its owner shows is the one it was,
    // never fewer rounds in. (Only the owner's own view: the others show the watch from the
    // database as of their last fleet round, up to a third of a lease behind.) And once the
    // newcomer shows itself as a watch's owner, no other node does.
    let mut taken: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + T;
    let owners = loop {
        // Each node's view of each watch's owner, this pass.
        let mut views: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for (node, d) in &all {
            for w in &watches {
                let s = d.watch(w).await;
                views.entry(w.clone()).or_default().push(s["owner"].clone());
                if s["owner"] != *node {
                    continue;
                }
                if *node == "n3" {
                    taken.entry(w.clone()).or_insert(s.clone());
                } else if let Some(first) = taken.get(w) {
                    panic!("{node} shows itself as the owner of {w} after n3 did:\n{s}\nn3 showed:\n{first}");
                }
                let Some(id) = s["observation"].get("id") else {
                    continue; // not published right now (mid-handover), or over
                };
                let (first_id, rounds) = seen.get_mut(w).unwrap();
                assert_eq!(id, first_id, "the observation of {w} restarted: {s}");
                let now = s["observation"]["rounds"].as_u64().unwrap();
                assert!(
                    now >= *rounds,
                    "the rounds of {w} went back from {rounds} to {now} on {node}: {s}\n{}",
                    d.logs()
                );
                *rounds = now;
            }
        }
        // Rebalanced: the lease table and every node's status show the new placement.
        let owners = lease_owners(&schema);
        if owners == after && views.iter().all(|(w, v)| v.iter().all(|o| *o == owners[w])) {
            break owners;
        }
        assert!(Instant::now() < deadline, "no rebalance: {owners:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Only the watches the newcomer wins moved, and they moved to it.
    for (w, o) in &owners {
        assert!(
            o == &before[w] || o == "n3",
            "{w} moved to {o}: {before:?} -> {owners:?}"
        );
    }
    // Each watch goes on observing on its owner from where it was, and ends verified, once.
    for w in &watches {
        let d = all.iter().find(|(n, _)| *n == owners[w]).unwrap().1;
        let (id, rounds) = seen[w].clone();
        let s = d
            .wait_watch(w, "the owner goes on observing", T, |s| {
                s["owner"] == owners[w].as_str()
                    && (s["observation"]["rounds"].as_u64().unwrap_or(0) > rounds
                        || s["last_verdict"]["verdict"] == "verified")
            })
            .await;
        if let Some(now) = s["observation"].get("id") {
            assert_eq!(now, &id, "{s}");
        }
        let s = d
            .wait_watch(w, "the release is verified", T, |s| {
                s["state"] != "observing" && s["last_verdict"]["verdict"] == "verified"
            })
            .await;
        assert_eq!(s["last_verdict"]["observation_id"], id, "{s}");
    }
    let rows = schema.query(
        "SELECT watch, count(*), count(verdict) FROM observations GROUP BY watch ORDER BY watch",
    );
    let per_watch: Vec<(String, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let once: Vec<(String, i64, i64)> = watches.iter().map(|w| (w.clone(), 1, 1)).collect();
    assert_eq!(per_watch, once, "one observation per watch, judged once");
    let mut metrics = Vec::new();
    for (_, d) in &all {
        metrics.push(d.metrics().await);
    }
    for w in &watches {
        let total: u64 = metrics.iter().map(|m| verdicts(m, w, "verified")).sum();
        assert_eq!(total, 1, "{w} verified once across the fleet");
    }
    assert_eq!(octo.post_attempts(), 0, "nothing deployed");
}
