//! In-process fakes of the systems backstop talks to, shared by every integration test.
//!
//! Each fake binds `127.0.0.1:0`, serves real HTTP with axum on a task of the test's runtime and
//! hands back a cheap, cloneable handle that the test uses to script behaviour and inspect what
//! the daemon did. They are shaped after the real APIs (Octopus Deploy's REST API, Prometheus'
//! HTTP API v1, a plain `/health` endpoint) so that a client that passes against them has a fair
//! chance against the real thing; `tests/fakes_shape/` holds them to that.
//!
//! Every test file compiles this module separately and uses only part of it, hence `dead_code`.
#![allow(dead_code)]

pub mod app;
pub mod argocd;
pub mod octopus;
pub mod pg_cluster;
pub mod prometheus;
pub mod sinks;
pub mod webhook_target;

use std::future::Future;
use std::time::{Duration, Instant};

/// How often the `wait_*` helpers look again.
pub const POLL: Duration = Duration::from_millis(20);

/// Polls `f` every 20 ms until it returns true; panics naming `what` after `timeout`.
///
/// The deadline is measured in real time (`std::time::Instant`), so a test that pauses tokio's
/// clock still gets a bounded wait instead of one that expires the moment the runtime idles.
pub async fn wait_until<F: FnMut() -> bool>(what: &str, timeout: Duration, mut f: F) {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Like [`wait_until`], for conditions that need `.await` (an HTTP probe, a channel, ...).
pub async fn wait_until_async<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if f().await {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting until {what}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Binds an ephemeral loopback port and serves `router` on a spawned task.
///
/// The task lives as long as the test's runtime: `#[tokio::test]` drops it when the test ends.
pub(crate) async fn serve(name: &str, router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("{name}: no local address: {e}"));
    let name = name.to_owned();
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("{name} on {addr} stopped: {e}");
        }
    });
    addr
}
