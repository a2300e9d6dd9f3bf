//! backstop: a self-healing deployment monitor.
//!
//! After each deployment of a watched service (announced over HTTP, delivered by an Octopus
//! subscription webhook, or discovered by polling the deployer) backstop observes the release:
//! every interval it samples HTTP health checks and Prometheus queries, judges each sample
//! against absolute thresholds and the service's own pre-deployment baseline, and condemns the
//! release after `failure_limit` consecutive failures. A condemned release is rolled back to
//! the last release backstop itself verified, exactly once, with the evidence attached.
//!
//! Architecture: one actor task per watch ([`engine`]) owns that watch's observation and
//! rollback; the HTTP API ([`api`]) only sends it triggers and reads the shared status board.
//! Judgement is pure ([`judge`]); probes ([`checks`]) and the deployment tool ([`deployer`]) are
//! the I/O edges; every durable fact goes through [`store`], so a restart resumes where the
//! last process stopped.
//!
//! Modules:
//! - [`config`]: TOML + environment, validated into typed structs with every error reported.
//! - [`judge`]: rules, baseline maths, the verdict state machine.
//! - [`checks`]: HTTP, Prometheus, scrape (`/metrics` read directly), alert (Prometheus or
//!   Alertmanager alerts) and slo (error-budget burn, from Prometheus or from scrapes) probes.
//! - [`deployer`]: the deployers (Octopus, Argo CD, webhook, command), each exactly once.
//! - [`engine`]: watch actors, observation rounds, policies and actions, polling, reload.
//! - [`store`]: the durable state (observations, rollback intents, quarantine, dedup, scrape
//!   history) in SQLite, or in PostgreSQL shared by a fleet (with leases and fences).
//! - [`api`]: the HTTP API and `/metrics`.
//! - [`ui`]: the read-only dashboard on the API's listener (server-rendered pages, SVG charts).
//! - [`metrics`]: every metric the daemon exports.
//! - [`status`]: the status document shared by the API and `backstop status`.
//! - [`evidence`]: the evidence document of every decision; [`series`]: its charts' data.
//! - [`sinks`]: notifications (Slack, JSON webhook, Alertmanager).
//! - [`command`]: running configured programs; [`client`]: the CLI side of the API.
//! - [`daemon`]: wiring it all together for `backstop run`.
//! - [`systemd`]: the systemd notify protocol (readiness, status, reload, watchdog).
//! - [`replay`]: one deployment replayed through the real lifecycle core (backtest, quality bench).
//! - [`backtest`]: `backstop backtest`, past deployments replayed against Prometheus history.
//! - [`demo`]: `backstop demo`, a simulated service and deployment tool on loopback.
//! - [`sparkline`]: the charts of `backstop explain`.
//! - [`limits`]: how much and how long backstop reads from servers it does not control.
//! - [`retry_after`]: the `Retry-After` header, read one way for every server.
//! - [`fuzzing`]: the invariants of the fuzz targets in `fuzz/`, also run over their corpora
//!   by `cargo test`.
//! - [`signals`], [`secret`], [`cli`].

pub mod api;
pub mod backtest;
pub mod checks;
pub mod cli;
pub mod client;
pub mod command;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod deployer;
pub mod engine;
pub mod evidence;
pub mod fleet;
pub mod fuzzing;
pub mod judge;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod retry_after;
pub mod secret;
pub mod series;
pub mod signals;
#[cfg(test)]
mod sim;
pub mod sinks;
pub mod sparkline;
pub mod status;
pub mod store;
pub mod systemd;
pub mod text;
pub mod ui;
