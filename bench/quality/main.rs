//! Benchmark 4, detection quality: thousands of generated, labelled deployments (good, noisy,
//! quiet, broken telemetry, slow to start, regressions of every size, dead on start) judged by
//! backstop through its real lifecycle core and by the policies users pick instead, on the
//! same emulated Prometheus. See `bench/README.md` (section 4) for what is generated and why.
//!
//! ```sh
//! cargo bench --bench quality -- --seed 1 --deployments 10000 --json bench/results/quality.json
//! ```
//!
//! Modules: `scenario` (the labels and services), `generate` (scrapes and `/health`), `prom`
//! (what Prometheus answers), `policy` (the five policies), `report` (the numbers), `dist`
//! (random draws).

mod dist;
mod generate;
mod policy;
mod prom;
mod report;
mod scenario;

use std::time::Instant;

use serde_json::json;

use policy::{Kind, Policies};

/// Command-line options.
struct Options {
    seed: u64,
    deployments: usize,
    threads: usize,
    json: Option<std::path::PathBuf>,
    /// Print one deployment and every verdict on it, with backstop's reasons.
    explain: Option<usize>,
    /// Write every deployment's verdicts as CSV (for digging into a cell).
    csv: Option<std::path::PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        seed: 1,
        deployments: 10_000,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        json: None,
        explain: None,
        csv: None,
    };
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs the binary without it,
    // and then a small smoke run (the whole pipeline, every policy) stands in for the
    // benchmark, whose 10,000 deployments take minutes even optimised.
    if !std::env::args().any(|a| a == "--bench") {
        o.deployments = SMOKE_DEPLOYMENTS;
    }
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--seed" => {
                o.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--deployments" => {
                o.deployments = value("--deployments")?
                    .parse()
                    .map_err(|e| format!("--deployments: {e}"))?
            }
            "--threads" => {
                o.threads = value("--threads")?
                    .parse::<usize>()
                    .map_err(|e| format!("--threads: {e}"))?
                    .max(1)
            }
            "--json" => o.json = Some(value("--json")?.into()),
            "--csv" => o.csv = Some(value("--csv")?.into()),
            "--explain" => {
                o.explain = Some(
                    value("--explain")?
                        .parse()
                        .map_err(|e| format!("--explain: {e}"))?,
                )
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            "-h" | "--help" => {
                println!(
                    "usage: quality [--seed S] [--deployments N] [--threads T] [--json PATH] [--csv PATH] [--explain I]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(o)
}

/// Deployments judged when run as a test (without `--bench`).
const SMOKE_DEPLOYMENTS: usize = 40;

fn main() {
    let o = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("quality: {e}");
            std::process::exit(2);
        }
    };
    let policies = match Policies::load() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("quality: a policy's config does not load: {e}");
            std::process::exit(1);
        }
    };
    let started = Instant::now();
    let scenarios = scenario::assign(o.deployments);
    if let Some(i) = o.explain {
        explain(&policies, &scenarios, o.seed, i);
        return;
    }
    let rows = judge_all(&policies, &scenarios, o.seed, o.threads);
    let seconds = started.elapsed().as_secs_f64();
    if let Some(path) = &o.csv {
        if let Err(e) = std::fs::write(path, csv(&rows)) {
            eprintln!("quality: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
    }
    let meta = json!({
        "seed": o.seed,
        "deployments": o.deployments,
        "threads": o.threads,
        "seconds": seconds,
        "mix": scenario::mix().iter().map(|(s, w)| json!({"scenario": s.key(), "percent": w})).collect::<Vec<_>>(),
        "at": chrono::Utc::now().to_rfc3339(),
    });
    let configs = Policies::configs()
        .into_iter()
        .map(|(k, c)| (k.to_string(), json!(c.trim())))
        .collect::<serde_json::Map<_, _>>();
    let out = report::build(&rows, meta, json!(configs));
    print_summary(&out, seconds);
    if let Some(path) = o.json {
        let text = serde_json::to_string_pretty(&out).expect("JSON of plain values");
        if let Err(e) = std::fs::write(&path, text + "\n") {
            eprintln!("quality: cannot write {}: {e}", path.display());
            std::process::exit(1);
        }
        println!("wrote {}", path.display());
    }
}

/// Generates and judges every deployment, `threads` at a time; the order of the rows (and so
/// every number) does not depend on the thread count.
fn judge_all(
    policies: &Policies,
    scenarios: &[scenario::Scenario],
    seed: u64,
    threads: usize,
) -> Vec<report::Row> {
    let mut slots: Vec<Option<report::Row>> = (0..scenarios.len()).map(|_| None).collect();
    std::thread::scope(|s| {
        let chunks: Vec<_> = (0..threads)
            .map(|k| {
                s.spawn(move || {
                    (k..scenarios.len())
                        .step_by(threads)
                        .map(|i| {
                            let d = generate::Deployment::generate(seed, i, scenarios[i]);
                            let judgements = Kind::ALL
                                .map(|kind| (kind, policies.judge(kind, &d)))
                                .to_vec();
                            (
                                i,
                                report::Row {
                                    scenario: d.scenario,
                                    error_p: d.service.error_p,
                                    judgements,
                                },
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for c in chunks {
            for (i, row) in c.join().expect("a judging thread panicked") {
                slots[i] = Some(row);
            }
        }
    });
    slots.into_iter().flatten().collect()
}

/// `--explain I`: deployment `I`'s service, every verdict on it, backstop's samples and
/// reasons, the scrapes around the deployment and what Prometheus answers over time.
fn explain(policies: &Policies, scenarios: &[scenario::Scenario], seed: u64, i: usize) {
    let Some(s) = scenarios.get(i) else {
        eprintln!(
            "quality: --explain {i}: only {} deployments",
            scenarios.len()
        );
        std::process::exit(2);
    };
    let d = generate::Deployment::generate(seed, i, *s);
    println!("deployment {i}: {}\n{:#?}", s.key(), d.service);
    for kind in Kind::ALL {
        println!("{}: {:?}", kind.key(), policies.judge(kind, &d));
    }
    println!("{}", policies.explain(&d));
    println!("the scrapes around the deployment (NaN: series absent):");
    for (k, series) in d.telemetry.series.iter().enumerate() {
        for s in series.iter().filter(|s| s.t > -90.0 && s.t < 90.0) {
            println!(
                "instance {k} t {:>7.2} requests {:>12.1} errors {:>10.1}",
                s.t, s.requests, s.errors
            );
        }
    }
    println!("t, errors, p90, traffic (what Prometheus answers):");
    let mut t = -scenario::BEFORE + 60.0;
    while t <= 660.0 {
        let v = [
            prom::Query::ErrorRatio,
            prom::Query::LatencyP90,
            prom::Query::Traffic,
        ]
        .map(|q| prom::evaluate(&d.telemetry, q, t));
        println!("{t:>7.0} {v:?}");
        t += 30.0;
    }
}

/// One line per deployment: index, scenario, and each policy's verdict and time.
fn csv(rows: &[report::Row]) -> String {
    let mut out = String::from("index,scenario");
    for k in Kind::ALL {
        out += &format!(",{0},{0}_s,{0}_cause", k.key());
    }
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        out += &format!("{i},{}", r.scenario.key());
        for (_, j) in &r.judgements {
            let at = j.at.map(|t| format!("{t:.1}")).unwrap_or_default();
            out += &format!(",{},{at},{}", j.verdict.key(), j.cause.unwrap_or(""));
        }
        out.push('\n');
    }
    out
}

/// A console digest: per scenario, each policy's rollback share.
fn print_summary(out: &serde_json::Value, seconds: f64) {
    let policies = &out["policies"];
    print!("{:<20}", "scenario");
    for k in Kind::ALL {
        print!("{:>18}", k.key());
    }
    println!();
    let mut keys: Vec<String> = scenario::mix().iter().map(|(s, _)| s.key()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        print!("{key:<20}");
        for k in Kind::ALL {
            let c = &policies[k.key()]["scenarios"][&key];
            let rate = c["rate"].as_f64().unwrap_or(f64::NAN);
            let median = c["time_to_rollback_s"]["median"].as_f64();
            let cell = match median {
                Some(m) => format!("{:.1}% {:.0}s", rate * 100.0, m),
                None => format!("{:.1}%", rate * 100.0),
            };
            print!("{cell:>18}");
        }
        println!();
    }
    println!(
        "targets: {}",
        serde_json::to_string_pretty(&out["summary"]["targets"]).unwrap_or_default()
    );
    println!(
        "{} deployments in {seconds:.1} s",
        out["meta"]["deployments"]
    );
}
