//! A fleet of backstop nodes on one PostgreSQL: which node runs which watch, with leases and
//! fencing so a dead or paused node's watches are taken over and never acted on twice.
//!
//! `plan` is the pure placement and handover logic; the manager (the I/O shell) heartbeats,
//! renews, takes and gives up leases through the store and starts or stops watch actors.

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
}

/// The leases this node holds, shared by the fleet manager (which writes it) and the watch
/// actors (which ask [`Leases::may_act`] before every effect that leaves the process).
/// Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Leases(Arc<Mutex<Option<BTreeMap<String, Held>>>>);

impl Leases {
    /// A single node on SQLite: no leases, it may always act.
    pub fn single() -> Self {
        Leases::default()
    }

    /// A fleet node: it may act only on watches whose lease it holds and has renewed lately.
    pub fn fleet() -> Self {
        Leases(Arc::new(Mutex::new(Some(BTreeMap::new()))))
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_single_node_always_acts_a_fleet_node_only_within_its_lease() {
        assert!(Leases::single().may_act("shop"));
        let l = Leases::fleet();
        assert!(!l.may_act("shop"), "not held");
        let now = Instant::now();
        l.set(
            "shop",
            Held {
                epoch: 2,
                valid_until: now + Duration::from_secs(60),
            },
        );
        assert!(l.may_act("shop"));
        l.set(
            "shop",
            Held {
                epoch: 2,
                valid_until: now,
            },
        );
        assert!(!l.may_act("shop"), "lapsed by the local clock");
        assert_eq!(l.epochs(), BTreeMap::from([("shop".to_string(), 2)]));
        l.remove("shop");
        assert!(!l.may_act("shop"));
    }
}
