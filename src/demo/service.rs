//! The demo's simulated service: `/health` and a Prometheus `/metrics` with request counters
//! and latency, whose behaviour follows the release it is running.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

/// How a release behaves. Closed set: one per demo scenario, plus the good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Good,
    /// `/health` answers 503.
    BadHealth,
    /// A quarter of requests fail with 500.
    ErrorSpike,
    /// Requests take five times longer.
    Slow,
    /// Healthy but noisy: one failed health check in three, a few errors.
    Noisy,
    /// Down three checks out of four.
    Flapping,
}

impl Behaviour {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "good" => Behaviour::Good,
            "bad-health" => Behaviour::BadHealth,
            "error-spike" => Behaviour::ErrorSpike,
            "slow" => Behaviour::Slow,
            "noisy" => Behaviour::Noisy,
            "flapping" => Behaviour::Flapping,
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Sim {
    release: String,
    behaviour: Behaviour,
    ok: u64,
    errors: u64,
    latency_sum: f64,
    /// Cumulative counts per bucket of [`BUCKETS`] (the last is +Inf).
    buckets: [u64; BUCKETS.len() + 1],
    health_hits: u64,
    rng: u64,
}

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: [f64; 6] = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Handle on the running simulated service.
#[derive(Clone)]
pub struct Service {
    pub url: String,
    sim: Arc<Mutex<Sim>>,
}

impl Service {
    /// Serves on 127.0.0.1:0 and simulates about 100 requests per second until `cancel`.
    pub async fn start(release: &str, cancel: CancellationToken) -> std::io::Result<Service> {
        let sim = Arc::new(Mutex::new(Sim {
            release: release.to_string(),
            behaviour: Behaviour::Good,
            ok: 0,
            errors: 0,
            latency_sum: 0.0,
            buckets: [0; BUCKETS.len() + 1],
            health_hits: 0,
            rng: 0x2545_f491_4f6c_dd1d,
        }));
        let app = Router::new()
            .route("/health", get(health))
            .route("/metrics", get(metrics))
            .with_state(sim.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let stop = cancel.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
        });
        let traffic = sim.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tick.tick() => simulate(&traffic, 2),
                }
            }
        });
        Ok(Service { url, sim })
    }

    /// The service now runs `release`, behaving as `behaviour`.
    pub fn run(&self, release: &str, behaviour: Behaviour) {
        let mut s = self.sim.lock().unwrap_or_else(|e| e.into_inner());
        s.release = release.to_string();
        s.behaviour = behaviour;
    }

    pub fn release(&self) -> String {
        self.sim
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .release
            .clone()
    }
}

/// xorshift: deterministic, dependency-free noise.
fn next(rng: &mut u64) -> f64 {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    (*rng >> 11) as f64 / (1u64 << 53) as f64
}

fn simulate(sim: &Mutex<Sim>, requests: u32) {
    let mut s = sim.lock().unwrap_or_else(|e| e.into_inner());
    let (error_rate, latency) = match s.behaviour {
        Behaviour::Good | Behaviour::BadHealth | Behaviour::Flapping => (0.002, 0.050),
        Behaviour::ErrorSpike => (0.25, 0.055),
        Behaviour::Slow => (0.002, 0.250),
        Behaviour::Noisy => (0.01, 0.060),
    };
    for _ in 0..requests {
        let r = next(&mut s.rng);
        if r < error_rate {
            s.errors += 1;
        } else {
            s.ok += 1;
        }
        let jitter = 0.8 + 0.4 * next(&mut s.rng);
        let took = latency * jitter;
        s.latency_sum += took;
        for (i, le) in BUCKETS.iter().enumerate() {
            if took <= *le {
                s.buckets[i] += 1;
            }
        }
        s.buckets[BUCKETS.len()] += 1;
    }
}

async fn health(State(sim): State<Arc<Mutex<Sim>>>) -> StatusCode {
    let mut s = sim.lock().unwrap_or_else(|e| e.into_inner());
    s.health_hits += 1;
    let n = s.health_hits;
    let up = match s.behaviour {
        Behaviour::BadHealth => false,
        Behaviour::Noisy => n % 3 != 0,
        Behaviour::Flapping => n % 4 == 0,
        _ => true,
    };
    if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

async fn metrics(State(sim): State<Arc<Mutex<Sim>>>) -> String {
    let s = sim.lock().unwrap_or_else(|e| e.into_inner());
    let count = s.ok + s.errors;
    let mut buckets = String::new();
    for (i, le) in BUCKETS.iter().enumerate() {
        buckets.push_str(&format!(
            "demo_request_duration_seconds_bucket{{le=\"{le}\"}} {}\n",
            s.buckets[i]
        ));
    }
    buckets.push_str(&format!(
        "demo_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
        s.buckets[BUCKETS.len()]
    ));
    format!(
        "# HELP demo_http_requests_total Requests served.\n\
         # TYPE demo_http_requests_total counter\n\
         demo_http_requests_total{{code=\"200\"}} {ok}\n\
         demo_http_requests_total{{code=\"500\"}} {errors}\n\
         # HELP demo_request_duration_seconds Request latency.\n\
         # TYPE demo_request_duration_seconds histogram\n\
         {buckets}\
         demo_request_duration_seconds_sum {sum}\n\
         demo_request_duration_seconds_count {count}\n\
         # HELP demo_build_info Running release.\n\
         # TYPE demo_build_info gauge\n\
         demo_build_info{{release=\"{release}\"}} 1\n",
        ok = s.ok,
        errors = s.errors,
        sum = s.latency_sum,
        release = s.release,
    )
}
