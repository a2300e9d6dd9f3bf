//! `FakeApp`: the deployed application whose `GET /health` backstop's HTTP check probes.
//!
//! Tests flip its status to make a release look bad, slow it down to exercise the check's
//! timeout, and count hits to prove the check runs (or stops running) when it should.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;

#[derive(Debug)]
struct State {
    status: u16,
    delay: Duration,
    hits: usize,
}

/// Handle on a running fake application. Clones share the same server.
#[derive(Clone)]
pub struct FakeApp {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<tokio::sync::Notify>,
    stopped: Arc<tokio::sync::Notify>,
}

impl FakeApp {
    /// Starts the fake on an ephemeral loopback port; `/health` answers 200 until told otherwise.
    pub async fn start() -> FakeApp {
        let state = Arc::new(Mutex::new(State {
            status: 200,
            delay: Duration::ZERO,
            hits: 0,
        }));
        let router = Router::new()
            .route("/health", get(health))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("FakeApp: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("FakeApp: local address");
        let stop = Arc::new(tokio::sync::Notify::new());
        let stopped = Arc::new(tokio::sync::Notify::new());
        let (s, d) = (stop.clone(), stopped.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async move { s.notified().await })
                .await;
            d.notify_one();
        });
        FakeApp {
            addr,
            state,
            stop,
            stopped,
        }
    }

    /// Stops serving and closes the port: from now on a connection is refused, as for a
    /// release whose process never started.
    pub async fn stop(&self) {
        self.stop.notify_one();
        tokio::time::timeout(Duration::from_secs(10), self.stopped.notified())
            .await
            .expect("FakeApp did not stop within 10s");
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`; the health endpoint is `{url}/health`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Status code `/health` answers from now on.
    pub fn set_health(&self, status: u16) {
        StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
        self.lock().status = status;
    }

    /// Delay before `/health` answers (the hit is counted on arrival, before the delay).
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Number of `/health` requests received so far.
    pub fn hits(&self) -> usize {
        self.lock().hits
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("FakeApp state poisoned")
    }
}

async fn health(AxState(state): AxState<Arc<Mutex<State>>>) -> (StatusCode, &'static str) {
    let (status, delay) = {
        let mut s = state.lock().expect("FakeApp state poisoned");
        s.hits += 1;
        (s.status, s.delay)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = StatusCode::from_u16(status).expect("validated in set_health");
    let body = if status.is_success() {
        "ok"
    } else {
        "unhealthy"
    };
    (status, body)
}
