//! `backstop backtest`: what backstop would have decided about a watch's past deployments.
//!
//! The deployer lists the deployments of the watch's project to its environment in the range
//! (`source`, read-only: it never calls a deploy API); each one's checks are read back from
//! Prometheus history (`fetch`, range queries at the watch's cadence) and replayed (`decide`),
//! round by round (`sample`), through the daemon's own lifecycle core ([`crate::replay`]):
//! the same rules, streaks, `min_samples`, controls and policies, not a reimplementation.
//! Checks that cannot be replayed from history (http, scrape, slo, Alertmanager alerts) are
//! left out and reported (`checks`). Deployments are replayed oldest first, so one this
//! backtest condemns is no rollback target for the next (`history`). The result is a
//! [`report::Report`]: JSON, or text ([`render`]). This module is the I/O shell; every other
//! but `fetch` and `source` is pure.
//!
//! Each deployment is replayed on its own, with a fresh watch: `max_actions` and a pause
//! never carry over, and a rollback backstop would have made does not change the history
//! that follows (what really ran next is what is replayed next).

mod checks;
mod decide;
mod fetch;
mod history;
pub mod render;
pub mod report;
mod sample;
mod source;
pub mod time;

use std::collections::HashSet;
use std::path::Path;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DeployerConfig, LoadError, OctopusConfig, WatchConfig};
use crate::deployer::octopus::OctopusClient;
use crate::deployer::{DeployerError, Deployment};
use crate::judge::observation::VerdictKind;
use crate::metrics::Metrics;
use crate::replay::{self, Outcome};
use report::{Facts, Report};

/// Why a backtest could not run.
#[derive(Debug, thiserror::Error)]
pub enum BacktestError {
    #[error("{path}: {source}")]
    Config { path: String, source: LoadError },
    #[error("{0}")]
    Time(String),
    #[error("no watch named {name:?} in the config (watches: {known})")]
    UnknownWatch { name: String, known: String },
    #[error("backtest needs a deployer that can list past deployments (octopus); watch {watch:?} uses deployer {deployer:?} of kind {kind}")]
    Unsupported {
        watch: String,
        deployer: String,
        kind: &'static str,
    },
    #[error("watch {watch:?} has no check that can be replayed from history: {skipped}")]
    NothingToReplay { watch: String, skipped: String },
    #[error("cannot list the past deployments from deployer {deployer:?}: {source}")]
    Deployer {
        deployer: String,
        source: DeployerError,
    },
    #[error("cannot start: {0}")]
    Setup(String),
}

/// The command: loads the config, runs the backtest, renders it (JSON or text).
pub async fn command(
    config: &Path,
    watch: &str,
    from: &str,
    to: Option<&str>,
    json: bool,
) -> Result<String, BacktestError> {
    let cfg = crate::config::load(config).map_err(|source| BacktestError::Config {
        path: config.display().to_string(),
        source,
    })?;
    let now = Utc::now();
    let (from, to) = time::range(from, to, now).map_err(BacktestError::Time)?;
    let report = run(&cfg, watch, from, to, now).await?;
    if json {
        serde_json::to_string_pretty(&report)
            .map(|s| s + "\n")
            .map_err(|e| BacktestError::Setup(e.to_string()))
    } else {
        Ok(render::text(&report))
    }
}

/// The backtest of `watch` over the deployments created from `from` to `to`; history ends at
/// `now`.
pub async fn run(
    cfg: &Config,
    watch: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Report, BacktestError> {
    let (w, plan, octopus) = setup(cfg, watch)?;
    let http = reqwest::Client::builder()
        .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(std::time::Duration::from_secs(5))
        .build()
        .map_err(|e| BacktestError::Setup(e.to_string()))?;
    let client = OctopusClient::new(&w.deployer, octopus.clone(), http.clone(), Metrics::new());
    let cancel = CancellationToken::new();
    let listed = source::deployments(&client, &w.project, &w.environment, from, &cancel)
        .await
        .map_err(|source| BacktestError::Deployer {
            deployer: w.deployer.clone(),
            source,
        })?;
    let all = history::ordered(listed);
    let mut replayed = Vec::new();
    let mut condemned = HashSet::new();
    for i in history::in_range(&all, from, to) {
        let previous = history::previous(&all, i, &condemned).map(String::from);
        let (facts, out) = replay_one(&http, &plan.watch, &all, i, previous, now).await;
        let decided = out
            .verdict
            .as_ref()
            .filter(|v| v.decided_at <= facts.horizon);
        if decided.is_some_and(|v| v.verdict == VerdictKind::Condemned) {
            condemned.insert(facts.release.clone());
        }
        replayed.push((facts, out));
    }
    let versions = source::versions(&client, named(&replayed), &cancel).await;
    let version = |id: &str| versions.get(id).cloned();
    let deployments: Vec<report::Entry> = replayed
        .into_iter()
        .map(|(mut f, out)| {
            f.version = version(&f.release);
            f.previous_version = f.previous_release.as_deref().and_then(version);
            report::entry(f, &out, version)
        })
        .collect();
    Ok(Report {
        watch: w.name.clone(),
        deployer: w.deployer.clone(),
        project: w.project.clone(),
        environment: w.environment.clone(),
        from,
        to,
        generated_at: now,
        replayed_checks: plan.replayed,
        skipped_checks: plan.skipped,
        summary: report::summarise(&deployments),
        deployments,
    })
}

/// The watch, its checks sorted, and its Octopus deployer; or why it cannot be backtested.
fn setup<'a>(
    cfg: &'a Config,
    watch: &str,
) -> Result<(&'a WatchConfig, checks::Plan, &'a OctopusConfig), BacktestError> {
    let w = cfg
        .watch(watch)
        .ok_or_else(|| BacktestError::UnknownWatch {
            name: watch.to_string(),
            known: cfg
                .watches
                .iter()
                .map(|w| w.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    let plan = checks::plan(w);
    if plan.replayed.is_empty() {
        let skipped: Vec<String> = plan
            .skipped
            .iter()
            .map(|s| format!("{} ({}: {})", s.name, s.kind, s.reason))
            .collect();
        return Err(BacktestError::NothingToReplay {
            watch: w.name.clone(),
            skipped: skipped.join("; "),
        });
    }
    match cfg.deployers.get(&w.deployer) {
        Some(DeployerConfig::Octopus(c)) => Ok((w, plan, c)),
        other => Err(BacktestError::Unsupported {
            watch: w.name.clone(),
            deployer: w.deployer.clone(),
            kind: other.map_or("unknown", DeployerConfig::kind),
        }),
    }
}

/// Every release the report names: each deployment's, its rollback target, an action's.
fn named(replayed: &[(Facts, Outcome)]) -> Vec<String> {
    replayed
        .iter()
        .flat_map(|(f, out)| {
            let target = match &out.action {
                Some(replay::Action::Deploy { target, .. }) => Some(target.clone()),
                _ => None,
            };
            [Some(f.release.clone()), f.previous_release.clone(), target]
        })
        .flatten()
        .collect()
}

/// Fetches one deployment's history and replays it.
async fn replay_one(
    http: &reqwest::Client,
    watch: &WatchConfig,
    all: &[Deployment],
    i: usize,
    previous: Option<String>,
    now: DateTime<Utc>,
) -> (Facts, Outcome) {
    let d = &all[i];
    let next = history::next(all, i);
    let horizon = next.map_or(now, |n| n.created.min(now));
    let facts = Facts {
        deployment_id: d.id.clone(),
        release: d.release_id.clone(),
        version: None,
        deployed_at: d.created,
        task_state: d
            .task_state
            .as_ref()
            .map_or("?", |s| s.as_str())
            .to_string(),
        previous_release: previous.clone(),
        previous_version: None,
        horizon,
        next: next
            .filter(|n| n.created < now)
            .map(|n| (n.release_id.clone(), n.id.clone())),
    };
    tracing::info!(deployment = %d.id, release = %d.release_id, "replaying");
    let span = fetch::Span::of(watch, d.created);
    let histories = fetch::histories(http, watch, span).await;
    let out = decide::replay(watch, d, previous, &histories, horizon);
    (facts, out)
}
