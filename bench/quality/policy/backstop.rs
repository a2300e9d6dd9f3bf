//! backstop's policies, through the real lifecycle core: a config loaded from TOML as the
//! daemon loads it, [`backstop::replay::replay`] driving `lifecycle::step`, and each round's
//! check results made the way the daemon's shell (`engine/rounds.rs`) makes them, from what
//! the emulated `/health` and Prometheus answer at the round's time: the baseline fetched until
//! it is had, `compare`'s pre-deployment samples once and its post-deployment samples every
//! round from the later of judging's start and the deployment + the query's look-back.

use chrono::{DateTime, Utc};

use backstop::config::{Probe, WatchConfig};
use backstop::engine::lifecycle::{CheckResult, CompareSamples, Unmeasured};
use backstop::judge::observation::VerdictKind;
use backstop::judge::Reading;
use backstop::replay::{replay, Deployment as Replayed};

use super::{Judgement, Verdict};
use crate::generate::{Deployment, Health};
use crate::prom::{Failure, Prom, Query};

/// How one configured check is probed.
enum Plan {
    Http {
        name: String,
    },
    Prometheus {
        name: String,
        query: Query,
        /// Seconds the query reads back (from the config: parsed PromQL).
        lookback: f64,
        /// `baseline_window` when a rule needs the baseline.
        baseline: Option<f64>,
        /// `(baseline_window, step)` with `compare`.
        compare: Option<(f64, f64)>,
        /// `min_traffic` (its query must be [`Query::Traffic`]).
        traffic: bool,
    },
}

/// One of backstop's policies: a watch config and how to probe its checks.
pub struct Backstop {
    cfg: WatchConfig,
    plans: Vec<Plan>,
}

/// Any fixed instant: the lifecycle only reads differences.
fn deployed_at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_798_761_600, 0).expect("a valid timestamp")
}

fn secs(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

impl Backstop {
    /// Loads `toml` as the daemon does; every check must be one this benchmark can answer.
    pub fn load(toml: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        std::fs::write(dir.path().join("api-key"), "k\n").map_err(|e| e.to_string())?;
        let config = backstop::config::load_str(toml, dir.path()).map_err(|e| e.to_string())?;
        let cfg = config
            .watches
            .into_iter()
            .next()
            .map(std::sync::Arc::unwrap_or_clone)
            .ok_or("no [[watch]] in the config")?;
        let plans = cfg
            .checks
            .iter()
            .map(|c| match &c.probe {
                Probe::Http { .. } => Ok(Plan::Http {
                    name: c.name.clone(),
                }),
                Probe::Prometheus {
                    query,
                    baseline_window,
                    lookback,
                    ..
                } => {
                    let query = Query::parse(query)
                        .ok_or_else(|| format!("check {}: unknown query {query}", c.name))?;
                    let window = baseline_window.map(secs);
                    let needs = c.control.is_some() || c.rules.iter().any(|r| r.needs_baseline());
                    let traffic = match &c.min_traffic {
                        Some(m) => match &m.source {
                            backstop::config::TrafficSource::Query(q)
                                if Query::parse(q) == Some(Query::Traffic) =>
                            {
                                true
                            }
                            _ => return Err(format!("check {}: unknown min_traffic", c.name)),
                        },
                        None => false,
                    };
                    Ok(Plan::Prometheus {
                        name: c.name.clone(),
                        query,
                        lookback: secs(*lookback),
                        baseline: window.filter(|_| needs),
                        compare: c.compare.map(|k| (window.unwrap_or(600.0), secs(k.step))),
                        traffic,
                    })
                }
                _ => Err(format!("check {}: kind not emulated", c.name)),
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Backstop { cfg, plans })
    }

    /// Replays deployment `d` through the lifecycle core.
    pub fn judge(&self, d: &Deployment) -> Judgement {
        self.replay(d).0
    }

    /// What the verdict said, check by check (`--explain`).
    pub fn explain(&self, d: &Deployment) -> String {
        let (j, out) = self.replay(d);
        let Some(v) = out.verdict else {
            return format!("{j:?}: no verdict after {} rounds", out.rounds);
        };
        let mut text = format!("{j:?} after {} rounds: {}\n", out.rounds, v.summary);
        for c in &v.checks {
            text += &format!(
                "  {}: {} pass, {} fail, {} error, {} no data; baseline {:?}\n",
                c.name, c.passes, c.failures, c.errors, c.no_data, c.baseline
            );
            for s in &c.samples {
                text += &format!(
                    "    {:>8.1}s {:?} {:?}\n",
                    (s.at - deployed_at()).num_milliseconds() as f64 / 1000.0,
                    s.value,
                    s.outcome
                );
            }
        }
        text
    }

    fn replay(&self, d: &Deployment) -> (Judgement, backstop::replay::Outcome) {
        let at0 = deployed_at();
        let replayed = Replayed {
            release: "Releases-2".into(),
            deployment_id: Some("Deployments-2".into()),
            deployed_at: at0,
            previous: Some("Releases-1".into()),
        };
        let mut probes = Probes {
            plans: &self.plans,
            d,
            prom: Prom::new(&d.telemetry),
            judging_from: secs(self.cfg.warmup),
            have_baseline: vec![false; self.plans.len()],
            have_pre: vec![false; self.plans.len()],
        };
        let out = replay(&self.cfg, &replayed, |at| {
            probes.round((at - at0).num_milliseconds() as f64 / 1000.0)
        });
        let at = out
            .time_to_verdict(at0)
            .map(|t| t.num_milliseconds() as f64 / 1000.0);
        let verdict = if out.rolled_back() {
            Verdict::RolledBack
        } else {
            match out.kind() {
                Some(VerdictKind::Condemned) => Verdict::Held,
                Some(VerdictKind::Verified) => Verdict::Verified,
                Some(VerdictKind::Inconclusive) => Verdict::Inconclusive,
                Some(VerdictKind::Superseded) | None => Verdict::Undecided,
            }
        };
        let cause = out.verdict.as_ref().and_then(|v| {
            let name = v
                .checks
                .iter()
                .find(|c| c.limit_hit.is_some())?
                .name
                .as_str();
            ["health", "errors", "latency"]
                .into_iter()
                .find(|n| *n == name)
        });
        (Judgement { verdict, at, cause }, out)
    }
}

/// The probes of one replay, with what the shell keeps between rounds.
struct Probes<'a> {
    plans: &'a [Plan],
    d: &'a Deployment,
    prom: Prom<'a>,
    /// When judging starts: warmup, or the first round before it in which `/health` passed.
    judging_from: f64,
    have_baseline: Vec<bool>,
    have_pre: Vec<bool>,
}

impl Probes<'_> {
    /// Every check's result for the round at `t` seconds after the deployment.
    fn round(&mut self, t: f64) -> Vec<CheckResult> {
        // Before judging starts the lifecycle drops the round unless every http check passed
        // in it (the release is up): what it fetched is then not kept, and the shell fetches it
        // again next round, as it finds the baseline and the pre samples still missing.
        let http = self.plans.iter().any(|p| matches!(p, Plan::Http { .. }));
        let healthy = self.d.health(t) == Health::Status(200);
        let kept = t >= self.judging_from || (http && healthy);
        let mut out = Vec::with_capacity(self.plans.len());
        for (i, plan) in self.plans.iter().enumerate() {
            out.push(match plan {
                Plan::Http { name } => result(name, health_reading(self.d.health(t))),
                Plan::Prometheus {
                    name,
                    query,
                    lookback,
                    baseline,
                    compare,
                    traffic,
                } => {
                    let reading = self
                        .prom
                        .instant(*query, t)
                        .map(Reading::Value)
                        .map_err(unmeasured);
                    let mut r = result(name, reading);
                    if let Some(window) = baseline.filter(|_| !self.have_baseline[i]) {
                        let b = self.baseline(*query, window, t);
                        self.have_baseline[i] = kept && b.is_ok();
                        r.baseline = Some(b.map(Some));
                    }
                    if *traffic {
                        r.traffic = Some(
                            self.prom
                                .instant(Query::Traffic, t)
                                .map_err(|f| f.text().to_string()),
                        );
                    }
                    if let Some((window, step)) = compare {
                        let c = self.compare(i, *query, *window, *step, *lookback, t);
                        self.have_pre[i] |= kept && matches!(c.pre, Some(Ok(_)));
                        r.compare = Some(c);
                    }
                    r
                }
            });
        }
        if http && healthy && t < self.judging_from {
            self.judging_from = t;
        }
        out
    }

    /// The mean of the query over the window before the deployment (about 60 points).
    fn baseline(&mut self, q: Query, window: f64, t: f64) -> Result<f64, String> {
        let step = (window / 60.0).max(1.0);
        let values = self
            .prom
            .range(q, -window, 0.0, step, t)
            .map_err(|f| f.text().to_string())?;
        backstop::judge::baseline::mean(&values).ok_or_else(|| Failure::Empty.text().to_string())
    }

    fn compare(
        &mut self,
        i: usize,
        q: Query,
        window: f64,
        step: f64,
        lookback: f64,
        t: f64,
    ) -> CompareSamples {
        let pre = (!self.have_pre[i]).then(|| {
            self.prom
                .range(q, -window, 0.0, step, t)
                .map_err(|f| f.text().to_string())
        });
        let from = self.judging_from.max(lookback);
        let post = if from >= t {
            Ok(Vec::new())
        } else {
            self.prom
                .range(q, from, t, step, t)
                .map_err(|f| f.text().to_string())
        };
        CompareSamples { pre, post }
    }
}

fn result(name: &str, reading: Result<Reading, Unmeasured>) -> CheckResult {
    CheckResult {
        name: name.to_string(),
        baseline: None,
        before: None,
        reading,
        lag: std::time::Duration::ZERO,
        traffic: None,
        compare: None,
        control: None,
    }
}

/// An http probe's reading: refused and timed out are the application not answering.
fn health_reading(h: Health) -> Result<Reading, Unmeasured> {
    match h {
        Health::Status(s) => Ok(Reading::Status(s)),
        Health::Refused => Err(Unmeasured {
            reason: "target unreachable: connection refused".into(),
            app_down: true,
            timed_out: false,
            empty: false,
        }),
        Health::Timeout => Err(Unmeasured {
            reason: "timed out after 1.6s".into(),
            app_down: true,
            timed_out: true,
            empty: false,
        }),
    }
}

/// A query without a number: nothing there (empty, NaN) or Prometheus down.
fn unmeasured(f: Failure) -> Unmeasured {
    Unmeasured {
        empty: matches!(f, Failure::Empty | Failure::NaN),
        ..Unmeasured::other(f.text())
    }
}
