//! Who should own which watch, and what this node must do about it: pure, so every placement
//! and handover rule is unit-tested without a database or a clock.
//!
//! Placement is rendezvous (highest-random-weight) hashing over the live nodes that have the
//! watch configured: every node computes the same owner from the same node list without
//! talking to the others, and a node joining or leaving moves only the watches it wins or
//! held (about 1/n of them), so a join does not restart the other observations.

use std::collections::{BTreeMap, BTreeSet};

/// A node as the fleet table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    /// Watches this node has configured: a node is never given a watch it does not know.
    pub watches: BTreeSet<String>,
    /// Its heartbeat is younger than a lease.
    pub alive: bool,
}

/// A watch's lease as the lease table shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: Option<String>,
    pub epoch: i64,
    /// `expires_at` is in the future (by the database's clock).
    pub live: bool,
    /// Time left until it expires (zero once expired).
    pub expires_in: std::time::Duration,
}

/// One thing this node must do to converge on the placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Move {
    /// This node wins the watch and does not hold it: try to take the lease (the database
    /// refuses while another node's lease is live, so a live owner is never robbed).
    Acquire(String),
    /// This node holds the watch but another live node wins it (a node joined), or the watch
    /// left this node's config: stop its actor, then give the lease up so the winner takes it
    /// without waiting for expiry.
    Release(String),
    /// The lease table says another node (or a newer epoch) has the watch: this node lost it
    /// and must stop acting on it at once.
    Lost(String),
}

/// A stable 64-bit weight of (watch, node). Stable across processes, binaries and Rust
/// versions (unlike `DefaultHasher`), since every node of a fleet must agree: FNV-1a over the
/// bytes, then the SplitMix64 finaliser so nearby names spread evenly.
pub fn weight(watch: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in watch.bytes().chain([0u8]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The node that should own `watch`: the live node with the watch configured and the highest
/// weight (ties, which need a 64-bit collision, go to the smaller name).
pub fn owner_of<'a>(watch: &str, nodes: &'a [Node]) -> Option<&'a str> {
    nodes
        .iter()
        .filter(|n| n.alive && n.watches.contains(watch))
        .max_by(|a, b| {
            weight(watch, &a.name)
                .cmp(&weight(watch, &b.name))
                .then_with(|| b.name.cmp(&a.name))
        })
        .map(|n| n.name.as_str())
}

/// What node `me` must do, given its configured watches, the fleet's nodes and leases, and the
/// leases it believes it holds (watch → epoch). Moves come sorted by watch name, losses first:
/// stopping what was lost is the most urgent.
pub fn plan(
    me: &str,
    configured: &BTreeSet<String>,
    nodes: &[Node],
    leases: &BTreeMap<String, Lease>,
    held: &BTreeMap<String, i64>,
) -> Vec<Move> {
    let mut lost = Vec::new();
    let mut moves = Vec::new();
    for (watch, epoch) in held {
        let still_mine = leases
            .get(watch)
            .is_some_and(|l| l.owner.as_deref() == Some(me) && l.epoch == *epoch);
        if !still_mine {
            lost.push(Move::Lost(watch.clone()));
            continue;
        }
        let winner = owner_of(watch, nodes);
        if !configured.contains(watch) || winner.is_some_and(|w| w != me) {
            moves.push(Move::Release(watch.clone()));
        }
    }
    for watch in configured {
        if held.contains_key(watch) {
            continue;
        }
        // This node counts as live and configured even before its first heartbeat is seen.
        let me_known = nodes.iter().any(|n| n.name == me);
        let winner = if me_known {
            owner_of(watch, nodes).map(str::to_string)
        } else {
            let mut with_me = nodes.to_vec();
            with_me.push(Node {
                name: me.to_string(),
                watches: configured.clone(),
                alive: true,
            });
            owner_of(watch, &with_me).map(str::to_string)
        };
        let free = leases
            .get(watch)
            .is_none_or(|l| !l.live || l.owner.as_deref() == Some(me));
        // The winner takes it; anyone takes a watch whose lease is free and whose winner is
        // not among the live nodes able to run it (cannot happen while this node is live and
        // configured, kept for safety).
        if winner.as_deref() == Some(me) && free {
            moves.push(Move::Acquire(watch.clone()));
        }
    }
    lost.extend(moves);
    lost
}

/// When this node should look again to take over a watch whose owner stopped renewing: the
/// moment that owner's lease expires, instead of at the next round (up to lease/3 later).
/// Considered: every live lease of another node on a watch this node would win without that
/// node. A healthy owner renews every lease/3, so its lease never comes due before this node's
/// next regular round recomputes; a dead one's does. `None` when nothing is due.
pub fn takeover_due(
    me: &str,
    configured: &BTreeSet<String>,
    nodes: &[Node],
    leases: &BTreeMap<String, Lease>,
) -> Option<std::time::Duration> {
    configured
        .iter()
        .filter_map(|w| leases.get(w).map(|l| (w, l)))
        .filter(|(_, l)| l.live)
        .filter_map(|(w, l)| {
            let owner = l.owner.as_deref().filter(|o| *o != me)?;
            let without: Vec<Node> = nodes.iter().filter(|n| n.name != owner).cloned().collect();
            (owner_of(w, &without) == Some(me)).then_some(l.expires_in)
        })
        .min()
}

/// Watches configured somewhere in the fleet whose lease is not live: nobody is watching them.
pub fn unowned(nodes: &[Node], leases: &BTreeMap<String, Lease>) -> BTreeSet<String> {
    nodes
        .iter()
        .filter(|n| n.alive)
        .flat_map(|n| n.watches.iter())
        .filter(|w| !leases.get(*w).is_some_and(|l| l.live && l.owner.is_some()))
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
