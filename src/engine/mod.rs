//! The engine: one actor task per watch, plus a poller per watch that has `poll` set.
//!
//! The actor owns everything about its watch (observation, verdict, rollback), so no two tasks
//! ever act on one watch. The API and pollers talk to it through a channel of [`Command`]s.
//! [`Engine::apply`] makes the running actors match a config: on reload, unchanged watches keep
//! running; changed ones are stopped and restarted, and the new actor resumes from the store
//! after the old one has fully stopped.

mod act;
#[cfg(test)]
mod footprint_tests;
pub mod lag;
pub mod lifecycle;
mod poll;
mod report;
pub mod rounds;
mod watch;

pub use watch::status_of;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, DeployerConfig, WatchConfig};
use crate::deployer::Deployer;
use crate::metrics::Metrics;
use crate::model::Source;
use crate::status::StatusBoard;
use crate::store::Store;

/// A deployment backstop has learned of.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trigger {
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    /// When the deployment started; the baseline window ends here. Defaults to now.
    pub deployed_at: Option<DateTime<Utc>>,
    pub source: Source,
    /// `Some(false)`: the release is not safe to roll back from (announced, or found by the
    /// deployer); `None`: ask the deployer.
    pub rollback_safe: Option<bool>,
    /// `Some`: the deployment failed (what its source said about it; the actor adds the
    /// deployer's task details). `None`: it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::model::DeployFailure>,
}

/// One row of a watch's inbox: a deployment to observe, or a pause/resume. Both go through
/// the database so that, in a fleet, whichever node accepted the request, the watch's owner
/// handles it (and a crash between accepting and handling loses nothing).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Inbound {
    /// Listed first: `{"control": "pause"}` is never a trigger (a trigger needs a release).
    Control { control: Control },
    /// Boxed: a trigger with a failure's log tail is far larger than a control.
    Deploy(Box<Trigger>),
}

/// A request to stop or restart acting on a watch's deployments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Control {
    Pause,
    Resume,
}

/// What a watch actor can be asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Boxed: a trigger with a failure's log tail is far larger than the other commands.
    Deploy(Box<Trigger>),
    /// Triggers or controls (pause, resume) were committed to the watch's inbox: handle them.
    Inbox,
}

/// Why a command could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("no watch named {0:?}")]
    UnknownWatch(String),
    #[error("watch {0:?} is not accepting commands (shutting down or overloaded)")]
    Unavailable(String),
    /// The request could not be made durable. The cause is logged, not returned: callers
    /// answer HTTP clients, who get no internals.
    #[error("the request could not be recorded: the state store failed (see backstop's log)")]
    Unrecorded,
}

/// What every actor shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub metrics: Metrics,
    pub status: StatusBoard,
    pub http: reqwest::Client,
    /// Spawned actors and pollers, so shutdown can wait for all of them.
    pub tasks: TaskTracker,
    /// Where decisions are announced.
    pub sinks: crate::sinks::Sinks,
    /// Where evidence files for `[watch.command]` programs are written.
    pub evidence_dir: std::path::PathBuf,
    /// Outbox items being delivered now or waiting to be retried, across actors (a reload's new
    /// actor does not resend what its predecessor has in flight).
    pub outbox: Arc<Mutex<OutboxState>>,
    /// In a fleet, the leases this node holds: nothing leaves the process for a watch whose
    /// lease has lapsed. A single node always may act.
    pub leases: crate::fleet::Leases,
    /// How late the process's timers fire ([`lag::run`] measures it).
    pub lag: lag::LagMonitor,
    /// Bounds the probes in flight at once, across watches ([`rounds::ProbeGate`]).
    pub probes: rounds::ProbeGate,
}

/// Deliveries in progress and the backoff of the ones a sink did not take.
#[derive(Debug, Default)]
pub struct OutboxState {
    pub in_flight: std::collections::BTreeSet<String>,
    /// Item id → (failed rounds, not before).
    pub backoff: BTreeMap<String, (u32, std::time::Instant)>,
}

/// Liveness of one actor for the watchdog: when it last made progress while busy. An actor
/// parked waiting for its next round or command is not busy, so an idle daemon keeps pinging;
/// one stuck inside a step stops the pings and systemd restarts the daemon.
#[derive(Debug, Default)]
pub struct Pulse(Mutex<Option<std::time::Instant>>);

impl Pulse {
    /// Progress while busy.
    pub fn beat(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }

    /// Back to waiting.
    pub fn rest(&self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn busy_for(&self) -> Option<std::time::Duration> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|t| t.elapsed())
    }
}

/// Longest legitimate step between two beats: a sample round, one deployer call, or a
/// backoff sleep (Retry-After is capped at 120s).
fn stall_limit(w: &WatchConfig, d: &DeployerConfig) -> std::time::Duration {
    let c = d.calls();
    let hook = w.command.as_ref().map(|h| h.timeout).unwrap_or_default();
    3 * w.interval.max(c.timeout).max(c.task_poll) + hook + std::time::Duration::from_secs(150)
}

struct Running {
    /// Shared with the actor and the poller: one copy of a watch's config, however many
    /// tasks read it.
    config: Arc<WatchConfig>,
    pulse: Arc<Pulse>,
    stall_after: std::time::Duration,
    deployer: DeployerConfig,
    tx: mpsc::Sender<Command>,
    cancel: CancellationToken,
    done: JoinHandle<()>,
}

/// A request the store did not take: a full inbox (a flood of requests) is the watch being
/// busy, said as such; any other failure is logged and answered without internals.
fn unrecorded(e: crate::store::StoreError, what: &str) -> SendError {
    match e {
        crate::store::StoreError::Full(watch) => SendError::Unavailable(watch),
        e => {
            tracing::error!(error = %e, "{what}");
            SendError::Unrecorded
        }
    }
}

/// Handle on the running watch actors. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Shared,
    root: CancellationToken,
    /// The configuration last applied: every watch in it is *configured* here, whether or not
    /// this node runs it.
    config: Arc<Mutex<Option<Config>>>,
    /// In a fleet, the watches this node holds the lease of and runs; `None` on a single node,
    /// which runs every configured watch.
    owned: Arc<Mutex<Option<std::collections::BTreeSet<String>>>>,
    running: Arc<Mutex<BTreeMap<String, Running>>>,
    /// Held through every [`Engine::apply`]: a reload and the fleet manager's own/disown
    /// (which re-apply the last config) must not interleave, or a re-apply of the old config
    /// could land after the reload's.
    applying: Arc<Mutex<()>>,
    /// Actors of removed watches that may still be stopping: a watch added again (by a later
    /// reload) starts only after its old actor has stopped, so one watch never has two.
    stopping: Arc<Mutex<BTreeMap<String, JoinHandle<()>>>>,
}

/// Commands queued per watch before senders are told the watch is overloaded.
const QUEUE: usize = 64;

impl Engine {
    pub fn new(shared: Shared, root: CancellationToken) -> Self {
        Engine {
            shared,
            root,
            config: Arc::new(Mutex::new(None)),
            owned: Arc::new(Mutex::new(None)),
            running: Arc::new(Mutex::new(BTreeMap::new())),
            applying: Arc::new(Mutex::new(())),
            stopping: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// In a fleet: this node runs only the watches it is given with [`Engine::own`].
    pub fn fleet_mode(&self) {
        *self.owned.lock().unwrap_or_else(|e| e.into_inner()) = Some(Default::default());
    }

    /// Runs `watch` here (this node took its lease).
    pub fn own(&self, watch: &str) {
        self.own_all(&[watch.to_string()]);
    }

    /// Runs these watches here, with one re-apply for all of them.
    pub fn own_all(&self, watches: &[String]) {
        if watches.is_empty() {
            return;
        }
        if let Some(o) = self
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            o.extend(watches.iter().cloned());
        }
        self.reapply();
    }

    /// Whether this node means to run `watch` (owned, whether or not its actor runs yet).
    pub fn owns(&self, watch: &str) -> bool {
        self.owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_none_or(|o| o.contains(watch))
    }

    /// Stops running `watch` here (its lease was lost or handed over). Its actor is cancelled
    /// at once; [`Engine::stopped`] tells when it has returned.
    pub fn disown(&self, watch: &str) {
        if let Some(o) = self
            .owned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            o.remove(watch);
        }
        self.reapply();
    }

    /// Whether no actor of `watch` is running or stopping here (an actor that returned after
    /// shutdown cancelled it counts as stopped).
    pub fn stopped(&self, watch: &str) -> bool {
        let running = self
            .lock()
            .get(watch)
            .is_some_and(|r| !r.done.is_finished());
        let stopping = self
            .stopping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(watch)
            .is_some_and(|h| !h.is_finished());
        !running && !stopping
    }

    fn reapply(&self) {
        let _serial = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        let config = self
            .config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(c) = config {
            self.apply_now(&c);
        }
    }

    /// Starts, restarts and stops actors so they match `config` (in a fleet: the watches of
    /// `config` this node owns).
    pub fn apply(&self, config: &Config) {
        let _serial = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        self.apply_now(config);
    }

    fn apply_now(&self, config: &Config) {
        *self.config.lock().unwrap_or_else(|e| e.into_inner()) = Some(config.clone());
        let owned = self.owned.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut running = self.lock();
        let configured: std::collections::BTreeSet<&str> =
            config.watches.iter().map(|w| w.name.as_str()).collect();
        let wanted: BTreeMap<&str, &Arc<WatchConfig>> = config
            .watches
            .iter()
            .filter(|w| owned.as_ref().is_none_or(|o| o.contains(&w.name)))
            .map(|w| (w.name.as_str(), w))
            .collect();
        let names: Vec<String> = running.keys().cloned().collect();
        let mut previous: BTreeMap<String, JoinHandle<()>> = BTreeMap::new();
        for name in names {
            let keep = match (wanted.get(name.as_str()), running.get(&name)) {
                (Some(w), Some(r)) => {
                    ***w == *r.config && config.deployers.get(&w.deployer) == Some(&r.deployer)
                }
                _ => false,
            };
            if !keep {
                if let Some(r) = running.remove(&name) {
                    tracing::info!(watch = %name, "stopping watch (removed or changed)");
                    r.cancel.cancel();
                    previous.insert(name.clone(), r.done);
                }
                if !wanted.contains_key(name.as_str()) {
                    self.shared.status.remove(&name);
                    self.shared.metrics.forget_watch(&name);
                }
                // In a fleet another node may still have the watch configured (a rolling
                // config change): its inbox is not this node's to drop.
                if !configured.contains(name.as_str()) && owned.is_none() {
                    // Deployments announced to a watch that no longer exists are not replayed
                    // if a watch of that name comes back.
                    if let Err(e) = self.shared.store.purge_inbox(&name) {
                        tracing::warn!(watch = %name, error = %e, "cannot clear the inbox of a removed watch");
                    }
                }
            }
        }
        // Scrape history of watches no longer configured (removed now, or while backstop was
        // down) goes; a removed watch's collector saving while it stops finds no row to write.
        // Not in a fleet: another node may run a watch this node's config lacks.
        if owned.is_none() {
            let names: Vec<&str> = configured.iter().copied().collect();
            if let Err(e) = self.shared.store.retain_scrape_history(&names) {
                tracing::warn!(error = %e, "cannot delete the scrape history of removed watches");
            }
            // Likewise requests accepted for watches removed before they were handled.
            if let Err(e) = self.shared.store.retain_inbox(&names) {
                tracing::warn!(error = %e, "cannot clear the inboxes of removed watches");
            }
        }
        let mut stopping = self.stopping.lock().unwrap_or_else(|e| e.into_inner());
        stopping.retain(|_, h| !h.is_finished());
        for w in wanted.values().copied() {
            if running.contains_key(&w.name) {
                continue;
            }
            let Some(dcfg) = config.deployers.get(&w.deployer) else {
                continue; // validation guarantees this does not happen
            };
            let deployer = Deployer::new(
                &w.deployer,
                dcfg,
                self.shared.http.clone(),
                self.shared.metrics.clone(),
            );
            let cancel = self.root.child_token();
            let (tx, rx) = mpsc::channel(QUEUE);
            let before = previous
                .remove(&w.name)
                .or_else(|| stopping.remove(&w.name));
            let pulse = Arc::new(Pulse::default());
            let wcfg = w.clone();
            let actor = Box::new(watch::WatchActor::new(
                wcfg.clone(),
                deployer.clone(),
                self.shared.clone(),
                cancel.clone(),
                pulse.clone(),
            ));
            let done = self.shared.tasks.spawn(async move {
                if let Some(h) = before {
                    let _ = h.await;
                }
                actor.run(rx).await;
            });
            if let Some(every) = w.poll {
                self.shared.tasks.spawn(poll::run(
                    wcfg.clone(),
                    deployer,
                    self.shared.store.clone(),
                    self.shared.metrics.clone(),
                    tx.clone(),
                    every,
                    cancel.clone(),
                ));
            }
            running.insert(
                w.name.clone(),
                Running {
                    config: wcfg,
                    pulse,
                    stall_after: stall_limit(w, dcfg),
                    deployer: dcfg.clone(),
                    tx,
                    cancel,
                    done,
                },
            );
        }
        // Removed watches: remembered until their actor has stopped.
        stopping.extend(previous);
    }

    /// Commits triggers to their watches' inboxes (with a webhook's event id, in one
    /// transaction: an event is seen exactly when its triggers are durable), then nudges the
    /// actors. A full or stopping actor finds them later: it drains its inbox when it starts
    /// and periodically. `Ok(false)`: the event was already delivered.
    pub fn deliver(
        &self,
        event_id: Option<&str>,
        triggers: Vec<(String, Trigger)>,
    ) -> Result<bool, SendError> {
        for (w, _) in &triggers {
            if !self.has_watch(w) {
                return Err(SendError::UnknownWatch(w.clone()));
            }
        }
        let watches: Vec<String> = triggers.iter().map(|(w, _)| w.clone()).collect();
        let rows: Vec<(String, Inbound)> = triggers
            .into_iter()
            .map(|(w, t)| (w, Inbound::Deploy(Box::new(t))))
            .collect();
        let fresh = self
            .shared
            .store
            .enqueue(event_id, &rows)
            .map_err(|e| unrecorded(e, "cannot record triggers"))?;
        self.unless_removed_meanwhile(&watches)?;
        for w in watches {
            if !self.runs(&w) {
                continue; // another node's: the store notifies it
            }
            if let Err(e) = self.send(&w, Command::Inbox) {
                tracing::debug!(watch = %w, error = %e, "watch busy; it drains its inbox later");
            }
        }
        Ok(fresh)
    }

    /// Pauses or resumes a watch: the request is committed to the watch's inbox, which wakes
    /// its owner on whichever node. On a single node too: accepted means durable, in order with
    /// the deployments before it, and a burst of requests never finds the actor's queue full
    /// (sent to the queue directly, the 65th of a burst was refused with a 503).
    pub fn control(&self, watch: &str, control: Control) -> Result<(), SendError> {
        if !self.has_watch(watch) {
            return Err(SendError::UnknownWatch(watch.to_string()));
        }
        self.shared
            .store
            .enqueue(None, &[(watch.to_string(), Inbound::Control { control })])
            .map_err(|e| unrecorded(e, "cannot record a pause/resume request"))?;
        self.unless_removed_meanwhile(&[watch.to_string()])?;
        if self.runs(watch) {
            let _ = self.send(watch, Command::Inbox);
        }
        Ok(())
    }

    /// After an enqueue: a reload that removed one of `watches` between the check and the
    /// enqueue has already cleared its inbox, so the row just written would wait for a watch of
    /// that name to come back. On a single node it is cleared here and the request refused.
    /// (Either the reload's purge sees the row, or this sees the new config.) In a fleet the
    /// other nodes' configs decide, and `apply_now` leaves inboxes alone.
    fn unless_removed_meanwhile(&self, watches: &[String]) -> Result<(), SendError> {
        if self.shared.leases.is_fleet() {
            return Ok(());
        }
        let mut removed = None;
        for w in watches.iter().filter(|w| !self.has_watch(w)) {
            if let Err(e) = self.shared.store.purge_inbox(w) {
                tracing::warn!(watch = %w, error = %e, "cannot clear the inbox of a removed watch");
            }
            removed.get_or_insert_with(|| w.clone());
        }
        removed.map_or(Ok(()), |w| Err(SendError::UnknownWatch(w)))
    }

    /// Delivers a command to a watch's actor without waiting for it to be handled.
    pub fn send(&self, watch: &str, command: Command) -> Result<(), SendError> {
        let running = self.lock();
        let r = running
            .get(watch)
            .ok_or_else(|| SendError::UnknownWatch(watch.to_string()))?;
        r.tx.try_send(command)
            .map_err(|_| SendError::Unavailable(watch.to_string()))
    }

    /// Watches whose actor has been busy without progress for longer than any legitimate step.
    pub fn stalled(&self) -> Vec<String> {
        self.lock()
            .iter()
            .filter(|(_, r)| r.pulse.busy_for().is_some_and(|d| d > r.stall_after))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Whether a watch is configured (in a fleet, whichever node runs it).
    pub fn has_watch(&self, watch: &str) -> bool {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|c| c.watches.iter().any(|w| w.name == watch))
    }

    /// The watches whose actors run here.
    pub fn running_names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Whether this node runs the watch's actor now.
    pub fn runs(&self, watch: &str) -> bool {
        self.lock().contains_key(watch)
    }

    /// Watches using a deployer, as (name, project, environment).
    pub fn watches_of(&self, deployer: &str) -> Vec<(String, String, String)> {
        self.config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .flat_map(|c| c.watches.iter())
            .filter(|w| w.deployer == deployer)
            .map(|w| (w.name.clone(), w.project.clone(), w.environment.clone()))
            .collect()
    }
}

/// A random id for observations and rollback intents. Unique across restarts and across a
/// wiped state directory, which matters for the rollback marker searched in the deployer.
pub fn new_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    h.write_u32(std::process::id());
    format!("{prefix}-{:016x}", h.finish())
}
