//! A fleet of backstop nodes on one PostgreSQL: which node runs which watch, with leases and
//! fencing so a dead or paused node's watches are taken over and never acted on twice.
//!
//! `plan` is the pure placement and handover logic; the manager (the I/O shell) heartbeats,
//! renews, takes and gives up leases through the store and starts or stops watch actors.

pub mod plan;
