//! The figures: per side median/p95/max time to rollback, duplicates and missed rollbacks, and
//! whether failover stayed within its bound, as JSON and as a table.

use std::time::Duration;

use serde_json::{json, Value};

use crate::round::{Phase, Round};
use crate::{INTERVAL, LEASE, SETTLE};

fn stats(mut xs: Vec<f64>) -> Value {
    if xs.is_empty() {
        return json!({"n": 0});
    }
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    json!({"n": xs.len(), "median": at(0.5), "p95": at(0.95), "min": xs[0], "max": xs[xs.len() - 1]})
}

fn side(rounds: &[Round]) -> Value {
    let post: Vec<f64> = rounds.iter().filter_map(|r| r.to_post_s).collect();
    let done: Vec<f64> = rounds.iter().filter_map(|r| r.to_done_s).collect();
    json!({
        "rounds": rounds,
        "to_post": stats(post),
        "to_done": stats(done),
        "duplicates": rounds.iter().map(|r| r.creates.saturating_sub(1)).sum::<usize>(),
        "missed": rounds.iter().filter(|r| r.to_post_s.is_none()).count(),
    })
}

/// How far beyond the baseline's median a failover round may go: a lease (the dead owner's
/// lease expires) plus one check interval (the survivor's first round), plus the settle search
/// when the owner died with a create in flight (measured on `to_done`, since that create was
/// made before the death).
fn bound(phase: Option<Phase>) -> Duration {
    match phase {
        Some(Phase::InFlight) => LEASE + INTERVAL + SETTLE,
        _ => LEASE + INTERVAL,
    }
}

pub fn document(baseline: &[Round], failover: &[Round], seed: u64, took: Duration) -> Value {
    let b = side(baseline);
    let base_post = b["to_post"]["median"].as_f64().unwrap_or(0.0);
    let base_done = b["to_done"]["median"].as_f64().unwrap_or(0.0);
    let mut worst: Option<(f64, f64, String)> = None;
    let mut over = 0;
    for r in failover {
        let (measured, base) = match r.phase {
            Some(Phase::InFlight) => (r.to_done_s, base_done),
            _ => (r.to_post_s, base_post),
        };
        let Some(m) = measured else { continue };
        let extra = m - base;
        let limit = bound(r.phase).as_secs_f64();
        if extra > limit {
            over += 1;
        }
        if worst.as_ref().is_none_or(|(e, l, _)| extra - limit > e - l) {
            worst = Some((extra, limit, r.release.clone()));
        }
    }
    let f = side(failover);
    let met = f["duplicates"] == 0 && f["missed"] == 0 && over == 0;
    json!({
        "seed": seed,
        "lease_s": LEASE.as_secs_f64(),
        "interval_s": INTERVAL.as_secs_f64(),
        "settle_s": SETTLE.as_secs_f64(),
        "took_s": took.as_secs_f64(),
        "baseline": b,
        "failover": f,
        "rounds_over_bound": over,
        "worst_excess": worst.map(|(e, l, rel)| json!({"extra_s": e, "bound_s": l, "release": rel})),
        "met": met,
    })
}

fn f3(v: &Value) -> String {
    v.as_f64().map_or("—".into(), |x| format!("{x:.3}"))
}

/// A table like the other benchmarks print.
pub fn table(doc: &Value) -> String {
    let mut out = String::from(
        "| side | n | to rollback created: median | p95 | max | to rollback done: median | p95 | max | duplicates | missed |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, key) in [
        ("1 node, no failure (baseline)", "baseline"),
        ("3 nodes, owner killed", "failover"),
    ] {
        let s = &doc[key];
        out += &format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s["rounds"].as_array().map_or(0, Vec::len),
            f3(&s["to_post"]["median"]),
            f3(&s["to_post"]["p95"]),
            f3(&s["to_post"]["max"]),
            f3(&s["to_done"]["median"]),
            f3(&s["to_done"]["p95"]),
            f3(&s["to_done"]["max"]),
            s["duplicates"],
            s["missed"],
        );
    }
    out += &format!(
        "\nrounds over the bound (lease {}s + interval {}s, + settle {}s with a create in flight): {}; target met: {}\n",
        doc["lease_s"], doc["interval_s"], doc["settle_s"], doc["rounds_over_bound"], doc["met"]
    );
    if let Some(rounds) = doc["failover"]["rounds"].as_array() {
        out += "\n| round | phase | killed at | to created | to done | creates |\n|---|---|---|---|---|---|\n";
        for (i, r) in rounds.iter().enumerate() {
            out += &format!(
                "| {i} | {} | {} | {} | {} | {} |\n",
                r["phase"].as_str().unwrap_or("—"),
                f3(&r["killed_at_s"]),
                f3(&r["to_post_s"]),
                f3(&r["to_done_s"]),
                r["creates"]
            );
        }
    }
    out
}
