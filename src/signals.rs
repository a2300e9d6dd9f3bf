//! OS signals turned into the daemon's small control vocabulary: SIGTERM and SIGINT stop,
//! SIGHUP reloads the configuration.

use tokio::sync::mpsc;

/// What the daemon is asked to do from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop taking work, finish in-flight deploy calls, persist, exit 0.
    Shutdown,
    /// Re-read and validate the config file; keep the old one if the new one is bad.
    Reload,
}

/// Listens for SIGTERM, SIGINT and SIGHUP and forwards them as [`Control`] messages until the
/// receiver is dropped.
#[cfg(unix)]
pub fn forward(tx: mpsc::Sender<Control>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        loop {
            let control = tokio::select! {
                _ = term.recv() => Control::Shutdown,
                _ = int.recv() => Control::Shutdown,
                _ = hup.recv() => Control::Reload,
            };
            tracing::info!(?control, "signal received");
            if tx.send(control).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

/// Completes on SIGTERM or SIGINT. The handlers are installed when it is first polled, so
/// until then the signals keep their default effect (the demo's Ctrl-C stops it at once until
/// it starts to wait). Completes at once if they cannot be installed.
pub async fn stop_requested() {
    let (tx, mut rx) = mpsc::channel(1);
    if let Err(e) = forward(tx) {
        tracing::warn!(error = %e, "cannot install signal handlers");
        return;
    }
    while let Some(c) = rx.recv().await {
        if c == Control::Shutdown {
            return;
        }
    }
}

#[cfg(not(unix))]
pub fn forward(tx: mpsc::Sender<Control>) -> std::io::Result<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(Control::Shutdown).await;
        }
    });
    Ok(())
}
