//! End-to-end tests: the real `backstop` binary against in-process fakes of the app,
//! Prometheus and Octopus Deploy (and, in `real_prometheus`, a real Prometheus server).

#[path = "../common/mod.rs"]
mod common;

mod api;
mod argocd;
mod backtest;
mod cli;
mod contract;
mod dashboard;
mod dead_app;
mod demo;
mod deploy_failed;
mod deploy_failure;
mod deployers;
mod exactly_once;
mod faults;
mod fleet;
mod fleet_api;
mod fleet_restart;
mod footprint;
mod harness;
mod judgement;
mod look_back;
mod policies;
mod readiness;
mod real_alerts;
mod real_prometheus;
mod real_slo;
mod redaction;
mod restart;
mod scenario;
mod scrape;
mod seq;
mod sinks;
mod slo_scrape;
mod systemd_notify;
mod webdriver;
