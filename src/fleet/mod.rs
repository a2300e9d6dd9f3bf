//! A fleet of backstop nodes on one PostgreSQL: which node runs which watch, with leases and
//! fencing so a dead or paused node's watches are taken over and never acted on twice.
//!
//! `plan` is the pure placement and handover logic; the manager (the I/O shell) heartbeats,
//! renews, takes and gives up leases through the store and starts or stops watch actors.

pub mod manager;
pub mod plan;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A lease this node holds, as the node itself sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub epoch: i64,
    /// Until when this node may act on the watch by its own monotonic clock: the moment the
    /// last successful renewal was *sent*, plus most of a lease. The database's expiry is at
    /// least a lease after that moment, so acting before `valid_until` can never overlap a
    /// successor; a node frozen past its lease (SIGSTOP, a paused VM) wakes up to an expired
    /// `valid_until` and stops before its next effect, before the manager even runs.
    pub valid_until: Instant,
    /// When this node took the lease: a watch is handed over to a node that joins only after
    /// a minimum tenure (see the manager), so a node that flaps does not drag watches back
    /// and forth.
    pub since: Instant,
}

/// The leases this node holds, shared by the fleet manager (which writes it) and the watch
/// actors (which ask [`Leases::may_act`] before every effect that leaves the process).
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Leases(Arc<Mutex<Option<BTreeMap<String, Held>>>>, Option<Arc<str>>);

impl Leases {
    /// A single node on SQLite: no leases, it may always act.
    pub fn single() -> Self {
        Leases::default()
    }

    /// A fleet node: it may act only on watches whose lease it holds and has renewed lately.
    pub fn fleet(node: &str) -> Self {
        Leases(
            Arc::new(Mutex::new(Some(BTreeMap::new()))),
            Some(node.into()),
        )
    }

    /// This node's name in a fleet.
    pub fn node(&self) -> Option<String> {
        self.1.as_deref().map(str::to_string)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BTreeMap<String, Held>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_fleet(&self) -> bool {
        self.lock().is_some()
    }

    /// Whether this node may make a deploy call, run a command or send a notification for
    /// `watch` now.
    pub fn may_act(&self, watch: &str) -> bool {
        match &*self.lock() {
            None => true,
            Some(held) => held
                .get(watch)
                .is_some_and(|h| Instant::now() < h.valid_until),
        }
    }

    /// Like [`Leases::may_act`], for an actor started under the lease's `epoch` (`None` on a
    /// single node): an actor left over from an earlier tenure of this node (still stopping
    /// when the lease came back) never acts under the new one.
    pub fn may_act_as(&self, watch: &str, epoch: Option<i64>) -> bool {
        match &*self.lock() {
            None => true,
            Some(held) => held
                .get(watch)
                .is_some_and(|h| Some(h.epoch) == epoch && Instant::now() < h.valid_until),
        }
    }

    pub fn get(&self, watch: &str) -> Option<Held> {
        self.lock().as_ref().and_then(|m| m.get(watch).copied())
    }

    pub fn set(&self, watch: &str, held: Held) {
        if let Some(m) = self.lock().as_mut() {
            m.insert(watch.to_string(), held);
        }
    }

    pub fn remove(&self, watch: &str) {
        if let Some(m) = self.lock().as_mut() {
            m.remove(watch);
        }
    }

    /// Watch → epoch of every lease held.
    pub fn epochs(&self) -> BTreeMap<String, i64> {
        self.lock()
            .iter()
            .flat_map(|m| m.iter().map(|(w, h)| (w.clone(), h.epoch)))
            .collect()
    }
}

/// Starts the fleet manager and the thread that wakes a watch's actor when any node commits a
/// trigger for it (`LISTEN/NOTIFY`; the actors' periodic inbox check is the fallback).
pub fn start(
    m: manager::Manager,
    tasks: &tokio_util::task::TaskTracker,
) -> Result<(), crate::store::StoreError> {
    let inbox = m.store.listen_inbox()?;
    let engine = m.engine.clone();
    std::thread::Builder::new()
        .name("backstop-notify".into())
        .spawn(move || {
            for watch in inbox.iter() {
                // Empty: the listener reconnected and may have missed some; wake everyone.
                let targets = if watch.is_empty() {
                    engine.running_names()
                } else {
                    vec![watch]
                };
                for w in targets.into_iter().filter(|w| engine.runs(w)) {
                    let _ = engine.send(&w, crate::engine::Command::Inbox);
                }
            }
        })
        .map_err(|e| {
            crate::store::StoreError::Unavailable(format!(
                "cannot start the notification thread: {e}"
            ))
        })?;
    tasks.spawn(m.run());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_single_node_always_acts_a_fleet_node_only_within_its_lease() {
        assert!(Leases::single().may_act("shop"));
        let l = Leases::fleet("a");
        assert!(!l.may_act("shop"), "not held");
        let now = Instant::now();
        l.set(
            "shop",
            Held {
                epoch: 2,
                valid_until: now + Duration::from_secs(60),
                since: now,
            },
        );
        assert!(l.may_act("shop"));
        assert!(l.may_act_as("shop", Some(2)));
        assert!(
            !l.may_act_as("shop", Some(1)),
            "an actor of an earlier tenure"
        );
        assert!(Leases::single().may_act_as("shop", None));
        l.set(
            "shop",
            Held {
                epoch: 2,
                valid_until: now,
                since: now,
            },
        );
        assert!(!l.may_act("shop"), "lapsed by the local clock");
        assert_eq!(l.epochs(), BTreeMap::from([("shop".to_string(), 2)]));
        l.remove("shop");
        assert!(!l.may_act("shop"));
    }
}
