//! Configuration: the TOML file (plus `BACKSTOP_SECTION__KEY` environment overrides) compiled
//! into typed, validated structs.
//!
//! Loading has two stages. [`load`] reads the sources into a generic tree; [`validate`] walks
//! that tree against the schema, collecting *every* problem with its key path (unknown keys,
//! wrong types, malformed durations, dangling references) so a user fixes a file in one pass
//! instead of one error per restart. Only a fully valid tree becomes a [`Config`].

mod alert;
mod compare;
pub mod control;
mod debug;
mod deployers;
mod fields;
pub mod fleet;
mod load;
pub mod metrics;
/// Held by every test that sets `BACKSTOP_*` variables and by every test that loads configs
/// whose outcome those variables change (the loader reads `BACKSTOP_SECTION__KEY` overrides
/// and `token_env` secrets from the process environment, shared by all test threads).
#[cfg(test)]
pub(crate) static TEST_ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod one_check;
mod policy;
mod scrape;
mod sinks;
pub(crate) mod slo;
mod state;
mod traffic;
mod validate;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use fields::{parse_duration, MAX_DURATION};
pub use load::{check, load, load_str, ConfigError, LoadError};
pub use validate::validate;

use crate::judge::Rule;
use crate::secret::Secret;

/// The whole validated configuration of one daemon.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub server: ServerConfig,
    pub state: StateConfig,
    /// `[fleet]`: this node in a fleet sharing PostgreSQL state.
    pub fleet: fleet::FleetConfig,
    /// `[metrics]`: what `/metrics` exports beyond the bounded default.
    pub metrics: metrics::MetricsConfig,
    /// Deployment tools by the name watches use to refer to them.
    pub deployers: BTreeMap<String, DeployerConfig>,
    /// `[notify.NAME]`: where decisions are announced, by the name watches use.
    pub sinks: BTreeMap<String, SinkConfig>,
    /// Shared: the engine's actors and pollers, a reload's comparison and every clone of the
    /// config hold the same copy of a watch.
    pub watches: Vec<std::sync::Arc<WatchConfig>>,
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
    /// `ui`: serve the read-only dashboard (`GET /`, `/ui/*`) on the same listener, with the
    /// same exposure as `GET /v1/status` (default `true`). Read at start.
    pub ui: bool,
}

/// `[state]`: where the durable state lives: SQLite in `dir`, or a PostgreSQL database that
/// several nodes share.
#[derive(Debug, Clone, PartialEq)]
pub struct StateConfig {
    /// `dir`: directory of `backstop.db` (and evidence files), created if missing (default
    /// `/var/lib/backstop`). With `url`, only the evidence files are kept here.
    pub dir: PathBuf,
    /// `url` / `url_file` / `url_env` / `url_credential`: a `postgres://` URL that switches the
    /// store to PostgreSQL. Held as a [`Secret`] because it may carry a password: inline `url`
    /// must not have one (use one of the others to read the whole URL from a secret). Read at
    /// start.
    pub url: Option<Secret>,
}

/// `[deployers.NAME]`: a deployment tool backstop can ask about deployments and roll back with.
/// A closed set: each kind is one variant.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployerConfig {
    Octopus(OctopusConfig),
    Webhook(WebhookDeployerConfig),
    Command(CommandDeployerConfig),
    ArgoCd(ArgoCdConfig),
}

impl DeployerConfig {
    /// The `kind` key.
    pub fn kind(&self) -> &'static str {
        match self {
            DeployerConfig::Octopus(_) => "octopus",
            DeployerConfig::Webhook(_) => "webhook",
            DeployerConfig::Command(_) => "command",
            DeployerConfig::ArgoCd(_) => "argocd",
        }
    }

    /// Timing and retry settings shared by every kind.
    pub fn calls(&self) -> &CallSettings {
        match self {
            DeployerConfig::Octopus(c) => &c.calls,
            DeployerConfig::Webhook(c) => &c.calls,
            DeployerConfig::Command(c) => &c.calls,
            DeployerConfig::ArgoCd(c) => &c.calls,
        }
    }
}

/// How a deployer's calls are timed and retried (keys shared by every kind).
#[derive(Debug, Clone, PartialEq)]
pub struct CallSettings {
    /// `timeout`: per-request (or per-command) timeout (default 10s; 5m for commands).
    pub timeout: Duration,
    /// `task_poll`: how often a started deployment is polled for completion (default 5s).
    pub task_poll: Duration,
    /// `task_timeout`: how long a deployment may take before it counts as failed (default 30m).
    pub task_timeout: Duration,
    /// `max_retries`: attempts for a failing call before giving up (default 6).
    pub max_retries: u32,
    /// `settle`: after a create whose outcome is unknown (timeout, 5xx, a lost response, a
    /// crash), how long the deployer is searched for it before another create may be made, so
    /// a slow server that commits after the client gave up is never deployed to twice
    /// (default 2 × `timeout` + 30s).
    pub settle: Duration,
}

impl CallSettings {
    /// How often the deployer is searched during `settle`: a few times, at most every 5s.
    pub fn search_every(&self) -> Duration {
        (self.settle / 4).clamp(Duration::from_millis(200), Duration::from_secs(5))
    }
}

/// `kind = "octopus"`.
#[derive(Clone, PartialEq)]
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
    /// `no_rollback_marker`: text in a release's notes that marks it not safe to roll back
    /// from (default `[backstop:no-rollback]`).
    pub no_rollback_marker: String,
    pub calls: CallSettings,
}

/// `kind = "webhook"`: any CD system with an HTTP endpoint that deploys a release.
#[derive(Clone, PartialEq)]
pub struct WebhookDeployerConfig {
    /// `method` (default POST).
    pub method: String,
    /// `url`: a template; placeholders such as `{{target_release}}` are filled in.
    pub url: String,
    /// `[deployers.NAME.headers]`: plain headers.
    pub headers: BTreeMap<String, String>,
    /// `[deployers.NAME.secret_headers]`: header name = secret file (relative paths are looked
    /// up in `$CREDENTIALS_DIRECTORY`), for tokens.
    pub secret_headers: BTreeMap<String, Secret>,
    /// `body`: a JSON template with placeholders; values are JSON-escaped when filled in.
    pub body: Option<String>,
    /// `success_status`: statuses that mean the deployment was accepted (default 200, 201, 202, 204).
    pub success_status: Vec<u16>,
    /// `status_url`: optional template polled until the deployment finished.
    pub status_url: Option<String>,
    /// `status_field`: JSON field of the status answer (default `status`).
    pub status_field: String,
    /// `success_values` (default succeeded, success, healthy) and `failure_values`
    /// (default failed, error, degraded): values of `status_field` that end the wait.
    pub success_values: Vec<String>,
    pub failure_values: Vec<String>,
    pub calls: CallSettings,
}

/// `kind = "command"`: deploy by running a program (no shell).
#[derive(Debug, Clone, PartialEq)]
pub struct CommandDeployerConfig {
    /// `argv`: program and arguments; placeholders are filled in.
    pub argv: Vec<String>,
    pub calls: CallSettings,
}

/// `kind = "argocd"`: roll an Argo CD application back to a history id.
#[derive(Clone, PartialEq)]
pub struct ArgoCdConfig {
    /// `url`: Argo CD server base URL.
    pub url: String,
    /// `token_file` / `token_env` / `token_credential`: bearer token.
    pub token: Secret,
    pub calls: CallSettings,
}

/// `[notify.NAME]`: a destination for decisions. Closed set: one variant per `kind`.
#[derive(Clone, PartialEq)]
pub enum SinkConfig {
    /// `kind = "slack"`: a Slack-compatible incoming webhook (text + blocks). The URL is a
    /// secret: `url_file` / `url_env` / `url_credential`.
    Slack { url: Secret, timeout: Duration },
    /// `kind = "webhook"`: POSTs the full evidence document as JSON.
    Webhook {
        url: String,
        headers: BTreeMap<String, String>,
        secret_headers: BTreeMap<String, Secret>,
        timeout: Duration,
    },
    /// `kind = "alertmanager"`: `POST {url}/api/v2/alerts`, so decisions appear beside other
    /// alerts. `labels` are added to every alert.
    Alertmanager {
        url: String,
        labels: BTreeMap<String, String>,
        timeout: Duration,
    },
}

/// What to do with a condemned release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Deploy the last verified release through the deployer.
    Rollback,
    /// Record the verdict and report it; a human decides.
    Notify,
    /// Roll over: redeploy the same release once (the failure may have been transient); if it
    /// is condemned again, do `then`.
    Retry { then: Fallback },
    /// Run the watch's `[watch.command]` and report; no deploy call.
    Command,
}

/// What `retry` falls through to (`then = "rollback" | "notify"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Rollback,
    Notify,
}

impl Fallback {
    pub fn as_str(&self) -> &'static str {
        match self {
            Fallback::Rollback => "rollback",
            Fallback::Notify => "notify",
        }
    }
}

impl OnFailure {
    pub fn as_str(&self) -> &'static str {
        match self {
            OnFailure::Rollback => "rollback",
            OnFailure::Notify => "notify",
            OnFailure::Retry { .. } => "retry",
            OnFailure::Command => "command",
        }
    }
}

/// What to do when a deployment itself fails (`on_deploy_failure`): its task ended Failed,
/// TimedOut or Canceled, or it was announced with `"outcome": "failed"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnDeployFailure {
    /// Observe it like any deployment: the checks know whether the service is broken.
    /// Condemned: `on_failure` applies. Healthy: no deploy call, a notification says so.
    #[default]
    Observe,
    /// Roll over: redeploy the same release once (a locked file, a flaky feed), then observe;
    /// if that fails too (its deployment, or its checks), `then`.
    Retry { then: Fallback },
    /// Deploy the last verified release at once, without observing.
    Rollback,
    /// Tell a human; no deploy call; the watch is `failed`.
    Notify,
}

impl OnDeployFailure {
    pub fn as_str(&self) -> &'static str {
        match self {
            OnDeployFailure::Observe => "observe",
            OnDeployFailure::Retry { .. } => "retry",
            OnDeployFailure::Rollback => "rollback",
            OnDeployFailure::Notify => "notify",
        }
    }
}

/// `[watch.hooks]`: programs run on events, beside the policies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hooks {
    /// `[watch.hooks.deploy_failed]`: run when a deployment fails, before the policy acts, at
    /// most once per failed deployment (recovery scripts, a ticket, a page).
    pub deploy_failed: Option<HookProgram>,
}

/// A hook's program: `argv` (no shell) and `timeout`, with the same environment as
/// `[watch.command]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HookProgram {
    pub argv: Vec<String>,
    /// `timeout` (default 60s): the program is killed after this.
    pub timeout: Duration,
}

/// `[watch.command]`: a program run on condemnation, like a DeployFailed script.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandHook {
    /// `argv`: program and arguments, no shell.
    pub argv: Vec<String>,
    /// `timeout` (default 60s): the program is killed after this.
    pub timeout: Duration,
    /// `when`: with a deploying policy, run `before` (default) or `after` the deploy call.
    pub when: HookWhen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookWhen {
    Before,
    After,
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
    /// `warmup`: time after the deployment before the first judged sample (default 15s; judging
    /// starts earlier once every http check has passed).
    pub warmup: Duration,
    /// `window`: how long samples are judged after warmup; a release that passes it is verified.
    pub window: Duration,
    /// `interval`: time between sample rounds (default 10s).
    pub interval: Duration,
    /// `fast_interval`: the cadence right after a deployment, when a bad release does most
    /// harm, and while a failure is being confirmed (default `max(1s, interval / 5)`).
    pub fast_interval: Duration,
    /// `fast_for`: how long after judging starts the fast cadence lasts (default 2m).
    pub fast_for: Duration,
    /// `on_failure`: `rollback` (default) or `notify`.
    pub on_failure: OnFailure,
    /// `error_limit`: consecutive errors of one check that make the verdict inconclusive (default
    /// 5), once they span `(error_limit − 1) × interval` (see [`WatchConfig::min_error_for`])
    /// and no other check is confirming a failure.
    pub error_limit: u32,
    /// `application`: the Argo CD application (argocd deployers).
    pub application: Option<String>,
    /// `[watch.command]`: the program of `on_failure = "command"`, or a hook beside a deploy.
    pub command: Option<CommandHook>,
    /// `on_deploy_failure` (default `observe`) and `on_deploy_failure_then` (with `retry`,
    /// default `notify`): what a failed deployment leads to.
    pub on_deploy_failure: OnDeployFailure,
    /// `[watch.hooks]`.
    pub hooks: Hooks,
    /// `dry_run`: judge and report everything, call nothing (default: the top-level `dry_run`).
    pub dry_run: bool,
    /// `max_actions` automatic deploy calls per `max_actions_period` (default 3 per 1h); then
    /// the watch pauses and notifies.
    pub max_actions: u32,
    pub max_actions_period: Duration,
    /// `notify`: names of `[notify.NAME]` sinks told about this watch's decisions.
    pub notify: Vec<String>,
    /// `[[watch.check]]` tables.
    pub checks: Vec<CheckConfig>,
}

impl WatchConfig {
    /// How long an error run must span, besides reaching `error_limit` errors, to make the
    /// verdict inconclusive: `error_limit` rounds at `interval` ((`error_limit` − 1) ×
    /// `interval`, 40 s by default), whatever the cadence. Errors taken at the fast cadence
    /// would otherwise give up on a release after 10 s of blind telemetry (a 5xx series not
    /// created yet after a restart), and a release is not judged by how often it was asked.
    pub fn min_error_for(&self) -> Duration {
        self.interval * self.error_limit.saturating_sub(1)
    }
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
    /// prometheus and scrape. At least one is required.
    pub rules: Vec<Rule>,
    /// `unreachable` (http and scrape checks): what an application that does not answer
    /// (connection refused or reset, a timeout) means: `"fail"` (default: the app is down, the
    /// release is broken) or `"error"` (the check goes through something that may be down on
    /// its own). Prometheus checks probe telemetry: their being unreachable is always an error.
    pub unreachable: Unreachable,
    /// `no_data`: what a sample that was measured and found nothing means (an empty Prometheus
    /// result, no matching series, a zero denominator): `"error"` (default: it cannot judge the
    /// release), `"pass"` (quiet is fine) or `"fail"` (the series must be there).
    pub no_data: NoData,
    /// `min_samples`: judged samples (pass or fail) this check needs in the window for the
    /// release to be verified; fewer makes the verdict inconclusive (default: half the
    /// window's rounds), so a release is never verified on errors and a lucky few passes.
    pub min_samples: u32,
    /// `min_traffic = { query = "...", min = 1.0 }` (prometheus checks) or
    /// `min_traffic = { metric = "...", labels = { ... }, min = 1.0 }` (scrape checks): a
    /// request rate in requests per second, measured beside every sample. Below `min` the
    /// sample is no data ("0.05 req/s, need 1"): a quiet service is never condemned on two
    /// requests, and never verified on none (see `min_samples`).
    pub min_traffic: Option<MinTraffic>,
    /// `min_failure_for`: the `failure_limit` consecutive failures must span at least this
    /// long, on the rounds' scheduled times, so a fast cadence never turns a one-second blip
    /// into a rollback (default `(failure_limit - 1) × fast_interval`).
    pub min_failure_for: Duration,
    /// `baseline_floor` (prometheus and scrape checks with `max_ratio` or `min_ratio`): the
    /// least baseline a ratio is taken against. A baseline below it counts as the floor, so
    /// `max_ratio = 3` with `baseline_floor = 0.005` fails above 3 × the baseline but never
    /// below 1.5%: a relative rule with an absolute floor. A service whose usual error share
    /// is 0.1% is not condemned for a noisy minute at 0.4% (a handful of requests), and one
    /// with no errors before the deployment is judged instead of its ratio being undefined.
    pub baseline_floor: Option<f64>,
    /// `compare = "mann-whitney"` (prometheus and scrape checks): judge the post-deployment
    /// samples against the pre-deployment ones as distributions, every round. Counts as a
    /// rule: a check may have only this, or this and thresholds.
    pub compare: Option<CompareConfig>,
    /// `control_query` (prometheus and scrape checks): the same signal for something this
    /// deployment did not touch (the other region, a dependency, the whole fleet). A failed
    /// sample is no data when the control moved the same way in the same round ("the world,
    /// not us"); a control that cannot be read excuses nothing.
    pub control: Option<ControlConfig>,
}

/// `control_query` and its keys, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlConfig {
    /// `control_query`: PromQL returning one value, queried beside every sample.
    pub query: String,
    /// `control_url`: the Prometheus answering it (default: a prometheus check's own `url`;
    /// required on scrape checks, which have no Prometheus).
    pub url: String,
    /// `control_tolerance` (default 0.5, in [0, 1)): how much less than the check the control
    /// may have moved and still excuse it, on a log scale: with 0.5, a check up 4x is excused
    /// by a control up at least 2x (4^0.5); a check down to 0.25x by a control down to 0.5x.
    pub tolerance: f64,
    /// The check's `baseline_window` (default 10m with a control): the control's baseline is
    /// its mean over this window before the deployment, like the check's.
    pub baseline_window: Duration,
    /// The check's `timeout`, for the control's queries.
    pub timeout: Duration,
}

/// `compare` and its keys, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompareConfig {
    /// `direction` (default `"increase"`), `confidence` (default 0.98), `allowed_increase`
    /// (default 1.2), `allowed_decrease` (default 0.8) and `compare_min_samples` (default 10).
    pub rule: crate::judge::compare::Compare,
    /// `step` (prometheus checks; default the watch's `interval`): the resolution of the range
    /// queries that fetch both sample sets. Scrape checks compare their own scrapes.
    pub step: Duration,
}

/// `min_traffic`: the request rate below which a sample is no data.
#[derive(Debug, Clone, PartialEq)]
pub struct MinTraffic {
    /// `min`: requests per second.
    pub min: f64,
    /// Where the rate comes from; each check kind reads it its own way.
    pub source: TrafficSource,
}

/// Where a check's `min_traffic` rate comes from. Closed set: one variant per kind that has
/// traffic.
#[derive(Debug, Clone, PartialEq)]
pub enum TrafficSource {
    /// `query` (prometheus checks): PromQL returning the rate, queried beside every sample.
    Query(String),
    /// `metric` + `labels` (scrape checks): a request counter whose rate over the check's
    /// `rate_window` is computed from the check's own scrapes (the same collector, the same
    /// clipping to the deployment as the value judged), so no second endpoint is involved.
    Series(SeriesSelector),
}

/// What a sample with nothing to measure means (`no_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoData {
    #[default]
    Error,
    Pass,
    Fail,
}

/// What an unreachable application means for a check's sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unreachable {
    /// A failure: a release whose process is down is broken.
    #[default]
    Fail,
    /// An error: cannot measure, never condemns.
    Error,
}

/// How a check takes a sample. Closed set: one variant per `kind`.
#[derive(Clone, PartialEq)]
pub enum Probe {
    /// `kind = "http"`: GET `url`; the reading is the status code.
    Http { url: String, timeout: Duration },
    /// `kind = "prometheus"`: instant query; the reading is the single value returned.
    Prometheus {
        url: String,
        query: String,
        timeout: Duration,
        /// `baseline_window`: the baseline is the mean of the query over this window ending when
        /// the deployment started; with `compare`, the pre-deployment samples are this window.
        /// Required by ratio rules and `compare` (default 10m when one is set).
        baseline_window: Option<Duration>,
        /// How far back the query reads (its largest range selector or subquery, plus offset),
        /// from parsing it: a sample whose look-back reaches before the deployment mixes two
        /// releases.
        lookback: Duration,
    },
    /// `kind = "scrape"`: backstop fetches a Prometheus text-format endpoint itself every
    /// interval (no Prometheus server needed) and judges a gauge, a counter rate, a ratio of
    /// two counter rates or a histogram quantile computed from its own successive scrapes.
    Scrape(ScrapeProbe),
    /// `kind = "alert"`: the alerts a Prometheus or an Alertmanager reports; a matching alert
    /// firing since after the deployment fails the sample.
    Alert(AlertProbe),
    /// `kind = "slo"`: the error-budget burn rate of `good` over `total` events, from a
    /// Prometheus or from backstop's own scrapes, over two windows scaled to the observation.
    Slo(SloProbe),
}

/// The settings of a `kind = "slo"` check. The allowed burn rate is its rule,
/// [`crate::judge::Rule::BurnRate`].
#[derive(Clone, PartialEq)]
pub struct SloProbe {
    /// `url`: the Prometheus base URL when `good` and `total` are PromQL; the service's
    /// `/metrics` endpoint when they are scrape selections.
    pub url: String,
    /// `objective` (required, between 0 and 1 exclusive, e.g. 0.999): the share of events that
    /// must be good; the error budget is `1 - objective`.
    pub objective: f64,
    /// `good` and `total`: where the events are counted, a Prometheus or backstop's own scrapes.
    pub events: SloEvents,
    /// `long_window` (default 1h, the SRE workbook's): the cap of the long window; below it
    /// the long window is the time since the deployment, the short one a twelfth of it.
    pub long_window: Duration,
    /// `timeout`: per-request (or per-scrape) timeout, shorter than the interval.
    pub timeout: Duration,
}

/// Where an slo check counts its good and total events. Closed set: one variant per form of
/// `good` and `total` (both strings, or both tables).
#[derive(Debug, Clone, PartialEq)]
pub enum SloEvents {
    /// `good` and `total` as PromQL strings over `$window`, e.g.
    /// `sum(increase(http_requests_total{code!~"5.."}[$window]))`, asked of the Prometheus at
    /// `url`. backstop substitutes each window (`[240s]`), so the user keeps full PromQL
    /// (sums, `or vector(0)`, differences) and backstop keeps control of how far back the
    /// query reads.
    Query { good: String, total: String },
    /// `good` and `total` as scrape selections, e.g.
    /// `{ metric = "http_requests_total", labels = { code = { not_regex = "5.." } } }`:
    /// backstop scrapes `url` itself (as a `kind = "scrape"` check does: same collector,
    /// cadence and stored history) and counts each window's increase of the two counters from
    /// its own scrapes since the deployment.
    Scrape {
        good: SeriesSelector,
        total: SeriesSelector,
    },
}

/// The settings of a `kind = "alert"` check.
#[derive(Clone, PartialEq)]
pub struct AlertProbe {
    /// `source`: which API `url` serves (required).
    pub source: AlertSource,
    /// `url`: the server's base URL (`http://prometheus:9090`, `http://alertmanager:9093`).
    pub url: String,
    /// `labels`: label name = value; an alert counts only when it carries every pair (exact
    /// matches; unlisted labels are free). At least one is required: a check matching every
    /// alert would condemn every release on any alert anywhere.
    pub labels: BTreeMap<String, String>,
    /// `include_silenced` (alertmanager only, default false): whether silenced and inhibited
    /// alerts count. Off, a human's silence (or a more important alert) mutes them for
    /// backstop as for the pager.
    pub include_silenced: bool,
    /// `timeout`: per-request timeout, shorter than the interval.
    pub timeout: Duration,
}

/// Where an alert check reads alerts. Closed set: one variant per API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSource {
    /// `source = "prometheus"`: `GET /api/v1/alerts`, pending and firing alerts of its rules.
    Prometheus,
    /// `source = "alertmanager"`: `GET /api/v2/alerts`, with silences and inhibitions.
    Alertmanager,
}

impl AlertSource {
    pub fn as_str(&self) -> &'static str {
        match self {
            AlertSource::Prometheus => "prometheus",
            AlertSource::Alertmanager => "alertmanager",
        }
    }
}

/// The settings of a `kind = "scrape"` check.
#[derive(Clone, PartialEq)]
pub struct ScrapeProbe {
    /// `url`: the `/metrics` endpoint (Prometheus text exposition format) to fetch.
    pub url: String,
    /// `timeout`: per-scrape timeout, shorter than the interval.
    pub timeout: Duration,
    /// `mode` (`gauge`, the default, `rate`, `ratio` or `quantile`) and the series it reads.
    pub mode: ScrapeMode,
    /// `rate_window` (default 1m, at least two intervals): `rate`, `ratio`, `quantile` and the
    /// `min_traffic` rate are computed from the scrapes of this window ending at the newest one.
    pub rate_window: Duration,
    /// `baseline_window`: the baseline is the mean of the value over this window ending when
    /// the deployment started, from backstop's own scrapes; with `compare`, the
    /// pre-deployment samples are the values in this window. Required by ratio rules and
    /// `compare` (default 10m when one is set).
    pub baseline_window: Option<Duration>,
}

/// What a scrape check computes from the selected series.
#[derive(Debug, Clone, PartialEq)]
pub enum ScrapeMode {
    /// `mode = "gauge"`: the newest value (summed over the selected series).
    Gauge(SeriesSelector),
    /// `mode = "rate"`: per-second increase of a counter over `rate_window`.
    Rate(SeriesSelector),
    /// `mode = "ratio"`: increase of `numerator` divided by increase of `denominator` over
    /// `rate_window` (e.g. 5xx responses / all responses). No increase of the denominator is
    /// "no traffic": an error, never a failure.
    Ratio {
        numerator: SeriesSelector,
        denominator: SeriesSelector,
    },
    /// `mode = "quantile"`: the `quantile` (0 to 1) of a histogram over `rate_window`, as
    /// PromQL's `histogram_quantile(q, sum by (le) (rate(x_bucket{...}[w])))`: the bucket
    /// series' increases are summed per bound (`le`) and interpolated within the bucket the
    /// quantile falls in. A latency percentile, without a summary's per-process quantiles
    /// (which cannot be aggregated). No observations in the window is "no traffic": an error,
    /// never a failure.
    Quantile {
        /// `quantile`: which quantile, e.g. 0.9 for p90.
        quantile: f64,
        /// `metric` (ending in `_bucket`) + `labels` (not `le`): the bucket series.
        buckets: SeriesSelector,
    },
}

impl ScrapeMode {
    /// The selectors this mode reads, in a fixed order (numerator before denominator).
    pub fn selectors(&self) -> Vec<&SeriesSelector> {
        match self {
            ScrapeMode::Gauge(s) | ScrapeMode::Rate(s) => vec![s],
            ScrapeMode::Quantile { buckets, .. } => vec![buckets],
            ScrapeMode::Ratio {
                numerator,
                denominator,
            } => vec![numerator, denominator],
        }
    }
}

/// `metric` + `labels`: the series of one metric whose labels include every listed pair
/// (exact matches; unlisted labels are free). Several matching series are summed.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesSelector {
    /// `metric`: the full series name, e.g. `http_requests_total` or
    /// `http_request_duration_seconds_bucket`.
    pub metric: String,
    /// `labels`: label name = matcher; `{}` (the default) selects every series of `metric`.
    /// A plain string is `=`; `{ not = "200" }` is `!=`; `{ regex = "5.." }` is `=~`;
    /// `{ not_regex = "2.." }` is `!~` (regexes anchored, as in PromQL).
    pub labels: BTreeMap<String, LabelMatch>,
}

/// One label matcher of a scrape selector, as in PromQL.
#[derive(Debug, Clone)]
pub enum LabelMatch {
    Eq(String),
    Ne(String),
    /// Anchored: `5..` matches `503`, not `1503`.
    Re(regex::Regex),
    NotRe(regex::Regex),
}

impl PartialEq for LabelMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (LabelMatch::Eq(a), LabelMatch::Eq(b)) | (LabelMatch::Ne(a), LabelMatch::Ne(b)) => {
                a == b
            }
            (LabelMatch::Re(a), LabelMatch::Re(b))
            | (LabelMatch::NotRe(a), LabelMatch::NotRe(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl LabelMatch {
    /// Whether a label value (`""` when the series lacks the label) matches.
    pub fn matches(&self, value: &str) -> bool {
        match self {
            LabelMatch::Eq(v) => value == v,
            LabelMatch::Ne(v) => value != v,
            LabelMatch::Re(r) => r.is_match(value),
            LabelMatch::NotRe(r) => !r.is_match(value),
        }
    }

    /// `="200"`, `!="200"`, `=~"5.."`, `!~"2.."` (the pattern without the anchors added).
    pub fn text(&self) -> String {
        let unanchor = |r: &regex::Regex| {
            r.as_str()
                .trim_start_matches("^(?:")
                .trim_end_matches(")$")
                .to_string()
        };
        match self {
            LabelMatch::Eq(v) => format!("={v:?}"),
            LabelMatch::Ne(v) => format!("!={v:?}"),
            LabelMatch::Re(r) => format!("=~{:?}", unanchor(r)),
            LabelMatch::NotRe(r) => format!("!~{:?}", unanchor(r)),
        }
    }

    /// An anchored regex, as PromQL anchors label regexes.
    pub fn anchored(pattern: &str) -> Result<regex::Regex, regex::Error> {
        regex::Regex::new(&format!("^(?:{pattern})$"))
    }
}

impl Probe {
    /// Whether the probe asks the application itself (http, scrape, and slo over scrapes)
    /// rather than telemetry (Prometheus, an alert server): only then is no answer the
    /// application being down.
    pub fn reads_the_app(&self) -> bool {
        match self {
            Probe::Http { .. } | Probe::Scrape(_) => true,
            Probe::Slo(s) => matches!(s.events, SloEvents::Scrape { .. }),
            Probe::Prometheus { .. } | Probe::Alert(_) => false,
        }
    }
}

impl Config {
    /// The watch with this name.
    pub fn watch(&self, name: &str) -> Option<&WatchConfig> {
        self.watches.iter().find(|w| w.name == name).map(|w| &**w)
    }
}

impl WatchConfig {
    /// Whether any check compares against the pre-deployment baseline (a ratio rule, or a
    /// control, which compares the check's move from it).
    pub fn needs_baseline(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.control.is_some() || c.rules.iter().any(|r| r.needs_baseline()))
    }
}

#[cfg(test)]
mod tests;
