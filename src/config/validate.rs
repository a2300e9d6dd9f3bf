//! The schema: turns the generic tree into a typed [`Config`], reporting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::fields::{Errors, Table};
use super::load::ConfigError;
use super::policy::{command_hook, deploy_failure_policy, hooks, policy};
use super::{
    CheckConfig, Config, NoData, OnFailure, Probe, ServerConfig, SinkConfig, Unreachable,
    WatchConfig,
};
use crate::judge::Rule;
use crate::secret::{Secret, SecretSource};

const DEFAULT_LISTEN: &str = "127.0.0.1:9870";
/// The default `warmup`, 15 s: the longest that still rolls back a release that never comes
/// up within 20 s of its deployment (judged at warmup, condemned two fast rounds later). A
/// release that comes up is judged as soon as its http checks pass, so a longer warmup would
/// only delay the dead ones; services slower to start than ~19 s set their own.
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(15);

/// Validates a config tree. Relative secret paths are resolved against `config_dir` (or
/// `$CREDENTIALS_DIRECTORY` when set). Returns every error found, not only the first.
pub fn validate(tree: &Value, config_dir: &Path) -> Result<Config, Vec<ConfigError>> {
    validate_with(tree, config_dir, false).map(|(c, _)| c)
}

/// Like [`validate`]; with `lenient_secrets`, unreadable secrets are returned as warnings and
/// replaced by empty placeholders (for `check-config` only: such a config must not run).
pub fn validate_with(
    tree: &Value,
    config_dir: &Path,
    lenient_secrets: bool,
) -> Result<(Config, Vec<ConfigError>), Vec<ConfigError>> {
    let errors = Errors::new(lenient_secrets);
    let root = Table::root(tree, &errors);
    let server = server(&root, config_dir, &errors);
    let state = super::state::state(&root, config_dir);
    let fleet = super::fleet::fleet(&root);
    let metrics = super::metrics::metrics(&root);
    let deployers = super::deployers::deployers(&root, config_dir);
    let sinks = super::sinks::sinks(&root, config_dir);
    let dry_run = root.boolean("dry_run").unwrap_or(false);
    let watches = watches(&root, &deployers, &sinks, dry_run);
    root.finish();
    let warnings = errors.take_warnings();
    if errors.is_empty() {
        Ok((
            Config {
                server: server.expect("server is built when there are no errors"),
                state,
                fleet,
                metrics,
                deployers: deployers
                    .into_iter()
                    .filter_map(|(k, (_, v))| v.map(|v| (k, v)))
                    .collect(),
                sinks: sinks
                    .into_iter()
                    .filter_map(|(k, v)| v.map(|v| (k, v)))
                    .collect(),
                watches,
            },
            warnings,
        ))
    } else {
        Err(errors.into_vec())
    }
}

/// An `http://` or `https://` URL, without a trailing slash.
pub(super) fn http_url(t: &Table, key: &str) -> Option<String> {
    t.required_string(key).and_then(|u| {
        let u = u.trim_end_matches('/').to_string();
        if u.starts_with("http://") || u.starts_with("https://") {
            Some(u)
        } else {
            let shown = crate::secret::redact_url(&u);
            t.error(
                key,
                format!("{shown:?} must start with http:// or https://"),
            );
            None
        }
    })
}

pub(super) fn load_secret(t: &Table, base: &str, dir: &Path) -> Option<Secret> {
    let source = t.secret(base)?;
    let key = match &source {
        SecretSource::File(_) => format!("{base}_file"),
        SecretSource::Env(_) => format!("{base}_env"),
        SecretSource::Credential(_) => format!("{base}_credential"),
    };
    match source.load(dir) {
        Ok(s) => Some(s),
        Err(e) => {
            t.secret_error(&key, e.to_string());
            t.lenient_secrets().then(|| Secret::new(""))
        }
    }
}

fn server(root: &Table, dir: &Path, errors: &Errors) -> Option<ServerConfig> {
    let t = root.table("server");
    let listen_text = t
        .as_ref()
        .and_then(|t| t.string("listen"))
        .unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(
                "server.listen",
                format!("{listen_text:?} is not an address like 127.0.0.1:9870"),
            );
            None
        }
    };
    let token = t.as_ref().and_then(|t| load_secret(t, "token", dir));
    let ui = t.as_ref().and_then(|t| t.boolean("ui")).unwrap_or(true);
    if let Some(t) = t {
        t.finish();
    }
    Some(ServerConfig {
        listen: listen?,
        token,
        ui,
    })
}

fn watches(
    root: &Table,
    deployers: &super::deployers::Parsed,
    sinks: &BTreeMap<String, Option<SinkConfig>>,
    dry_run: bool,
) -> Vec<std::sync::Arc<WatchConfig>> {
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for t in root.tables("watch") {
        if let Some(name) = t.string("name") {
            if !names.insert(name.clone()) {
                t.error("name", format!("duplicate watch name {name:?}"));
            }
        }
        if let Some(w) = watch(&t, deployers, sinks, dry_run) {
            out.push(std::sync::Arc::new(w));
        }
        t.finish();
    }
    out
}

fn watch(
    t: &Table,
    deployers: &super::deployers::Parsed,
    sinks: &BTreeMap<String, Option<SinkConfig>>,
    global_dry_run: bool,
) -> Option<WatchConfig> {
    let name = t.required_string("name");
    if let Some(n) = &name {
        if !n
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            t.error(
                "name",
                format!("{n:?} may only contain letters, digits, '-', '_' and '.'"),
            );
        }
    }
    let deployer = t.required_string("deployer");
    let kind = match &deployer {
        Some(d) => match deployers.get(d) {
            Some((kind, _)) => *kind,
            None => {
                t.error(
                    "deployer",
                    format!(
                        "no [deployers.{d}] table; known deployers: {:?}",
                        deployers.keys().collect::<Vec<_>>()
                    ),
                );
                None
            }
        },
        None => None,
    };
    let (project, environment) = if kind == Some("octopus") {
        (
            t.required_string("project"),
            t.required_string("environment"),
        )
    } else {
        (
            Some(t.string("project").unwrap_or_default()),
            Some(t.string("environment").unwrap_or_default()),
        )
    };
    let application = if kind == Some("argocd") {
        t.required_string("application")
    } else {
        if t.has("application") {
            t.error("application", "only applies to argocd deployers");
        }
        None
    };
    let poll = t.duration("poll");
    if poll.is_some() && kind.is_some_and(|k| k != "octopus") {
        t.error(
            "poll",
            "polling for deployments is supported for octopus deployers only",
        );
    }
    let warmup = t.duration_or_zero("warmup").unwrap_or(DEFAULT_WARMUP);
    let window = t.duration("window").unwrap_or(Duration::from_secs(600));
    let interval = t.duration("interval").unwrap_or(Duration::from_secs(10));
    let fast_explicit = t.duration("fast_interval");
    let fast_interval =
        fast_explicit.unwrap_or((interval / 5).max(Duration::from_secs(1)).min(interval));
    if fast_interval > interval {
        t.error(
            "fast_interval",
            format!(
                "{} is longer than interval {}: the fast cadence must be faster",
                humantime::format_duration(fast_interval),
                humantime::format_duration(interval)
            ),
        );
    }
    let fast_for = t
        .duration_or_zero("fast_for")
        .unwrap_or(Duration::from_secs(120));
    let on_failure = policy(t);
    let on_deploy_failure = deploy_failure_policy(t);
    let hooks = hooks(t);
    let command = command_hook(t);
    if on_failure == Some(OnFailure::Command) && command.is_none() && !t.has("command") {
        t.error(
            "on_failure",
            "\"command\" needs a [watch.command] table with the program to run",
        );
    }
    let error_limit = t.count("error_limit").unwrap_or(5);
    let dry_run = t.boolean("dry_run").unwrap_or(global_dry_run);
    let max_actions = t.count("max_actions").unwrap_or(3);
    let max_actions_period = t
        .duration("max_actions_period")
        .unwrap_or(Duration::from_secs(3600));
    let notify = t.strings("notify").unwrap_or_default();
    for sink in &notify {
        if !sinks.contains_key(sink) {
            t.error(
                "notify",
                format!(
                    "no [notify.{sink}] table; known sinks: {:?}",
                    sinks.keys().collect::<Vec<_>>()
                ),
            );
        }
    }
    if interval > window {
        t.error(
            "interval",
            "is longer than window: no sample would be judged",
        );
    }
    let mut check_names = BTreeSet::new();
    let mut checks = Vec::new();
    let tables = t.tables("check");
    if tables.is_empty() && !t.has("check") {
        t.error("check", "a watch needs at least one [[watch.check]]");
    }
    for c in tables {
        if let Some(n) = c.string("name") {
            if !check_names.insert(n.clone()) {
                c.error("name", format!("duplicate check name {n:?} in this watch"));
            }
        }
        if let Some(check) = check(&c, interval, fast_explicit.map(|_| fast_interval), window) {
            if let Probe::Prometheus { lookback, .. } = &check.probe {
                if *lookback > warmup {
                    c.warn(
                        "query",
                        format!(
                            "looks back {} but warmup is {}: its first samples mix the previous release's data; a failure of such a sample counts only when that release was verified (after a condemned one, as after a rollback, it is no data)",
                            humantime::format_duration(*lookback),
                            humantime::format_duration(warmup)
                        ),
                    );
                }
            }
            checks.push(check);
        }
        c.finish();
    }
    // A default fast cadence is never faster than the slowest check's timeout allows.
    let fast_interval = match fast_explicit {
        Some(f) => f,
        None => checks
            .iter()
            .map(|c: &CheckConfig| probe_timeout(&c.probe).mul_f64(1.25))
            .fold(fast_interval, Duration::max)
            .min(interval),
    };
    Some(WatchConfig {
        name: name?,
        deployer: deployer?,
        project: project?,
        environment: environment?,
        poll,
        warmup,
        window,
        interval,
        fast_interval,
        fast_for,
        on_failure: on_failure?,
        error_limit,
        application,
        command,
        on_deploy_failure: on_deploy_failure?,
        hooks,
        dry_run,
        max_actions,
        max_actions_period,
        notify,
        checks,
    })
}

fn check(
    t: &Table,
    interval: Duration,
    fast_explicit: Option<Duration>,
    window: Duration,
) -> Option<CheckConfig> {
    let fast_interval =
        fast_explicit.unwrap_or((interval / 5).max(Duration::from_secs(1)).min(interval));
    let name = t.required_string("name");
    let kind = t.required_string("kind");
    // An alert has been confirmed by its rule's `for` already: the first firing sample is
    // the verdict unless the user asks for more.
    let default_limit = if kind.as_deref() == Some("alert") {
        1
    } else {
        3
    };
    let failure_limit = t.count("failure_limit").unwrap_or(default_limit);
    let url = http_url(t, "url");
    // Leave headroom so a slow target cannot push one round into the next, at the fast
    // cadence too.
    let default_timeout = Duration::from_secs(5).min(fast_interval.mul_f64(0.8));
    let timeout = t.duration("timeout").unwrap_or(default_timeout);
    // Against the interval always; against fast_interval when it was set (a default
    // fast_interval grows to fit the checks' timeouts instead, so older configs stay valid).
    let (limit, what) = match fast_explicit {
        Some(f) => (f, "fast_interval"),
        None => (interval, "interval"),
    };
    if timeout >= limit {
        t.error(
            "timeout",
            format!(
                "{} is not shorter than the watch {what} {}: rounds would overlap",
                humantime::format_duration(timeout),
                humantime::format_duration(limit)
            ),
        );
    }
    let explicit_failure_for = t.duration_or_zero("min_failure_for");
    let (probe, rules) = match kind.as_deref() {
        Some("http") => {
            let codes = t.statuses("expect_status").unwrap_or_else(|| vec![200]);
            (
                url.map(|url| Probe::Http { url, timeout }),
                vec![Rule::ExpectStatus(codes)],
            )
        }
        Some("prometheus") => {
            let query = t.required_string("query");
            let (rules, baseline_window) = threshold_rules(t, "prometheus");
            // Parsed here, so a typo is a config error, not a round of errors.
            let lookback = query.as_deref().and_then(|q| {
                crate::judge::lookback::lookback(q)
                    .map_err(|e| t.error("query", format!("is not valid PromQL: {e}")))
                    .ok()
            });
            let probe = match (url, query, lookback) {
                (Some(url), Some(query), Some(lookback)) => Some(Probe::Prometheus {
                    url: url.trim_end_matches('/').to_string(),
                    query,
                    timeout,
                    baseline_window,
                    lookback,
                }),
                _ => None,
            };
            (probe, rules)
        }
        Some("scrape") => super::scrape::scrape(t, url, timeout, interval),
        Some("alert") => super::alert::alert(t, url, timeout),
        Some("slo") => super::slo::slo(t, url, timeout),
        Some(other) => {
            t.error(
                "kind",
                format!(
                    "unknown check kind {other:?}; expected \"http\", \"prometheus\", \"scrape\", \"alert\" or \"slo\""
                ),
            );
            (None, Vec::new())
        }
        None => (None, Vec::new()),
    };
    if let Some(kind) = kind.as_deref() {
        for (key, kinds) in KIND_KEYS {
            if KINDS.contains(&kind) && !kinds.contains(&kind) && t.has(key) {
                t.error(key, format!("is not a setting of {kind} checks"));
                consume(t, key);
            }
        }
    }
    let unreachable = match t.string("unreachable").as_deref() {
        None | Some("fail") => Unreachable::Fail,
        Some("error") => Unreachable::Error,
        Some(other) => {
            t.error(
                "unreachable",
                format!("expected \"fail\" or \"error\", found {other:?}"),
            );
            Unreachable::Fail
        }
    };
    let no_data = match t.string("no_data").as_deref() {
        None | Some("error") => NoData::Error,
        Some("pass") => NoData::Pass,
        Some("fail") => NoData::Fail,
        Some(other) => {
            t.error(
                "no_data",
                format!("expected \"error\", \"pass\" or \"fail\", found {other:?}"),
            );
            NoData::Error
        }
    };
    let rounds = (window.as_secs_f64() / interval.as_secs_f64().max(1e-3)).floor() as u32;
    let min_samples = t.count("min_samples").unwrap_or((rounds / 2).max(1));
    if min_samples > rounds.max(1) {
        t.error(
            "min_samples",
            format!(
                "is more than the {rounds} rounds the window holds: no release could be verified"
            ),
        );
    }
    let min_traffic = super::traffic::min_traffic(t, kind.as_deref());
    let compare = match kind.as_deref() {
        Some("prometheus") => super::compare::compare(t, interval, true),
        Some("scrape") => super::compare::compare(t, interval, false),
        _ => None,
    };
    let control = match kind.as_deref() {
        Some(k @ ("prometheus" | "scrape")) => {
            super::control::control(t, k == "scrape", probe.as_ref())
        }
        _ => None,
    };
    let baseline_floor = baseline_floor(t, &rules);
    let min_failure_for = explicit_failure_for.unwrap_or_else(|| {
        default_min_failure_for(probe.as_ref(), fast_interval, failure_limit, window)
    });
    let compare = compare.map(|mut c| {
        c.rule.overlap = overlap(probe.as_ref(), c.step);
        c
    });
    Some(CheckConfig {
        name: name?,
        failure_limit,
        probe: probe?,
        rules,
        unreachable,
        no_data,
        min_samples,
        min_traffic,
        min_failure_for,
        baseline_floor,
        compare,
        control,
    })
}

/// `baseline_floor`: a number ≥ 0, meaningful beside a ratio rule only.
fn baseline_floor(t: &Table, rules: &[Rule]) -> Option<f64> {
    let floor = t.number("baseline_floor")?;
    if floor.is_nan() || floor < 0.0 || floor.is_infinite() {
        t.error("baseline_floor", "must be a number of at least 0");
        return None;
    }
    if !rules.iter().any(Rule::needs_baseline) {
        t.error(
            "baseline_floor",
            "has no effect without max_ratio or min_ratio",
        );
    }
    Some(floor)
}

/// The default `min_failure_for`: `failure_limit` rounds at the fast cadence and, for a
/// Prometheus query that reads a look-back window W (`rate(x[1m])`: one minute), at least
/// FAILURE_SPAN_OF_LOOKBACK × W (at most half the observation window). Rounds taken 2 s apart
/// read almost the same window: three of them are one observation, and one noisy minute would
/// condemn. A run spanning half the window reads half of it anew at its end, so it holds at
/// least two observations' worth of data; http checks, scrapes and instant queries read new
/// data every round and keep the fast confirmation.
fn default_min_failure_for(
    probe: Option<&Probe>,
    fast_interval: Duration,
    failure_limit: u32,
    window: Duration,
) -> Duration {
    let rounds = fast_interval * failure_limit.saturating_sub(1);
    match probe {
        Some(Probe::Prometheus { lookback, .. }) => {
            rounds.max(lookback.mul_f64(FAILURE_SPAN_OF_LOOKBACK).min(window / 2))
        }
        _ => rounds,
    }
}

/// The share of a query's look-back a failure run must span by default (see
/// [`default_min_failure_for`]).
const FAILURE_SPAN_OF_LOOKBACK: f64 = 0.5;

/// How many consecutive `compare` samples share one look-back window: W / step, at least 1.
/// A 1-minute rate sampled every 10 s is six samples of about one minute's data; the
/// comparison counts them as one (see `judge::compare`).
fn overlap(probe: Option<&Probe>, step: Duration) -> f64 {
    match probe {
        Some(Probe::Prometheus { lookback, .. }) if !step.is_zero() => {
            (lookback.as_secs_f64() / step.as_secs_f64()).max(1.0)
        }
        _ => 1.0,
    }
}

/// The check kinds.
const KINDS: [&str; 5] = ["http", "prometheus", "scrape", "alert", "slo"];

/// The kinds that accept each kind-specific key, so a key given to another kind is named as
/// misplaced rather than unknown.
const KIND_KEYS: [(&str, &[&str]); 33] = [
    ("expect_status", &["http"]),
    ("baseline_floor", &["prometheus", "scrape"]),
    // Prometheus is telemetry: its being unreachable is always an error, never a failure
    // (slo checks accept it only with scrape selections, see `slo`).
    ("unreachable", &["http", "scrape", "slo"]),
    ("query", &["prometheus"]),
    ("max", &["prometheus", "scrape"]),
    ("min", &["prometheus", "scrape"]),
    ("max_ratio", &["prometheus", "scrape"]),
    ("min_ratio", &["prometheus", "scrape"]),
    ("baseline_window", &["prometheus", "scrape"]),
    ("mode", &["scrape"]),
    ("metric", &["scrape"]),
    ("labels", &["scrape", "alert"]),
    ("numerator", &["scrape"]),
    ("denominator", &["scrape"]),
    ("rate_window", &["scrape"]),
    ("quantile", &["scrape"]),
    ("source", &["alert"]),
    ("include_silenced", &["alert"]),
    ("objective", &["slo"]),
    ("good", &["slo"]),
    ("total", &["slo"]),
    ("burn_rate", &["slo"]),
    ("long_window", &["slo"]),
    ("compare", &["prometheus", "scrape"]),
    ("direction", &["prometheus", "scrape"]),
    ("confidence", &["prometheus", "scrape"]),
    ("allowed_increase", &["prometheus", "scrape"]),
    ("allowed_decrease", &["prometheus", "scrape"]),
    ("compare_min_samples", &["prometheus", "scrape"]),
    // Scrape checks compare their own scrapes: no range query, no step.
    ("step", &["prometheus"]),
    // A control is compared with a value: http and alert checks have none.
    ("control_query", &["prometheus", "scrape"]),
    ("control_url", &["prometheus", "scrape"]),
    ("control_tolerance", &["prometheus", "scrape"]),
];

/// Reads a misplaced key with its natural accessor, so that it is reported once (as
/// misplaced) and not also as unknown.
pub(super) fn consume(t: &Table, key: &str) {
    match key {
        "expect_status" => drop(t.statuses(key)),
        "labels" => drop(t.string_map(key)),
        "numerator" | "denominator" => drop(t.table(key)),
        // PromQL or a scrape selection.
        "good" | "total" => {
            if t.table_if_table(key).is_none() {
                drop(t.string(key));
            }
        }
        "quantile" | "confidence" | "allowed_increase" | "allowed_decrease" | "objective"
        | "burn_rate" | "control_tolerance" => {
            let _ = t.number(key);
        }
        "compare_min_samples" => drop(t.count(key)),
        "include_silenced" => drop(t.boolean(key)),
        _ => drop(t.string(key)),
    }
}

/// The threshold rules of a numeric check (`max`, `min`, `max_ratio`, `min_ratio`) and its
/// `baseline_window` (default 10m when a ratio rule needs one). At least one rule is required.
pub(super) fn threshold_rules(t: &Table, kind: &str) -> (Vec<Rule>, Option<Duration>) {
    let mut rules = Vec::new();
    if let Some(v) = t.number("max") {
        rules.push(Rule::Max(v));
    }
    if let Some(v) = t.number("min") {
        rules.push(Rule::Min(v));
    }
    for (key, make) in [
        ("max_ratio", Rule::MaxRatio as fn(f64) -> Rule),
        ("min_ratio", Rule::MinRatio),
    ] {
        if let Some(v) = t.number(key) {
            if v <= 0.0 {
                t.error(key, "must be greater than zero");
            } else {
                rules.push(make(v));
            }
        }
    }
    let given = ["max", "min", "max_ratio", "min_ratio", "compare"]
        .iter()
        .any(|k| t.has(k));
    if !given {
        t.error(
            "max",
            format!("a {kind} check needs a rule: set max, min, max_ratio, min_ratio or compare"),
        );
    }
    if let (Some(Rule::Min(lo)), Some(Rule::Max(hi))) = (
        rules.iter().find(|r| matches!(r, Rule::Min(_))),
        rules.iter().find(|r| matches!(r, Rule::Max(_))),
    ) {
        if lo > hi {
            t.error(
                "min",
                format!("min {lo} is above max {hi}: every sample would fail"),
            );
        }
    }
    let mut baseline_window = t.duration("baseline_window");
    // `compare` takes its pre-deployment samples from the same window; a control compares
    // the check's move from its baseline with the control's over it.
    if rules.iter().any(Rule::needs_baseline) || t.has("compare") || t.has("control_query") {
        baseline_window.get_or_insert(Duration::from_secs(600));
    } else if baseline_window.is_some() {
        t.error(
            "baseline_window",
            "has no effect without max_ratio, min_ratio, compare or control_query",
        );
    }
    (rules, baseline_window)
}

/// A probe's per-request timeout.
fn probe_timeout(p: &Probe) -> Duration {
    match p {
        Probe::Http { timeout, .. } | Probe::Prometheus { timeout, .. } => *timeout,
        Probe::Scrape(s) => s.timeout,
        Probe::Alert(a) => a.timeout,
        Probe::Slo(s) => s.timeout,
    }
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
