//! Durable state in SQLite: the only module that speaks SQL.
//!
//! What must survive a `kill -9`: each watch's record (state, last verified release,
//! quarantine), the observation in progress (so it resumes), deploy intents (written *before*
//! the deploy call, so a restart never posts twice), the outbox of notifications, and the ids
//! of webhook events and deployments already handled. Records are stored as JSON bodies beside
//! the columns queries need, so adding a field does not need a migration.
//!
//! Every lifecycle transition is one transaction ([`Store::commit`]): the watch record, its
//! observation, its intent, closed observations, evidence and outbox rows land together or not
//! at all. The journal is WAL with `synchronous=NORMAL`: every commit survives a crash of the
//! process, and observation progress (written every round by every watch) costs no fsync.
//! Commits that exactly-once rests on (intents, outbox) are made with `synchronous=FULL` so
//! they survive a power loss too. (With FULL for everything, 3,400 watches at 1 s spent their
//! time in fsync and rounds slipped by 300 ms: bench/RESULTS.md.)
//!
//! Scrape checks' recent scrapes are kept too, so a restart keeps their baselines; they are
//! saved periodically (not every commit), so a crash loses the last save period of them.
//!
//! Modules: `watches` (records, observations, history, evidence), `intents` (deploy intents
//! and the notification outbox), `dedup` (webhook events, seen deployments, meta), `scrape`
//! (scrape checks' history).

mod dedup;
mod intents;
mod scrape;
mod watches;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Params};
use serde::de::DeserializeOwned;

pub use intents::OutboxItem;
pub use scrape::Claimed;
pub use watches::{Commit, HistoryEntry};

/// Database file name inside `[state] dir`.
pub const DB_FILE: &str = "backstop.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the inbox of watch {0:?} is full: too many deployments waiting to be handled")]
    Full(String),
}

/// Cheap-to-clone handle on the database. Calls are short and synchronous; the lock is never
/// held across `.await`.
#[derive(Clone)]
pub struct Store(Arc<Mutex<Connection>>);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS watches (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS observations (
    id TEXT PRIMARY KEY,
    watch TEXT NOT NULL,
    deployment_id TEXT,
    active INTEGER NOT NULL,
    body TEXT NOT NULL,
    verdict TEXT
);
CREATE INDEX IF NOT EXISTS observations_watch ON observations (watch, active);
CREATE INDEX IF NOT EXISTS observations_deployment ON observations (watch, deployment_id);
CREATE TABLE IF NOT EXISTS quarantine (
    watch TEXT NOT NULL,
    release TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (watch, release)
);
CREATE TABLE IF NOT EXISTS rollbacks (
    id TEXT PRIMARY KEY,
    observation_id TEXT NOT NULL UNIQUE,
    watch TEXT NOT NULL,
    deployment_id TEXT,
    done INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    watch TEXT NOT NULL,
    body TEXT NOT NULL,
    delivered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    watch TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_deployments (
    watch TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    PRIMARY KEY (watch, deployment_id)
);
CREATE TABLE IF NOT EXISTS evidence (
    id TEXT PRIMARY KEY,
    watch TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_watch ON evidence (watch);
CREATE TABLE IF NOT EXISTS evidence_series (
    observation_id TEXT NOT NULL,
    check_name TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (observation_id, check_name, at_ms)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scrape_history (
    watch TEXT NOT NULL,
    check_name TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    points TEXT NOT NULL,
    PRIMARY KEY (watch, check_name)
);
";

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store(Arc::new(Mutex::new(conn))))
    }

    /// An in-memory store for unit tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store(Arc::new(Mutex::new(conn))))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One row's JSON body, deserialised: the one way every record is read back.
fn select_json<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Option<T>, StoreError> {
    let body: Option<String> = conn.query_row(sql, params, |r| r.get(0)).optional()?;
    Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
}

/// Every row's JSON body, deserialised, in the query's order.
fn select_all_json<T: DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params, |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for body in rows {
        out.push(serde_json::from_str(&body?)?);
    }
    Ok(out)
}

/// `synchronous=FULL` for the commits made while it lives, `NORMAL` again after.
struct Durable<'a>(&'a Connection);

impl<'a> Durable<'a> {
    fn new(conn: &'a Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(Durable(conn))
    }
}

impl Drop for Durable<'_> {
    fn drop(&mut self) {
        let _ = self.0.pragma_update(None, "synchronous", "NORMAL");
    }
}

#[cfg(test)]
mod tests;
