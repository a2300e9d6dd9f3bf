//! Benchmark 5, failover (issue 12 §3): three real `backstop` nodes on one PostgreSQL (a
//! throwaway cluster of the benchmark's own), the Octopus fake and a fake app. Each round
//! deploys a bad release, kills (-9) the watch's owner at a random moment of that deployment's
//! life (seeded: during the observation, around the condemn, or with the rollback's create in
//! flight), and measures the time from the bad deployment to the rollback's creation, both
//! timestamps taken by the fake Octopus, against a single node that nobody kills. It counts
//! duplicate rollbacks (more than one create for one bad deployment) and missed ones (none
//! within [`DEADLINE`]). The killed node is restarted once the round's rollback is made.
//!
//! ```sh
//! cargo bench --bench failover -- --rounds 20 --seed 1 --json bench/results/failover.json
//! ```
//!
//! `cargo test --all-targets` runs it without `--bench`: a smoke run of 2 rounds per side.
//! Without PostgreSQL server binaries (`BACKSTOP_TEST_PG_BIN`, or /usr/local/bin) it says so
//! and exits 0. The daemon is the binary cargo built with the benchmark (release under
//! `cargo bench`).

#[path = "../../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../tests/e2e/harness.rs"]
mod harness;
mod report;
mod round;

use std::time::Duration;

use common::pg_cluster::Cluster;

/// The fleet's lease, as in the e2e fleet tests.
pub const LEASE: Duration = Duration::from_secs(3);
/// The watch's check interval.
pub const INTERVAL: Duration = Duration::from_millis(500);
/// The deployer's `settle` (harness default): how long an unknown create is searched for.
pub const SETTLE: Duration = Duration::from_secs(3);
/// A round without a rollback by then counts as missed.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// Rounds per side when run without `--bench`.
const SMOKE_ROUNDS: usize = 2;

struct Options {
    rounds: usize,
    seed: u64,
    json: Option<std::path::PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        rounds: 20,
        seed: 1,
        json: None,
    };
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs the binary without it.
    if !std::env::args().any(|a| a == "--bench") {
        o.rounds = SMOKE_ROUNDS;
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--rounds" => {
                o.rounds = value("--rounds")?
                    .parse()
                    .map_err(|e| format!("--rounds: {e}"))?
            }
            "--seed" => {
                o.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--json" => o.json = Some(value("--json")?.into()),
            "--bench" => {}
            "-h" | "--help" => {
                println!("usage: failover [--rounds N] [--seed S] [--json PATH]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// A database of its own on the cluster for each side, so the sides share nothing.
fn create_database(cluster: &Cluster, name: &str) -> String {
    let mut c = postgres::Client::connect(&cluster.url(), postgres::NoTls).expect("cluster");
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create database");
    format!("postgres://postgres@127.0.0.1:{}/{name}", cluster.port)
}

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("failover: {e}");
            std::process::exit(2);
        }
    };
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let baseline_url = create_database(&cluster, "baseline");
    let fleet_url = create_database(&cluster, "failover");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let started = std::time::Instant::now();
    let work = async {
        eprintln!("failover: baseline, 1 node, {} rounds", o.rounds);
        let baseline = round::run(&baseline_url, 1, o.rounds, None).await;
        eprintln!(
            "failover: 3 nodes, {} rounds, owner killed (seed {})",
            o.rounds, o.seed
        );
        let mut rng = fastrand::Rng::with_seed(o.seed);
        let failover = round::run(&fleet_url, 3, o.rounds, Some(&mut rng)).await;
        (baseline, failover)
    };
    // On SIGTERM or SIGINT (bench/run.sh stops its driver's children so) the work is dropped,
    // which kills the daemons, and the cluster is stopped below: nothing is left running.
    let done = rt.block_on(async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            r = work => Some(r),
            _ = tokio::signal::ctrl_c() => None,
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => None,
        }
    });
    let Some((baseline, failover)) = done else {
        eprintln!("failover: interrupted");
        drop(cluster);
        std::process::exit(130);
    };
    let doc = report::document(&baseline, &failover, o.seed, started.elapsed());
    println!("{}", report::table(&doc));
    if let Some(path) = &o.json {
        let text = serde_json::to_string_pretty(&doc).expect("json");
        if let Err(e) = std::fs::write(path, text + "\n") {
            eprintln!("failover: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    drop(cluster);
}
