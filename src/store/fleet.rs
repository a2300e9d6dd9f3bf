//! Fleet primitives on a shared (PostgreSQL) store: node heartbeats, per-watch leases with
//! fencing epochs, and the fence this process writes under.
//!
//! A lease says which node may act for a watch until when; its epoch grows whenever the
//! lease changes hands or lapses, and every write for the watch checks it (see
//! `store::pg::check_fence`), so a node that lost its lease while paused cannot write over
//! its successor. The database's clock is the only clock: nodes' clocks may disagree.
//! SQLite is single-node: there these calls answer [`StoreError::NotShared`] and fences are
//! ignored.

use std::sync::mpsc::Receiver;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Backend, Store, StoreError};

/// One node of the fleet, as its last heartbeat left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    pub watches: Vec<String>,
    pub heartbeat_at: DateTime<Utc>,
    /// Heartbeat younger than the lease, by the database's clock.
    pub alive: bool,
}

/// One watch's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub watch: String,
    pub owner: Option<String>,
    pub epoch: i64,
    pub expires_at: DateTime<Utc>,
    /// `expires_at` is still ahead, by the database's clock.
    pub live: bool,
    /// How long until it expires, by the database's clock (zero once expired): a node that
    /// will take the watch over wakes up then rather than at its next round.
    pub expires_in: std::time::Duration,
}

/// What [`Store::acquire_lease`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acquired {
    /// The lease is mine under `epoch`; `takeover_from` is the previous owner when it was
    /// another node (whose unfinished work for the watch is now mine to resume).
    Got {
        epoch: i64,
        takeover_from: Option<String>,
    },
    /// Another node's lease is live.
    Held { owner: String },
}

/// The stored lease of a watch when a node asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Current {
    pub owner: Option<String>,
    pub epoch: i64,
    pub live: bool,
}

/// The acquisition rule, pure: who gets the lease and under which epoch. `None` = no row yet.
/// Every acquisition grows the epoch, even of a node's own live lease (renewal is
/// [`Store::renew_leases`], which keeps it): a restarted process, or a second process under
/// the same node name, never shares an epoch with the tenure before it, so the fence refuses
/// whatever the earlier tenure still has in flight.
pub(super) fn acquire(current: Option<&Current>, node: &str) -> Acquired {
    let Some(c) = current else {
        return Acquired::Got {
            epoch: 1,
            takeover_from: None,
        };
    };
    let mine = c.owner.as_deref() == Some(node);
    match (&c.owner, mine, c.live) {
        (Some(owner), false, true) => Acquired::Held {
            owner: owner.clone(),
        },
        _ => Acquired::Got {
            epoch: c.epoch + 1,
            takeover_from: c.owner.clone().filter(|o| o != node),
        },
    }
}

fn not_shared() -> StoreError {
    StoreError::NotShared
}

impl Store {
    /// Whether several nodes share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Upserts my row in `nodes` (heartbeat now, my configured watches) and returns every
    /// node, alive when its heartbeat is younger than `lease` (database clock).
    pub fn heartbeat(
        &self,
        node: &str,
        watches: &[String],
        lease: Duration,
    ) -> Result<Vec<NodeRow>, StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        let (node, watches) = (node.to_string(), watches.to_vec());
        pg.call(move |c| super::pg::fleet::heartbeat(c, &node, &watches, lease))
    }

    /// Takes the lease of `watch` when it has no row, has lapsed, or is already mine; see
    /// [`acquire`] for the epoch. `expires_at` becomes now + `lease`.
    pub fn acquire_lease(
        &self,
        watch: &str,
        node: &str,
        lease: Duration,
    ) -> Result<Acquired, StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        let (watch, node) = (watch.to_string(), node.to_string());
        pg.call(move |c| super::pg::fleet::acquire_lease(c, &watch, &node, lease))
    }

    /// Renews my leases still under the epochs given; returns the watches renewed. A lapsed
    /// lease nobody took is renewed too: its epoch is unchanged, so nobody else acted.
    pub fn renew_leases(
        &self,
        node: &str,
        held: &[(String, i64)],
        lease: Duration,
    ) -> Result<Vec<String>, StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        let (node, held) = (node.to_string(), held.to_vec());
        pg.call(move |c| super::pg::fleet::renew_leases(c, &node, &held, lease))
    }

    /// Gives a lease up (handover, shutdown): it lapses at once and has no owner, so the next
    /// node to ask gets it, as a lease given up rather than taken over.
    pub fn release_lease(&self, watch: &str, node: &str, epoch: i64) -> Result<(), StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        let (watch, node) = (watch.to_string(), node.to_string());
        pg.call(move |c| super::pg::fleet::release_lease(c, &watch, &node, epoch))
    }

    /// Takes this node out of the fleet (shutdown): its row goes, so the others stop counting
    /// it as a live winner at once and take the leases it gives up at their next round.
    pub fn retire_node(&self, node: &str) -> Result<(), StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        let node = node.to_string();
        pg.call(move |c| super::pg::fleet::retire_node(c, &node))
    }

    /// Every lease, live or not, by watch.
    pub fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        pg.call(super::pg::fleet::leases)
    }

    /// Sets the fence this process writes under for `watch` (`None`: not held, writes for
    /// the watch are refused). No-op on SQLite.
    pub fn set_fence(&self, node: &str, watch: &str, epoch: Option<i64>) {
        if let Backend::Postgres(pg) = &self.backend {
            pg.set_fence(node, watch, epoch);
        }
    }

    /// Watches whose inbox got triggers, as other nodes enqueue them (`NOTIFY`), from a
    /// dedicated connection. An empty string after a reconnection: notifications may have
    /// been missed, re-read every inbox.
    pub fn listen_inbox(&self) -> Result<Receiver<String>, StoreError> {
        let Backend::Postgres(pg) = &self.backend else {
            return Err(not_shared());
        };
        super::pg::listen::listen_inbox(pg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(owner: Option<&str>, epoch: i64, live: bool) -> Current {
        Current {
            owner: owner.map(String::from),
            epoch,
            live,
        }
    }

    fn got(epoch: i64, from: Option<&str>) -> Acquired {
        Acquired::Got {
            epoch,
            takeover_from: from.map(String::from),
        }
    }

    #[test]
    fn the_epoch_grows_exactly_when_the_tenure_breaks() {
        assert_eq!(acquire(None, "a"), got(1, None), "a new row starts at 1");
        assert_eq!(
            acquire(Some(&cur(Some("a"), 4, true)), "a"),
            got(5, None),
            "a new tenure, even of a live lease under the same name"
        );
        assert_eq!(acquire(Some(&cur(Some("a"), 4, false)), "a"), got(5, None));
        assert_eq!(
            acquire(Some(&cur(Some("b"), 4, false)), "a"),
            got(5, Some("b"))
        );
        assert_eq!(
            acquire(Some(&cur(Some("b"), 4, true)), "a"),
            Acquired::Held { owner: "b".into() }
        );
        assert_eq!(acquire(Some(&cur(None, 4, true)), "a"), got(5, None));
    }
}
