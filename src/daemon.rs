//! `backstop run`: wires config, store, engine and API together and handles control messages.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, ApiState, Auth};
use crate::config::{self, Config};
use crate::engine::{Engine, Shared};
use crate::metrics::Metrics;
use crate::signals::Control;
use crate::sinks::Sinks;
use crate::status::StatusBoard;
use crate::store::Store;
use crate::systemd::Notifier;

/// How long shutdown waits for actors (an in-flight deploy call, a state write) to finish.
const STOP_GRACE: Duration = Duration::from_secs(20);
/// How often `STATUS=` is refreshed for `systemctl status`.
const STATUS_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot build HTTP client: {0}")]
    Http(String),
}

/// Runs the daemon until a [`Control::Shutdown`] arrives (or the control channel closes).
/// `config_path` is re-read on [`Control::Reload`].
pub async fn run(
    config: Config,
    config_path: PathBuf,
    control: mpsc::Receiver<Control>,
) -> Result<(), DaemonError> {
    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| DaemonError::Listen {
            addr: config.server.listen,
            source,
        })?;
    serve(config, config_path, control, listener).await
}

/// Like [`run`] on a listener the caller bound (the demo binds port 0 and needs the address).
pub async fn serve(
    config: Config,
    config_path: PathBuf,
    mut control: mpsc::Receiver<Control>,
    listener: TcpListener,
) -> Result<(), DaemonError> {
    let store = Store::from_config(&config.state)?;
    let fleet = store.is_shared();
    let leases = if fleet {
        crate::fleet::Leases::fleet(&config.fleet.node)
    } else {
        crate::fleet::Leases::single()
    };
    let http = reqwest::Client::builder()
        .user_agent(concat!("backstop/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| DaemonError::Http(e.to_string()))?;
    let metrics = Metrics::with_config(&config.metrics);
    metrics.register_store(store.writer_stats());
    let status = StatusBoard::default();
    let root = CancellationToken::new();
    let tasks = TaskTracker::new();
    let sinks = Sinks::new(&config.sinks, http.clone(), metrics.clone(), tasks.clone());
    let shared = Shared {
        store: store.clone(),
        metrics: metrics.clone(),
        status: status.clone(),
        http,
        tasks: tasks.clone(),
        sinks: sinks.clone(),
        evidence_dir: config.state.dir.join("evidence"),
        outbox: Default::default(),
        leases: leases.clone(),
        lag: Default::default(),
        probes: Default::default(),
    };
    tasks.spawn(crate::engine::lag::run(
        shared.lag.clone(),
        metrics.clone(),
        root.clone(),
    ));
    let engine = Engine::new(shared, root.clone());
    let (config_tx, config_rx) = tokio::sync::watch::channel(config.clone());
    if fleet {
        // Watches start as this node takes their leases, not before.
        engine.fleet_mode();
        crate::fleet::start(
            crate::fleet::manager::Manager {
                node: config.fleet.node.clone(),
                lease: config.fleet.lease,
                store: store.clone(),
                engine: engine.clone(),
                leases,
                metrics: metrics.clone(),
                status: status.clone(),
                config: config_rx,
                cancel: root.clone(),
                publishing: Default::default(),
                wake: None,
            },
            &tasks,
        )?;
    }
    engine.apply(&config);
    let auth = Arc::new(RwLock::new(Auth::from_config(&config)));
    let state = ApiState {
        engine: engine.clone(),
        status: status.clone(),
        metrics,
        store,
        auth: auth.clone(),
    };
    let app = api::router(state.clone(), config.server.ui);
    let server_stop = root.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { server_stop.cancelled().await })
            .await
    });
    tracing::info!(
        listen = %config.server.listen,
        watches = config.watches.len(),
        "backstop running"
    );
    let notifier = Notifier::from_env();
    notifier.ready(&format!(
        "listening on {}; {}",
        config.server.listen,
        status.summary()
    ));
    // Pings come from this loop, and only while no watch actor is stuck in a step: a wedged
    // runtime or actor stops them and systemd restarts the daemon.
    let mut watchdog = notifier.watchdog_interval().map(|every| {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let mut status_every = tokio::time::interval(STATUS_EVERY);
    let mut current = config;
    let mut reported_stall = false;
    loop {
        let watchdog_tick = async {
            match watchdog.as_mut() {
                Some(t) => t.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            c = control.recv() => match c {
                Some(Control::Shutdown) | None => break,
                Some(Control::Reload) => {
                    notifier.reloading();
                    reload(&config_path, &mut current, &engine, &sinks, &auth, &state.metrics);
                    config_tx.send_replace(current.clone());
                    notifier.ready(&status.summary());
                }
            },
            _ = watchdog_tick => {
                let stalled = engine.stalled();
                if stalled.is_empty() {
                    notifier.watchdog();
                    reported_stall = false;
                } else if !reported_stall {
                    tracing::error!(watches = ?stalled, "watch actors are stuck; withholding watchdog pings so systemd restarts backstop");
                    reported_stall = true;
                }
            },
            _ = status_every.tick() => notifier.status(&status.summary()),
        }
    }
    notifier.stopping();
    tracing::info!("shutting down");
    root.cancel();
    tasks.close();
    if tokio::time::timeout(STOP_GRACE, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("some watches did not stop within {STOP_GRACE:?}; their state is persisted");
    }
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "HTTP server ended with an error"),
        Ok(_) => {}
        Err(_) => tracing::warn!("HTTP server did not stop in time"),
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the config; on success swaps it in, on failure logs every error and keeps the old.
fn reload(
    path: &std::path::Path,
    current: &mut Config,
    engine: &Engine,
    sinks: &crate::sinks::Sinks,
    auth: &RwLock<Auth>,
    metrics: &Metrics,
) {
    match config::load(path) {
        Ok(mut new) => {
            // What needs a restart is kept as it runs, so the next reload compares with it.
            if new.server.listen != current.server.listen {
                tracing::warn!(old = %current.server.listen, new = %new.server.listen, "server.listen changes need a restart; still listening on the old address");
                new.server.listen = current.server.listen;
            }
            if new.state.dir != current.state.dir {
                tracing::warn!("state.dir changes need a restart; still using the old directory");
                new.state.dir = current.state.dir.clone();
            }
            if new.state.url != current.state.url {
                // The URL is a secret: the warning says that it changed, never what it is.
                tracing::warn!("state.url changes need a restart; still using the running store");
                new.state.url = current.state.url.clone();
            }
            if new.fleet != current.fleet {
                tracing::warn!(
                    node = %current.fleet.node,
                    "fleet changes need a restart; the node keeps its name and lease"
                );
                new.fleet = current.fleet.clone();
            }
            if new.server.ui != current.server.ui {
                tracing::warn!(
                    running = current.server.ui,
                    "server.ui changes need a restart; the dashboard stays as it runs"
                );
                new.server.ui = current.server.ui;
            }
            if new.metrics != current.metrics {
                tracing::warn!(
                    per_check = current.metrics.per_check,
                    "metrics changes need a restart; /metrics stays as it runs"
                );
                new.metrics = current.metrics.clone();
            }
            *auth.write().unwrap_or_else(|e| e.into_inner()) = Auth::from_config(&new);
            // Sinks first: a watch started by this reload may notify at once.
            sinks.reconfigure(&new.sinks);
            engine.apply(&new);
            tracing::info!(watches = new.watches.len(), "configuration reloaded");
            *current = new;
            metrics.reload(true);
        }
        Err(e) => {
            tracing::error!(
                "configuration reload rejected; keeping the running configuration:\n{e}"
            );
            metrics.reload(false);
        }
    }
}
