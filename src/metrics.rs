//! Every metric backstop exports: names, help texts, labels and buckets live here only.
//!
//! The registry is owned (not the global default) so each daemon, and each test, has its own.
//! Label sets are bounded (watch, check, result, outcome, deployer, operation): release ids and
//! URLs never become labels. Series known to exist are created at zero when a watch is
//! registered, so `increase()` alerts work from the first scrape.

use std::sync::Arc;

use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::judge::observation::VerdictKind;
use crate::judge::{Outcome, Rule};
use crate::status::WatchState;

/// How a rollback ended, as the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackOutcome {
    /// The rollback deployment's task succeeded.
    Succeeded,
    /// The deployment could not be created or its task failed.
    Failed,
    /// No release was safe to roll back to.
    NoTarget,
    /// The condemned release was itself a rollback: the loop breaker held.
    LoopPrevented,
    /// A create may have landed but could not be confirmed.
    Unknown,
    /// A newer deployment backstop did not make replaced the condemned one: nothing deployed.
    Superseded,
}

impl RollbackOutcome {
    pub const ALL: [RollbackOutcome; 6] = [
        RollbackOutcome::Succeeded,
        RollbackOutcome::Failed,
        RollbackOutcome::NoTarget,
        RollbackOutcome::LoopPrevented,
        RollbackOutcome::Unknown,
        RollbackOutcome::Superseded,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            RollbackOutcome::Succeeded => "succeeded",
            RollbackOutcome::Failed => "failed",
            RollbackOutcome::NoTarget => "no_target",
            RollbackOutcome::LoopPrevented => "loop_prevented",
            RollbackOutcome::Unknown => "unknown",
            RollbackOutcome::Superseded => "superseded",
        }
    }
}

/// Cheap-to-clone handle on the daemon's metrics.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    checks: IntCounterVec,
    check_value: GaugeVec,
    check_threshold: GaugeVec,
    check_baseline: GaugeVec,
    watch_state: IntGaugeVec,
    verdicts: IntCounterVec,
    rollbacks: IntCounterVec,
    duplicates: IntCounterVec,
    deployer_errors: IntCounterVec,
    observation_duration: HistogramVec,
    observation_started: GaugeVec,
    deployments_seen: IntCounterVec,
    last_verdict: GaugeVec,
    reloads: IntCounterVec,
    polls: IntCounterVec,
    notifications: IntCounterVec,
    actions: IntCounterVec,
    start_time: Gauge,
    scheduler_lag: Gauge,
    /// Registered only in a fleet ([`Metrics::enable_fleet`]): a single node is not a fleet.
    fleet: FleetMetrics,
}

/// The fleet's series, read from the database by every node (so any node's scrape shows the
/// whole fleet) except the takeover counter, which counts this node's takeovers.
#[derive(Clone)]
struct FleetMetrics {
    nodes: prometheus::IntGauge,
    owned: IntGaugeVec,
    unowned: prometheus::IntGauge,
    takeovers: prometheus::IntCounter,
}

fn register<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
    r.register(Box::new(c.clone()))
        .expect("metric names are unique and valid");
    c
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let build = register(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "backstop_build_info",
                    "Build of the running backstop; always 1.",
                ),
                &["version"],
            )
            .expect("valid metric"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        #[cfg(target_os = "linux")]
        {
            let pc = prometheus::process_collector::ProcessCollector::for_self();
            let _ = r.register(Box::new(pc));
        }
        let start_time = register(
            &r,
            Gauge::new(
                "backstop_start_time_seconds",
                "Unix time the daemon started.",
            )
            .expect("valid metric"),
        );
        start_time.set(chrono::Utc::now().timestamp() as f64);
        // A gauge of the recent maximum, not a histogram: one series without labels (the lag
        // is the process's, not a watch's), and a stall between two scrapes still shows.
        let scheduler_lag = register(
            &r,
            Gauge::new(
                "backstop_scheduler_lag_seconds",
                "Worst lateness of backstop's own timers over the last minute (a stalled runtime or machine); above 0.25 a probe without an answer is backstop's error, not the application's failure.",
            )
            .expect("valid metric"),
        );
        let inner = Inner {
            checks: counter(
                "backstop_checks_total",
                "Check samples taken, by watch, check and result (pass, fail, error).",
                &["watch", "check", "result"],
            ),
            check_value: gauge(
                "backstop_check_value",
                "Last value read by a check (HTTP status for http checks).",
                &["watch", "check"],
            ),
            check_threshold: gauge(
                "backstop_check_threshold",
                "Configured limit of a check rule (ratios are multiples of the baseline).",
                &["watch", "check", "rule"],
            ),
            check_baseline: gauge(
                "backstop_check_baseline",
                "Pre-deployment baseline of a check in the current observation (NaN when none).",
                &["watch", "check"],
            ),
            watch_state: register(
                &r,
                IntGaugeVec::new(
                    Opts::new(
                        "backstop_watch_state",
                        "1 for the current state of each watch (idle, observing, rolling_back, failed, paused).",
                    ),
                    &["watch", "state"],
                )
                .expect("valid metric"),
            ),
            verdicts: counter(
                "backstop_verdicts_total",
                "Final verdicts on releases by watch and verdict (verified, condemned, inconclusive, superseded).",
                &["watch", "verdict"],
            ),
            rollbacks: counter(
                "backstop_rollbacks_total",
                "Rollbacks by watch and outcome (succeeded, failed, no_target, loop_prevented, unknown, superseded).",
                &["watch", "outcome"],
            ),
            duplicates: counter(
                "backstop_duplicate_deployments_total",
                "Deployments found carrying the marker of an intent that already had one: backstop deployed twice. Should always be 0.",
                &["watch"],
            ),
            deployer_errors: counter(
                "backstop_deployer_api_errors_total",
                "Failed calls to a deployer's API by deployer and operation.",
                &["deployer", "operation"],
            ),
            observation_duration: register(
                &r,
                HistogramVec::new(
                    HistogramOpts::new(
                        "backstop_observation_duration_seconds",
                        "Time from the start of an observation to its verdict.",
                    )
                    .buckets(vec![
                        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
                    ]),
                    &["watch", "verdict"],
                )
                .expect("valid metric"),
            ),
            observation_started: gauge(
                "backstop_observation_started_timestamp_seconds",
                "Unix time the current observation of a watch started; 0 when not observing.",
                &["watch"],
            ),
            deployments_seen: counter(
                "backstop_deployments_seen_total",
                "Deployments that started an observation, by watch, source (announce, webhook, poll, rollback, retry) and outcome (succeeded, failed: the deployment itself failed).",
                &["watch", "source", "outcome"],
            ),
            last_verdict: gauge(
                "backstop_last_verdict_timestamp_seconds",
                "Unix time of the last verdict of a watch.",
                &["watch"],
            ),
            reloads: counter(
                "backstop_config_reloads_total",
                "Configuration reloads by result (success, failure).",
                &["result"],
            ),
            notifications: counter(
                "backstop_notifications_total",
                "Notifications delivered to sinks by sink, event and result (ok, error).",
                &["sink", "event", "result"],
            ),
            actions: counter(
                "backstop_actions_total",
                "Decisions on condemned releases by watch and action (rollback, retry, notify, command, freeze, pause, dry_run).",
                &["watch", "action"],
            ),
            polls: counter(
                "backstop_deployer_polls_total",
                "Deployment discovery polls by watch and result (ok, error).",
                &["watch", "result"],
            ),
            start_time,
            scheduler_lag,
            fleet: FleetMetrics {
                nodes: prometheus::IntGauge::new(
                    "backstop_fleet_nodes",
                    "Live nodes of the fleet (heartbeat younger than a lease).",
                )
                .expect("valid metric"),
                owned: IntGaugeVec::new(
                    Opts::new(
                        "backstop_watches_owned",
                        "Watches whose live lease a node holds, by node.",
                    ),
                    &["node"],
                )
                .expect("valid metric"),
                unowned: prometheus::IntGauge::new(
                    "backstop_fleet_unowned_watches",
                    "Watches configured on a live node that no node holds a live lease of: nobody is watching them (their names are in /v1/status).",
                )
                .expect("valid metric"),
                takeovers: prometheus::IntCounter::new(
                    "backstop_lease_takeovers_total",
                    "Leases this node took from another node after they expired (the other node died, froze or lost the database).",
                )
                .expect("valid metric"),
            },
            registry: r,
        };
        for result in ["success", "failure"] {
            inner.reloads.with_label_values(&[result]);
        }
        Metrics(Arc::new(inner))
    }

    /// Creates the zero series of a watch and its checks, and publishes thresholds.
    pub fn register_watch(&self, watch: &str, deployer: &str, checks: &[(&str, &[Rule])]) {
        let m = &self.0;
        for (check, rules) in checks {
            for result in ["pass", "fail", "error", "no_data"] {
                m.checks.with_label_values(&[watch, check, result]);
            }
            for rule in rules.iter() {
                let (name, limit) = match rule {
                    Rule::Max(v) => ("max", *v),
                    Rule::Min(v) => ("min", *v),
                    Rule::MaxRatio(v) => ("max_ratio", *v),
                    Rule::MinRatio(v) => ("min_ratio", *v),
                    Rule::BurnRate(v) => ("burn_rate", *v),
                    Rule::ExpectStatus(_) | Rule::NoNewAlert => continue,
                };
                m.check_threshold
                    .with_label_values(&[watch, check, name])
                    .set(limit);
            }
        }
        // Verdict counters exist from the start (alerts use increase() on them); the duration
        // histogram does not: 13 series per verdict per watch would dominate the exposition
        // of a large install, and no alert needs its zero.
        for v in VerdictKind::ALL {
            m.verdicts.with_label_values(&[watch, v.as_str()]);
        }
        for o in RollbackOutcome::ALL {
            m.rollbacks.with_label_values(&[watch, o.as_str()]);
        }
        m.duplicates.with_label_values(&[watch]);
        for op in [
            "list_deployments",
            "get_deployment",
            "create_deployment",
            "get_task",
        ] {
            m.deployer_errors.with_label_values(&[deployer, op]);
        }
        m.observation_started.with_label_values(&[watch]).set(0.0);
        for result in ["ok", "error"] {
            m.polls.with_label_values(&[watch, result]);
        }
    }

    /// Drops the gauges of a watch removed from the config, so a stale `failed` state cannot
    /// keep an alert firing. Counters stay: their history is still true.
    pub fn forget_watch(&self, watch: &str) {
        let m = &self.0;
        for s in WatchState::ALL {
            let _ = m.watch_state.remove_label_values(&[watch, s.as_str()]);
        }
        let _ = m.observation_started.remove_label_values(&[watch]);
        let _ = m.last_verdict.remove_label_values(&[watch]);
    }

    /// Publishes the current state of a watch (1 for it, 0 for the others).
    pub fn set_state(&self, watch: &str, state: WatchState) {
        for s in WatchState::ALL {
            self.0
                .watch_state
                .with_label_values(&[watch, s.as_str()])
                .set(i64::from(s == state));
        }
    }

    pub fn check_sample(&self, watch: &str, check: &str, outcome: &Outcome, value: Option<f64>) {
        self.0
            .checks
            .with_label_values(&[watch, check, outcome.label()])
            .inc();
        if let Some(v) = value {
            self.0.check_value.with_label_values(&[watch, check]).set(v);
        }
    }

    pub fn check_baseline(&self, watch: &str, check: &str, baseline: Option<f64>) {
        self.0
            .check_baseline
            .with_label_values(&[watch, check])
            .set(baseline.unwrap_or(f64::NAN));
    }

    pub fn observation_started(&self, watch: &str, source: &str, failed: bool, at_unix: f64) {
        let outcome = if failed { "failed" } else { "succeeded" };
        self.0
            .deployments_seen
            .with_label_values(&[watch, source, outcome])
            .inc();
        self.0
            .observation_started
            .with_label_values(&[watch])
            .set(at_unix);
    }

    /// Marks a resumed observation without counting a new deployment.
    pub fn observation_resumed(&self, watch: &str, at_unix: f64) {
        self.0
            .observation_started
            .with_label_values(&[watch])
            .set(at_unix);
    }

    pub fn verdict(&self, watch: &str, verdict: VerdictKind, duration_secs: f64) {
        self.0
            .verdicts
            .with_label_values(&[watch, verdict.as_str()])
            .inc();
        self.0
            .observation_duration
            .with_label_values(&[watch, verdict.as_str()])
            .observe(duration_secs.max(0.0));
        self.0
            .observation_started
            .with_label_values(&[watch])
            .set(0.0);
        self.0
            .last_verdict
            .with_label_values(&[watch])
            .set(chrono::Utc::now().timestamp() as f64);
    }

    pub fn rollback(&self, watch: &str, outcome: RollbackOutcome) {
        self.0
            .rollbacks
            .with_label_values(&[watch, outcome.as_str()])
            .inc();
    }

    pub fn duplicate_deployments(&self, watch: &str, n: u64) {
        self.0.duplicates.with_label_values(&[watch]).inc_by(n);
    }

    pub fn deployer_error(&self, deployer: &str, operation: &str) {
        self.0
            .deployer_errors
            .with_label_values(&[deployer, operation])
            .inc();
    }

    pub fn poll(&self, watch: &str, ok: bool) {
        self.0
            .polls
            .with_label_values(&[watch, if ok { "ok" } else { "error" }])
            .inc();
    }

    /// A notification delivery finished (after its retries).
    pub fn notification(&self, sink: &str, event: &str, ok: bool) {
        self.0
            .notifications
            .with_label_values(&[sink, event, if ok { "ok" } else { "error" }])
            .inc();
    }

    /// A decision on a condemned release.
    pub fn action(&self, watch: &str, action: &str) {
        self.0.actions.with_label_values(&[watch, action]).inc();
    }

    pub fn reload(&self, ok: bool) {
        self.0
            .reloads
            .with_label_values(&[if ok { "success" } else { "failure" }])
            .inc();
    }

    /// Publishes the fleet's series (once, when the daemon runs in a fleet).
    pub fn enable_fleet(&self) {
        let f = self.0.fleet.clone();
        let r = &self.0.registry;
        let _ = r.register(Box::new(f.nodes));
        let _ = r.register(Box::new(f.owned));
        let _ = r.register(Box::new(f.unowned));
        let _ = r.register(Box::new(f.takeovers));
    }

    /// The fleet as the database shows it: live nodes, watches owned per live node (nodes not
    /// listed are dropped from the series), and watches nobody owns.
    pub fn fleet(&self, nodes: usize, owned: &[(String, usize)], unowned: usize) {
        let f = &self.0.fleet;
        f.nodes.set(nodes as i64);
        f.owned.reset();
        for (node, n) in owned {
            f.owned.with_label_values(&[node]).set(*n as i64);
        }
        f.unowned.set(unowned as i64);
    }

    pub fn lease_takeover(&self) {
        self.0.fleet.takeovers.inc();
    }

    /// The exposition in Prometheus text format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let families = self.0.registry.gather();
        if TextEncoder::new().encode(&families, &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }

    /// The recent maximum of the scheduler lag probe ([`crate::engine::lag`]).
    pub fn scheduler_lag(&self, lag: std::time::Duration) {
        self.0.scheduler_lag.set(lag.as_secs_f64());
    }

    /// Start time, for tests and status.
    pub fn start_time(&self) -> f64 {
        self.0.start_time.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_watch_exports_zero_series() {
        let m = Metrics::new();
        m.register_watch("shop", "octo", &[("errors", &[Rule::Max(0.05)])]);
        m.set_state("shop", WatchState::Idle);
        let text = m.render();
        assert!(
            text.contains(r#"backstop_checks_total{check="errors",result="fail",watch="shop"} 0"#)
        );
        assert!(text.contains(r#"backstop_rollbacks_total{outcome="succeeded",watch="shop"} 0"#));
        assert!(text.contains(r#"backstop_watch_state{state="idle",watch="shop"} 1"#));
        assert!(text.contains(r#"backstop_watch_state{state="failed",watch="shop"} 0"#));
        assert!(text
            .contains(r#"backstop_check_threshold{check="errors",rule="max",watch="shop"} 0.05"#));
        assert!(text.contains("backstop_build_info{version="));
    }

    #[test]
    fn forgotten_watches_lose_their_state_gauges() {
        let m = Metrics::new();
        m.register_watch("gone", "octo", &[]);
        m.set_state("gone", WatchState::Failed);
        m.forget_watch("gone");
        assert!(!m
            .render()
            .contains(r#"backstop_watch_state{state="failed",watch="gone"}"#));
    }

    #[test]
    fn registries_are_independent() {
        let a = Metrics::new();
        let b = Metrics::new();
        a.rollback("w", RollbackOutcome::Failed);
        assert!(a.render().contains("backstop_rollbacks_total"));
        assert!(!b.render().contains("backstop_rollbacks_total{"));
    }
}
