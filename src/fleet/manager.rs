//! The fleet manager: the I/O shell around [`super::plan`]. Every lease/3 it heartbeats,
//! renews the leases it holds, reads the fleet, and converges: it stops the actors of watches
//! it lost, hands over the watches a joining node wins, and takes the leases of the watches it
//! wins. It also publishes the fleet in `/v1/status` and `/metrics`, and shows the watches other
//! nodes run from their records in the database.
//!
//! Safety does not rest on this loop being punctual: the store refuses an owner's write unless
//! its lease row still has its epoch (fencing), and actors ask [`super::Leases::may_act`], a
//! local clock check, before every effect that leaves the process.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::plan::{self, Lease, Move, Node};
use super::{Held, Leases};
use crate::config::Config;
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::status::{FleetView, NodeView, StatusBoard};
use crate::store::{Acquired, Store};

/// How often shutdown looks whether the actors have stopped before giving their leases up.
const STOP_POLL: Duration = Duration::from_millis(50);

/// Everything the manager works with.
pub struct Manager {
    pub node: String,
    pub lease: Duration,
    pub store: Store,
    pub engine: Engine,
    pub leases: Leases,
    pub metrics: Metrics,
    pub status: StatusBoard,
    /// The running configuration (a reload replaces it).
    pub config: tokio::sync::watch::Receiver<Config>,
    /// Ends the manager (shutdown).
    pub cancel: CancellationToken,
    /// A background status refresh is running (see [`Manager::publish`]).
    pub publishing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// When to run an extra round: a takeover comes due (see [`plan::takeover_due`]).
    pub wake: Option<tokio::time::Instant>,
}

/// Leases taken per round at most: taking thousands at once (a node starting alone, or the
/// last survivor) would make the round outlast the leases it holds. The rest come a round
/// later (lease/3).
const ACQUIRE_PER_ROUND: usize = 200;

/// How long after a dead node's lease expires (by the database's clock, as read) a node that
/// will take it over looks again.
const TAKEOVER_MARGIN: Duration = Duration::from_millis(50);

/// Part of a lease during which this node still acts after a renewal was sent: the rest is
/// margin for clock-rate differences and the time the renewal takes to reach the database.
fn valid_for(lease: Duration) -> Duration {
    lease.mul_f64(0.8)
}

/// How long a node keeps a watch it took before handing it to a node that wins it (a node
/// that joined or came back): three leases (45 s by default).
fn min_tenure(lease: Duration) -> Duration {
    lease * 3
}

impl Manager {
    /// Runs until cancelled; on the way out, gives up every lease it holds after the actors
    /// stopped, so the other nodes take over at once instead of after a lease.
    pub async fn run(mut self) {
        self.metrics.enable_fleet();
        let every = self.lease / 3;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.wake.take();
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                _ = tick.tick() => {}
                _ = async {
                    match wake {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
                r = self.config.changed() => if r.is_err() { break },
            }
            if let Err(e) = self.round().await {
                tracing::warn!(node = %self.node, error = %e, "fleet round failed; leases not renewed lapse and their watches stop acting");
            }
            self.expire_local();
        }
        self.leave().await;
    }

    /// Drops what the local clock says has lapsed: the actor stops acting at once (its
    /// `may_act` is already false); the engine stops it.
    fn expire_local(&self) {
        let now = Instant::now();
        for (watch, _) in self.leases.epochs() {
            if self
                .leases
                .get(&watch)
                .is_some_and(|h| h.valid_until <= now)
            {
                tracing::warn!(node = %self.node, %watch, "lease lapsed without renewal; stopping the watch here");
                self.drop_watch(&watch);
            }
        }
    }

    fn drop_watch(&self, watch: &str) {
        self.leases.remove(watch);
        self.store.set_fence(&self.node, watch, None);
        self.engine.disown(watch);
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, crate::store::StoreError> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(store)).await {
            Ok(r) => r,
            Err(e) => Err(crate::store::StoreError::Unavailable(format!(
                "fleet task failed: {e}"
            ))),
        }
    }

    /// One renewal, heartbeat and convergence.
    async fn round(&mut self) -> Result<(), crate::store::StoreError> {
        let config = self.config.borrow().clone();
        let configured: BTreeSet<String> = config.watches.iter().map(|w| w.name.clone()).collect();
        let lease = self.lease;
        // Renew before anything else: an expiring lease matters more than placement, and a
        // failed heartbeat must not keep leases from being renewed.
        let held = self.leases.epochs();
        if !held.is_empty() {
            let sent = Instant::now();
            let (node, pairs) = (
                self.node.clone(),
                held.clone().into_iter().collect::<Vec<_>>(),
            );
            let renewed: BTreeSet<String> = self
                .blocking(move |s| s.renew_leases(&node, &pairs, lease))
                .await?
                .into_iter()
                .collect();
            for (watch, epoch) in &held {
                if renewed.contains(watch) {
                    let since = self.leases.get(watch).map_or(sent, |h| h.since);
                    self.leases.set(
                        watch,
                        Held {
                            epoch: *epoch,
                            valid_until: sent + valid_for(lease),
                            since,
                        },
                    );
                } else {
                    tracing::warn!(node = %self.node, %watch, "lost the lease of the watch (another node took it); stopping it here");
                    self.drop_watch(watch);
                }
            }
        }
        let (node, list) = (
            self.node.clone(),
            configured.iter().cloned().collect::<Vec<_>>(),
        );
        let rows = self
            .blocking(move |s| s.heartbeat(&node, &list, lease))
            .await?;
        let lease_rows = self.blocking(|s| s.leases()).await?;
        let nodes: Vec<Node> = rows
            .iter()
            .map(|r| Node {
                name: r.name.clone(),
                watches: r.watches.iter().cloned().collect(),
                alive: r.alive,
            })
            .collect();
        let mut leases: BTreeMap<String, Lease> = lease_rows
            .iter()
            .map(|l| {
                (
                    l.watch.clone(),
                    Lease {
                        owner: l.owner.clone(),
                        epoch: l.epoch,
                        live: l.live,
                        expires_in: l.expires_in,
                    },
                )
            })
            .collect();
        let moves = plan::plan(
            &self.node,
            &configured,
            &nodes,
            &leases,
            &self.leases.epochs(),
        );
        let mut releasing = BTreeSet::new();
        let mut taken = Vec::new();
        let mut budget = ACQUIRE_PER_ROUND;
        for m in moves {
            match m {
                Move::Lost(watch) => {
                    tracing::warn!(node = %self.node, %watch, "the lease table shows another owner; stopping the watch here");
                    self.drop_watch(&watch);
                }
                Move::Release(watch)
                    if configured.contains(&watch)
                        && self
                            .leases
                            .get(&watch)
                            .is_some_and(|h| h.since.elapsed() < min_tenure(lease)) =>
                {
                    // Taken moments ago (a takeover from a node that has just come back, say):
                    // kept a while before handing it over, so a flapping node does not drag
                    // the watch back and forth.
                }
                Move::Release(watch) => {
                    if self.hand_over(&watch).await {
                        // Given up after the lease table was read: the status published below
                        // must not show this node as the owner (the winner shows itself as
                        // soon as it takes the lease; two owners would show meanwhile).
                        if let Some(l) = leases.get_mut(&watch) {
                            l.owner = None;
                            l.live = false;
                        }
                    }
                    releasing.insert(watch);
                }
                Move::Acquire(watch) if budget > 0 => {
                    budget -= 1;
                    if self.take(&watch).await? {
                        taken.push(watch);
                    }
                }
                Move::Acquire(_) => {} // the next round takes more
            }
        }
        // Every lease held and not being handed over runs here: a handover the plan no
        // longer asks for (the joining node left again) is undone, never left orphaned with
        // its lease renewed and nobody watching.
        for watch in self.leases.epochs().into_keys() {
            if !releasing.contains(&watch) && !self.engine.owns(&watch) && !taken.contains(&watch) {
                tracing::info!(node = %self.node, %watch, "keeping the watch: the handover is no longer wanted");
                taken.push(watch);
            }
        }
        // One engine re-apply for everything taken this round.
        self.engine.own_all(&taken);
        // A dead node's lease this node will take: look again the moment it expires (plus a
        // little, since the database takes it only once strictly past), not a round later.
        self.wake = plan::takeover_due(&self.node, &configured, &nodes, &leases)
            .map(|d| tokio::time::Instant::now() + d + TAKEOVER_MARGIN);
        self.publish(&config, &rows, &nodes, &leases);
        Ok(())
    }

    /// Takes a watch's lease if the database gives it (the caller then runs the watch).
    async fn take(&self, watch: &str) -> Result<bool, crate::store::StoreError> {
        let (w, node, lease) = (watch.to_string(), self.node.clone(), self.lease);
        let sent = Instant::now();
        match self
            .blocking(move |s| s.acquire_lease(&w, &node, lease))
            .await?
        {
            Acquired::Got {
                epoch,
                takeover_from,
            } => {
                if let Some(from) = &takeover_from {
                    self.metrics.lease_takeover();
                    tracing::warn!(node = %self.node, %watch, %from, epoch, "took over the watch from a node whose lease expired");
                } else {
                    tracing::info!(node = %self.node, %watch, epoch, "took the lease of the watch");
                }
                self.store.set_fence(&self.node, watch, Some(epoch));
                self.leases.set(
                    watch,
                    Held {
                        epoch,
                        valid_until: sent + valid_for(self.lease),
                        since: sent,
                    },
                );
                Ok(true)
            }
            Acquired::Held { owner } => {
                tracing::debug!(node = %self.node, %watch, %owner, "the watch's lease is held by another node");
                Ok(false)
            }
        }
    }

    /// Hands a watch to the node that now wins it: stop the actor (it finishes an in-flight
    /// call first), and once it has stopped give the lease up so the winner takes it at its
    /// next round. Never waits: until the actor has stopped, the lease keeps being renewed and
    /// the next round (which plans the same release) looks again. True once the lease is
    /// given up.
    async fn hand_over(&self, watch: &str) -> bool {
        let Some(held) = self.leases.get(watch) else {
            return false;
        };
        if self.engine.owns(watch) {
            tracing::info!(node = %self.node, %watch, "handing the watch over to the node that now wins it");
            self.engine.disown(watch);
        }
        if !self.engine.stopped(watch) {
            return false;
        }
        self.leases.remove(watch);
        self.store.set_fence(&self.node, watch, None);
        let (w, node) = (watch.to_string(), self.node.clone());
        if let Err(e) = self
            .blocking(move |s| s.release_lease(&w, &node, held.epoch))
            .await
        {
            tracing::warn!(node = %self.node, %watch, error = %e, "cannot give the lease up; it expires by itself");
        }
        true
    }

    /// Shutdown: the root token has cancelled the actors. Leave the node list first (so the
    /// others stop counting this node as a winner), then give up each lease once its actor
    /// has stopped, so the fleet takes over at its next round instead of after a lease.
    async fn leave(&self) {
        let node = self.node.clone();
        if let Err(e) = self.blocking(move |s| s.retire_node(&node)).await {
            tracing::warn!(node = %self.node, error = %e, "cannot leave the fleet cleanly; its leases expire by themselves");
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        for (watch, epoch) in self.leases.epochs() {
            while !self.engine.stopped(&watch) && Instant::now() < deadline {
                tokio::time::sleep(STOP_POLL).await;
            }
            if !self.engine.stopped(&watch) {
                continue; // still finishing a call: its lease expires by itself
            }
            self.leases.remove(&watch);
            self.store.set_fence(&self.node, &watch, None);
            let (w, node) = (watch.clone(), self.node.clone());
            let _ = self
                .blocking(move |s| s.release_lease(&w, &node, epoch))
                .await;
        }
        tracing::info!(node = %self.node, "left the fleet");
    }

    /// Fleet view and metrics, and (in the background, so a slow read never delays the next
    /// renewal) the status of the watches other nodes run, from their records in the database.
    fn publish(
        &self,
        config: &Config,
        rows: &[crate::store::NodeRow],
        nodes: &[Node],
        leases: &BTreeMap<String, Lease>,
    ) {
        let unowned = plan::unowned(nodes, leases);
        let owns = |n: &str| {
            leases
                .values()
                .filter(|l| l.live && l.owner.as_deref() == Some(n))
                .count()
        };
        let alive: Vec<&crate::store::NodeRow> = rows.iter().filter(|r| r.alive).collect();
        let owned: Vec<(String, usize)> = alive
            .iter()
            .map(|r| (r.name.clone(), owns(&r.name)))
            .collect();
        self.metrics.fleet(alive.len(), &owned, unowned.len());
        self.status.set_fleet(FleetView {
            node: self.node.clone(),
            nodes: rows
                .iter()
                .map(|r| NodeView {
                    name: r.name.clone(),
                    alive: r.alive,
                    heartbeat_at: r.heartbeat_at,
                    owns: owns(&r.name),
                })
                .collect(),
            unowned: unowned.into_iter().collect(),
        });
        let others: Vec<std::sync::Arc<crate::config::WatchConfig>> = config
            .watches
            .iter()
            // Not while an actor here is stopping (handed over, lost): it may still commit and
            // publish its last step, and a record read before that would show it undone.
            .filter(|w| self.engine.stopped(&w.name))
            .cloned()
            .collect();
        if others.is_empty()
            || self
                .publishing
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return; // nothing to show, or the previous refresh is still reading
        }
        let owners: BTreeMap<String, Option<String>> = others
            .iter()
            .map(|w| {
                let owner = leases
                    .get(&w.name)
                    .filter(|l| l.live)
                    .and_then(|l| l.owner.clone());
                (w.name.clone(), owner)
            })
            .collect();
        let (store, engine, status, busy) = (
            self.store.clone(),
            self.engine.clone(),
            self.status.clone(),
            self.publishing.clone(),
        );
        tokio::spawn(async move {
            let names: Vec<String> = others.iter().map(|w| w.name.clone()).collect();
            let records = tokio::task::spawn_blocking(move || {
                names
                    .iter()
                    .map(|n| store.load_watch(n))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await;
            match records {
                Ok(Ok(records)) => {
                    for (w, rec) in others.iter().zip(records) {
                        if !engine.stopped(&w.name) {
                            continue; // taken meanwhile: its actor publishes
                        }
                        let owner = owners.get(&w.name).cloned().flatten();
                        status.set(crate::engine::status_of(w, &rec, owner));
                    }
                }
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "cannot read the records of watches other nodes run")
                }
                Err(e) => tracing::debug!(error = %e, "status refresh failed"),
            }
            busy.store(false, std::sync::atomic::Ordering::Release);
        });
    }
}
