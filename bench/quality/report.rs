//! From verdicts to the numbers of the table: false rollbacks with a Wilson interval, recall
//! per regression, time to verdict, and the targets for backstop's defaults. The JSON
//! written here is what `bench/lib/report.py` renders into `bench/RESULTS.md`.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::policy::{Judgement, Kind, Verdict};
use crate::scenario::{Scenario, Signal, FACTORS};

/// One deployment's label and every policy's judgement of it.
pub struct Row {
    pub scenario: Scenario,
    /// The service's usual share of failing requests (to explain what a ceiling can see).
    pub error_p: f64,
    pub judgements: Vec<(Kind, Judgement)>,
}

/// Counts of one (policy, scenario) cell.
#[derive(Default, Clone)]
struct Cell {
    n: usize,
    verdicts: BTreeMap<&'static str, usize>,
    /// What decided the rollbacks (the signal, per policy's own account).
    causes: BTreeMap<&'static str, usize>,
    /// Which check made backstop's verdicts inconclusive.
    inconclusive: BTreeMap<&'static str, usize>,
    /// Seconds to each rollback.
    rollbacks: Vec<f64>,
    /// Seconds to each verdict that kept the release.
    kept: Vec<f64>,
}

impl Cell {
    fn add(&mut self, j: &Judgement) {
        self.n += 1;
        *self.verdicts.entry(j.verdict.key()).or_default() += 1;
        let cause = j.cause.unwrap_or("unknown");
        match j.verdict {
            Verdict::RolledBack => *self.causes.entry(cause).or_default() += 1,
            Verdict::Inconclusive => *self.inconclusive.entry(cause).or_default() += 1,
            _ => {}
        }
        match (j.verdict, j.at) {
            (Verdict::RolledBack, Some(t)) => self.rollbacks.push(t),
            (Verdict::Verified, Some(t)) => self.kept.push(t),
            _ => {}
        }
    }

    fn rolled(&self) -> usize {
        self.rollbacks.len()
    }

    fn json(&self) -> Value {
        let (lo, hi) = wilson(self.rolled(), self.n);
        json!({
            "n": self.n,
            "rolled_back": self.rolled(),
            "rate": ratio(self.rolled(), self.n),
            "ci95": [lo, hi],
            "verdicts": self.verdicts,
            "causes": self.causes,
            "inconclusive_causes": self.inconclusive,
            "time_to_rollback_s": stats(&self.rollbacks),
            "rolled_back_within_lookback": self.rollbacks.iter().filter(|t| **t <= MIXED).count(),
            "time_to_keep_s": stats(&self.kept),
        })
    }
}

/// A rollback this soon after the deployment was decided on at least one sample whose 1 m
/// query still read the previous release (a run of three fast rounds ends 4 s after it starts).
const MIXED: f64 = 64.0;

fn ratio(k: usize, n: usize) -> Option<f64> {
    (n > 0).then(|| k as f64 / n as f64)
}

/// The Wilson score interval at 95% for `k` successes in `n`: honest near 0 and 1, where the
/// normal approximation claims an interval of nothing.
pub fn wilson(k: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The `q`-quantile of `xs` (nearest rank on the sorted values).
pub fn quantile(xs: &[f64], q: f64) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    let mut s = xs.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1;
    Some(s[i])
}

fn stats(xs: &[f64]) -> Value {
    json!({
        "n": xs.len(),
        "median": quantile(xs, 0.5),
        "p90": quantile(xs, 0.9),
    })
}

/// Groups of scenarios the summary pools.
fn group(name: &str, s: &Scenario) -> bool {
    match name {
        "good_and_noisy" => matches!(s, Scenario::Good | Scenario::NoisyGood),
        "step_2x_or_more" => s.factor().is_some_and(|f| f >= 2.0),
        "bad" => s.bad(),
        other => other.strip_prefix("step_x").is_some_and(|f| {
            s.factor()
                .is_some_and(|x| f.parse::<f64>().is_ok_and(|f| f == x))
        }),
    }
}

/// The whole report: per policy, per scenario and pooled, and the targets.
pub fn build(rows: &[Row], meta: Value, configs: Value) -> Value {
    let mut cells: BTreeMap<(Kind, String), Cell> = BTreeMap::new();
    let mut pooled: BTreeMap<(Kind, String), Cell> = BTreeMap::new();
    let mut pools = vec![
        "good_and_noisy".to_string(),
        "step_2x_or_more".into(),
        "bad".into(),
    ];
    pools.extend(FACTORS.iter().map(|f| format!("step_x{f}")));
    for row in rows {
        for (kind, j) in &row.judgements {
            cells.entry((*kind, row.scenario.key())).or_default().add(j);
            for p in &pools {
                if group(p, &row.scenario) {
                    pooled.entry((*kind, p.clone())).or_default().add(j);
                }
            }
        }
    }
    // Time to rollback on the bad deployments every policy rolled back: the fair comparison of
    // speed (each policy's own median is over the regressions it catches, which differ).
    let mut common: BTreeMap<Kind, Vec<f64>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.scenario.bad()) {
        if row
            .judgements
            .iter()
            .filter(|(k, _)| Kind::FIVE.contains(k))
            .all(|(_, j)| j.verdict == Verdict::RolledBack)
        {
            for (k, j) in &row.judgements {
                common.entry(*k).or_default().extend(j.at);
            }
        }
    }
    let mut policies = serde_json::Map::new();
    for kind in Kind::ALL {
        let mut scenarios = serde_json::Map::new();
        for ((k, s), c) in &cells {
            if *k == kind {
                scenarios.insert(s.clone(), c.json());
            }
        }
        let mut pools_json = serde_json::Map::new();
        for ((k, p), c) in &pooled {
            if *k == kind {
                pools_json.insert(p.clone(), c.json());
            }
        }
        let ttv_common = common.get(&kind).map(|v| stats(v)).unwrap_or(json!(null));
        policies.insert(
            kind.key().into(),
            json!({
                "scenarios": scenarios,
                "pooled": pools_json,
                "time_to_rollback_common_s": ttv_common,
            }),
        );
    }
    let summary = summarise(&policies);
    json!({
        "meta": meta,
        "policies": policies,
        "summary": summary,
        "facts": facts(rows),
        "configs": configs,
    })
}

/// Facts about the generated deployments that explain what a rule can see: per error
/// regression, the share whose regressed error share is above backstop's default 5% ceiling.
fn facts(rows: &[Row]) -> Value {
    let mut out = serde_json::Map::new();
    for factor in FACTORS {
        let cell: Vec<&Row> = rows
            .iter()
            .filter(|r| {
                r.scenario
                    == Scenario::Step {
                        signal: Signal::Errors,
                        factor,
                    }
            })
            .collect();
        let above = cell.iter().filter(|r| r.error_p * factor > 0.05).count();
        out.insert(
            format!("errors_x{factor}"),
            json!({"n": cell.len(), "above_5pct": ratio(above, cell.len())}),
        );
    }
    let mut e: Vec<f64> = rows.iter().map(|r| r.error_p).collect();
    e.sort_by(f64::total_cmp);
    out.insert(
        "error_share".into(),
        json!({"median": quantile(&e, 0.5), "p10": quantile(&e, 0.1), "p90": quantile(&e, 0.9)}),
    );
    Value::Object(out)
}

/// The headline numbers per policy, and the targets for backstop's defaults.
fn summarise(policies: &serde_json::Map<String, Value>) -> Value {
    let get = |p: &str, path: &[&str]| -> Value {
        let mut v = &policies[p];
        for k in path {
            v = &v[*k];
        }
        v.clone()
    };
    let f = |v: Value| v.as_f64();
    let mut rows = serde_json::Map::new();
    for kind in Kind::ALL {
        let p = kind.key();
        rows.insert(
            p.into(),
            json!({
                "false_rollback_rate": f(get(p, &["pooled", "good_and_noisy", "rate"])),
                "false_rollback_ci95": get(p, &["pooled", "good_and_noisy", "ci95"]),
                "recall_x1.5": f(get(p, &["pooled", "step_x1.5", "rate"])),
                "recall_2x_or_more": f(get(p, &["pooled", "step_2x_or_more", "rate"])),
                "median_time_to_rollback_s": f(get(p, &["pooled", "bad", "time_to_rollback_s", "median"])),
                "median_time_to_rollback_common_s": f(get(p, &["time_to_rollback_common_s", "median"])),
            }),
        );
    }
    let b = &rows[Kind::Backstop.key()];
    let fp = b["false_rollback_rate"].as_f64().unwrap_or(1.0);
    let mut recall_cells = Vec::new();
    for signal in [Signal::Errors, Signal::Latency] {
        for factor in FACTORS.iter().filter(|f| **f >= 2.0) {
            let key = Scenario::Step {
                signal,
                factor: *factor,
            }
            .key();
            let r = f(get(Kind::Backstop.key(), &["scenarios", &key, "rate"])).unwrap_or(0.0);
            recall_cells.push(json!({"scenario": key, "recall": r, "met": r >= 0.99}));
        }
    }
    let recall_ok = recall_cells.iter().all(|c| c["met"] == json!(true));
    let mut pareto = Vec::new();
    // Each backstop configuration against each alternative.
    for ours in [Kind::Backstop, Kind::BackstopCompare] {
        for alt in [Kind::Flagger, Kind::Argo, Kind::Kayenta] {
            pareto.push(dominance(ours, alt, &rows));
        }
    }
    json!({
        "rows": rows,
        "targets": {
            "false_rollbacks": {"required": 0.005, "measured": fp, "met": fp <= 0.005},
            "recall_2x_or_more": {"required": 0.99, "cells": recall_cells, "met": recall_ok},
            "pareto": pareto,
        }
    })
}

/// Whether `a` is Pareto-better than `b` on (false rollbacks, recall at 1.5x, time to rollback
/// on the deployments both caught), and on which axes it is worse.
fn dominance(a: Kind, b: Kind, rows: &serde_json::Map<String, Value>) -> Value {
    let axis = |k: Kind, key: &str| rows[k.key()][key].as_f64();
    let axes = [
        ("false_rollbacks", "false_rollback_rate", false),
        ("recall_x1.5", "recall_x1.5", true),
        (
            "time_to_rollback",
            "median_time_to_rollback_common_s",
            false,
        ),
    ];
    let mut worse = Vec::new();
    let mut better = Vec::new();
    for (name, key, higher_is_better) in axes {
        let (x, y) = (axis(a, key), axis(b, key));
        let (Some(x), Some(y)) = (x, y) else {
            worse.push(format!("{name}: not measured"));
            continue;
        };
        let cmp = if higher_is_better { x - y } else { y - x };
        if cmp > 1e-12 {
            better.push(name);
        } else if cmp < -1e-12 {
            worse.push(name.to_string());
        }
    }
    json!({
        "policy": a.key(),
        "versus": b.key(),
        "better_on": better,
        "worse_on": worse,
        "pareto_better": worse.is_empty() && !better.is_empty(),
    })
}
