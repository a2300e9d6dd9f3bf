//! Holds the fakes in `tests/common` to the real APIs' shapes, so that the end-to-end tests built
//! on them prove something about the real Octopus and Prometheus.
//!
//! The Octopus resources are checked against the Swagger document the server itself published
//! (2021.2.4488, copied into `tests/data/` so a clean clone can run this), fetched over real HTTP.
//! The behaviours the exactly-once tests lean on (task progression, paging, faults) are pinned
//! down here too, so a change to a fake that would quietly weaken those tests fails loudly.
//!
//! One module per fake and concern: `swagger` is the checker, `http` the client side; the
//! `octopus_*` modules hold the Octopus fake to the Swagger shapes and the server's behaviour
//! (`octopus_details` its task details and scripted failures too),
//! `prometheus_api` the Prometheus fake to the v1 API, `app_and_waits` the app fake and helpers.

#[path = "../common/mod.rs"]
mod common;

mod app_and_waits;
mod http;
mod octopus_auth;
mod octopus_details;
mod octopus_faults;
mod octopus_listing;
mod octopus_shapes;
mod octopus_tasks;
mod prometheus_api;
mod swagger;
