//! `[fleet]`: this node's name and lease when several backstop nodes share one PostgreSQL.

use std::time::Duration;

use super::fields::Table;

/// `[fleet]`. Only read when `[state] url` puts the state on PostgreSQL; a single node on
/// SQLite is not a fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetConfig {
    /// `node`: this node's name, unique in the fleet (default: the host name). Two live nodes
    /// with one name would both believe they hold the same leases.
    pub node: String,
    /// `lease`: how long a node's ownership of a watch lasts without renewal (default 15s).
    /// Leases are renewed every lease/3; a dead or frozen node's watches are taken over about
    /// one lease after its last renewal.
    pub lease: Duration,
}

/// The default `lease`.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);
/// Shorter leases renew so often that a busy database or a GC-length pause would make watches
/// change hands for nothing.
pub const MIN_LEASE: Duration = Duration::from_secs(3);

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            node: host_name(),
            lease: DEFAULT_LEASE,
        }
    }
}

/// The kernel's host name (what `hostname` prints), or `backstop` if it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "backstop".to_string())
}

pub(super) fn fleet(root: &Table) -> FleetConfig {
    let mut c = FleetConfig::default();
    let Some(t) = root.table("fleet") else {
        return c;
    };
    if let Some(node) = t.string("node") {
        if node.trim().is_empty() || node.len() > 200 || node.chars().any(char::is_control) {
            t.error("node", "must be 1 to 200 printable characters");
        } else {
            c.node = node;
        }
    }
    if let Some(lease) = t.duration("lease") {
        if lease < MIN_LEASE {
            t.error(
                "lease",
                format!("must be at least {}", humantime::format_duration(MIN_LEASE)),
            );
        } else {
            c.lease = lease;
        }
    }
    t.finish();
    c
}
