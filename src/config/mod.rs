//! Configuration: the TOML file (plus `BACKSTOP_SECTION__KEY` environment overrides) compiled
//! into typed, validated structs.
//!
//! Loading has two stages. [`load`] reads the sources into a generic tree; [`validate`] walks
//! that tree against the schema, collecting *every* problem with its key path (unknown keys,
//! wrong types, malformed durations, dangling references) so a user fixes a file in one pass
//! instead of one error per restart. Only a fully valid tree becomes a [`Config`].

mod fields;
mod load;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use load::{check, load, load_str, ConfigError, LoadError};
pub use validate::validate;

use crate::judge::Rule;
use crate::secret::Secret;

/// The whole validated configuration of one daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub state: StateConfig,
    /// Deployment tools by the name watches use to refer to them.
    pub deployers: BTreeMap<String, DeployerConfig>,
    pub watches: Vec<WatchConfig>,
}

/// `[server]`: the HTTP API and metrics listener.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// `listen`: address of the HTTP API and `/metrics` (default `127.0.0.1:9870`, loopback so
    /// nothing is exposed by accident).
    pub listen: SocketAddr,
    /// `token_file` / `token_env` / `token_credential`: bearer token required by `POST /v1/*`.
    /// Without one, the announcement API refuses every request.
    pub token: Option<Secret>,
}

/// `[state]`: where the SQLite database lives.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// `dir`: directory of `backstop.db`, created if missing (default `/var/lib/backstop`).
    pub dir: PathBuf,
}

/// `[deployers.NAME]`: a deployment tool backstop can ask about deployments and roll back with.
/// A closed set: each kind is one variant.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployerConfig {
    Octopus(OctopusConfig),
}

/// `kind = "octopus"`.
#[derive(Debug, Clone, PartialEq)]
pub struct OctopusConfig {
    /// `url`: server base URL, without `/api`.
    pub url: String,
    /// `space`: space id such as `Spaces-1`.
    pub space: String,
    /// `api_key_file` / `api_key_env` / `api_key_credential`: sent as `X-Octopus-ApiKey`.
    pub api_key: Secret,
    /// `webhook_header`: name of the header Octopus subscriptions send with the shared secret.
    pub webhook_header: Option<String>,
    /// `webhook_secret_file` / `webhook_secret_env` / `webhook_secret_credential`.
    pub webhook_secret: Option<Secret>,
    /// `timeout`: per-request timeout (default 10s).
    pub timeout: Duration,
    /// `task_poll`: how often a rollback's server task is polled (default 5s).
    pub task_poll: Duration,
    /// `task_timeout`: how long a rollback task may take before it counts as failed (default 30m).
    pub task_timeout: Duration,
    /// `max_retries`: attempts for a failing call before giving up for this round (default 6).
    pub max_retries: u32,
}

/// What to do with a condemned release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Deploy the last verified release through the deployer.
    Rollback,
    /// Record the verdict and report it; a human decides.
    Notify,
}

/// `[[watch]]`: one service in one environment.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// `name`: unique name used in the API, metrics and logs.
    pub name: String,
    /// `deployer`: name of a `[deployers.NAME]` table.
    pub deployer: String,
    /// `project`: deployer project id (Octopus `Projects-N`).
    pub project: String,
    /// `environment`: deployer environment id (Octopus `Environments-N`).
    pub environment: String,
    /// `poll`: when set, also discover deployments by listing them this often.
    pub poll: Option<Duration>,
    /// `warmup`: time after the deployment before the first judged sample (default 30s).
    pub warmup: Duration,
    /// `window`: how long samples are judged after warmup; a release that passes it is verified.
    pub window: Duration,
    /// `interval`: time between sample rounds (default 10s).
    pub interval: Duration,
    /// `on_failure`: `rollback` (default) or `notify`.
    pub on_failure: OnFailure,
    /// `error_limit`: consecutive errors of one check that make the verdict inconclusive (default 5).
    pub error_limit: u32,
    /// `[[watch.check]]` tables.
    pub checks: Vec<CheckConfig>,
}

/// `[[watch.check]]`: one signal judged every interval.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckConfig {
    /// `name`: unique within the watch.
    pub name: String,
    /// `failure_limit`: consecutive failed samples that condemn the release (default 3).
    pub failure_limit: u32,
    /// `kind` and its probe settings.
    pub probe: Probe,
    /// The thresholds: `expect_status` for http; `max`, `min`, `max_ratio`, `min_ratio` for
    /// prometheus. At least one is required.
    pub rules: Vec<Rule>,
}

/// How a check takes a sample. Closed set: one variant per `kind`.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `kind = "http"`: GET `url`; the reading is the status code.
    Http { url: String, timeout: Duration },
    /// `kind = "prometheus"`: instant query; the reading is the single value returned.
    Prometheus {
        url: String,
        query: String,
        timeout: Duration,
        /// `baseline_window`: the baseline is the mean of the query over this window ending when
        /// the deployment started. Required by ratio rules (default 10m when one is set).
        baseline_window: Option<Duration>,
    },
}

impl Config {
    /// The watch with this name.
    pub fn watch(&self, name: &str) -> Option<&WatchConfig> {
        self.watches.iter().find(|w| w.name == name)
    }
}

impl WatchConfig {
    /// Whether any check compares against the pre-deployment baseline.
    pub fn needs_baseline(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.rules.iter().any(|r| r.needs_baseline()))
    }
}

#[cfg(test)]
mod tests;
