//! Every metric backstop exports: names, help texts, labels and buckets live here only.
//!
//! The registry is owned (not the global default) so each daemon, and each test, has its own.
//! Label sets are bounded (watch, check, result, outcome, deployer, operation): release ids and
//! URLs never become labels. Series known to exist are created at zero when a watch is
//! registered, so `increase()` alerts work from the first scrape.
//!
//! A watch costs at most [`SERIES_PER_WATCH`] series whatever its number of checks and whatever
//! happens to it: its state, its observation start, its verdicts and its check samples by
//! result. Everything else (rollback outcomes, deployment sources, actions, the duration
//! histogram) is counted for the whole daemon, so `/metrics` stays small at thousands of
//! watches. `[metrics] per_check` adds the per-check series on top ([`PerCheck`]).

mod per_check;
mod render;
mod watches;

pub(crate) use watches::escape_into as escape_label_value;

use std::sync::Arc;

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::config::metrics::MetricsConfig;
use crate::judge::observation::VerdictKind;
use crate::judge::{Outcome, Rule};
use crate::model::Source;
use crate::status::WatchState;
use per_check::PerCheck;

/// The most series one watch has in `/metrics` without `[metrics] per_check`: one
/// `backstop_watch_state` (the current state only), one
/// `backstop_observation_started_timestamp_seconds`, four `backstop_verdicts_total` and four
/// `backstop_checks_total` (one per result).
pub const SERIES_PER_WATCH: usize = 10;

use watches::CHECK_RESULTS;

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
    /// `backstop_checks_total{watch,check,result}`: with `per_check` only (without it, the
    /// family is `{watch,result}` in `watches`).
    checks: Option<IntCounterVec>,
    /// Present with `[metrics] per_check` only.
    per_check: Option<PerCheck>,
    /// State, observation start, verdicts (and check samples without `per_check`) of every
    /// watch, rendered directly (see `watches`).
    watches: watches::WatchTable,
    rollbacks: IntCounterVec,
    duplicates: IntCounter,
    deployer_errors: IntCounterVec,
    observation_duration: HistogramVec,
    deployments_seen: IntCounterVec,
    reloads: IntCounterVec,
    polls: IntCounterVec,
    notifications: IntCounterVec,
    actions: IntCounterVec,
    start_time: Gauge,
    scheduler_lag: Gauge,
    /// Registered only in a fleet ([`Metrics::enable_fleet`]): a single node is not a fleet.
    fleet: FleetMetrics,
    rendered: render::Cache,
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
    /// The default, bounded metrics.
    pub fn new() -> Self {
        Self::with_config(&MetricsConfig::default())
    }

    pub fn with_config(config: &MetricsConfig) -> Self {
        let r = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            register(
                &r,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
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
        let per_check = config.per_check.then(|| PerCheck::register(&r));
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
            checks: config.per_check.then(|| {
                counter(
                    "backstop_checks_total",
                    "Check samples taken, by watch, check and result (pass, fail, error, no_data).",
                    &["watch", "check", "result"],
                )
            }),
            per_check,
            watches: watches::WatchTable::new(!config.per_check),
            rollbacks: counter(
                "backstop_rollbacks_total",
                "Rollbacks of all watches by outcome (succeeded, failed, no_target, loop_prevented, unknown, superseded).",
                &["outcome"],
            ),
            duplicates: register(
                &r,
                IntCounter::new(
                    "backstop_duplicate_deployments_total",
                    "Deployments found carrying the marker of an intent that already had one: backstop deployed twice. Should always be 0.",
                )
                .expect("valid metric"),
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
                        "Time from the start of an observation to its verdict, all watches, by verdict.",
                    )
                    .buckets(vec![
                        10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0,
                    ]),
                    &["verdict"],
                )
                .expect("valid metric"),
            ),
            deployments_seen: counter(
                "backstop_deployments_seen_total",
                "Deployments that started an observation, all watches, by source (announce, webhook, poll, rollback, retry) and outcome (succeeded, failed: the deployment itself failed).",
                &["source", "outcome"],
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
                "Decisions on condemned releases, all watches, by action (rollback, retry, notify, command, freeze, pause, dry_run).",
                &["action"],
            ),
            polls: counter(
                "backstop_deployer_polls_total",
                "Deployment discovery polls of all the watches of a deployer, by deployer and result (ok, error).",
                &["deployer", "result"],
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
            rendered: render::Cache::default(),
        };
        // Daemon-wide series that alerts read with increase() exist from the start.
        for result in ["success", "failure"] {
            inner.reloads.with_label_values(&[result]);
        }
        for o in RollbackOutcome::ALL {
            inner.rollbacks.with_label_values(&[o.as_str()]);
        }
        for s in Source::ALL {
            inner
                .deployments_seen
                .with_label_values(&[s.as_str(), "failed"]);
        }
        Metrics(Arc::new(inner))
    }

    /// Creates the zero series of a watch (and of its checks with `per_check`), and of its
    /// deployer.
    pub fn register_watch(&self, watch: &str, deployer: &str, checks: &[(&str, &[Rule])]) {
        let m = &self.0;
        // The watch's counters (check samples, verdicts) exist from the start, at zero: alerts
        // use increase() on them. The duration histogram is daemon-wide and fills at the
        // first verdict.
        m.watches.register(watch);
        if let (Some(pc), Some(vec)) = (&m.per_check, &m.checks) {
            for (check, rules) in checks {
                for result in CHECK_RESULTS {
                    vec.with_label_values(&[watch, check, result]);
                }
                pc.thresholds(watch, check, rules);
            }
        }
        for op in [
            "list_deployments",
            "get_deployment",
            "create_deployment",
            "get_task",
        ] {
            m.deployer_errors.with_label_values(&[deployer, op]);
        }
        for result in ["ok", "error"] {
            m.polls.with_label_values(&[deployer, result]);
        }
    }

    /// Drops the gauges of a watch removed from the config, so a stale `failed` state cannot
    /// keep an alert firing. Counters stay: their history is still true.
    pub fn forget_watch(&self, watch: &str) {
        self.0.watches.forget(watch);
    }

    /// Publishes the current state of a watch: its series is 1, and the other states have
    /// none (five series per watch where one says it all).
    pub fn set_state(&self, watch: &str, state: WatchState) {
        self.0.watches.set_state(watch, state);
    }

    pub fn check_sample(&self, watch: &str, check: &str, outcome: &Outcome, value: Option<f64>) {
        let m = &self.0;
        let result = outcome.label();
        match (&m.per_check, &m.checks) {
            (Some(pc), Some(vec)) => {
                vec.with_label_values(&[watch, check, result]).inc();
                if let Some(v) = value {
                    pc.value.with_label_values(&[watch, check]).set(v);
                }
            }
            _ => {
                if let Some(i) = CHECK_RESULTS.iter().position(|r| *r == result) {
                    m.watches.check_sample(watch, i);
                }
            }
        }
    }

    pub fn check_baseline(&self, watch: &str, check: &str, baseline: Option<f64>) {
        if let Some(pc) = &self.0.per_check {
            pc.baseline
                .with_label_values(&[watch, check])
                .set(baseline.unwrap_or(f64::NAN));
        }
    }

    pub fn observation_started(&self, watch: &str, source: &str, failed: bool, at_unix: f64) {
        let outcome = if failed { "failed" } else { "succeeded" };
        self.0
            .deployments_seen
            .with_label_values(&[source, outcome])
            .inc();
        self.0.watches.started(watch, at_unix);
    }

    /// Marks a resumed observation without counting a new deployment.
    pub fn observation_resumed(&self, watch: &str, at_unix: f64) {
        self.0.watches.started(watch, at_unix);
    }

    pub fn verdict(&self, watch: &str, verdict: VerdictKind, duration_secs: f64) {
        self.0.watches.verdict(watch, verdict);
        self.0
            .observation_duration
            .with_label_values(&[verdict.as_str()])
            .observe(duration_secs.max(0.0));
    }

    pub fn rollback(&self, outcome: RollbackOutcome) {
        self.0
            .rollbacks
            .with_label_values(&[outcome.as_str()])
            .inc();
    }

    pub fn duplicate_deployments(&self, n: u64) {
        self.0.duplicates.inc_by(n);
    }

    pub fn deployer_error(&self, deployer: &str, operation: &str) {
        self.0
            .deployer_errors
            .with_label_values(&[deployer, operation])
            .inc();
    }

    /// A discovery poll of one of the deployer's watches finished.
    pub fn poll(&self, deployer: &str, ok: bool) {
        self.0
            .polls
            .with_label_values(&[deployer, if ok { "ok" } else { "error" }])
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
    pub fn action(&self, action: &str) {
        self.0.actions.with_label_values(&[action]).inc();
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

    /// Publishes the store writer's series (`backstop_store_*`: transitions, transactions,
    /// queue, batch time).
    pub fn register_store(&self, w: crate::store::WriterStats) {
        let r = &self.0.registry;
        let _ = r.register(Box::new(w.commits));
        let _ = r.register(Box::new(w.transactions));
        let _ = r.register(Box::new(w.queued));
        let _ = r.register(Box::new(w.seconds));
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
mod tests;
