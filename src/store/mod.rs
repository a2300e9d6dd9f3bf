//! Durable state, in SQLite (one node) or PostgreSQL (a fleet sharing one database): the
//! only module that speaks SQL. One [`Store`] type, the same calls on either backend.
//!
//! What must survive a `kill -9`: each watch's record (state, last verified release,
//! quarantine), the observation in progress (so it resumes), deploy intents (written *before*
//! the deploy call, so a restart never posts twice), the outbox of notifications, and the ids
//! of webhook events and deployments already handled. Records are stored as JSON bodies beside
//! the columns queries need, so adding a field does not need a migration.
//!
//! Every lifecycle transition is atomic ([`Store::commit`], or [`Store::submit`] from the
//! daemon's actors): the watch record, its observation, its intent, closed observations,
//! evidence and outbox rows land together or not at all. The actors' transitions are written
//! by one thread (`writer`), in batches that share a transaction, each in its own savepoint.
//!
//! The journal is WAL with `synchronous=NORMAL`: every commit survives a crash of the process,
//! and observation progress (written every few rounds by every watch) costs no fsync.
//! Commits that exactly-once rests on (intents, outbox) are made with `synchronous=FULL` so
//! they survive a power loss too. (With FULL for everything, 3,400 watches at 1 s spent their
//! time in fsync and rounds slipped by 300 ms: bench/RESULTS.md.)
//!
//! Scrape checks' recent scrapes are kept too, so a restart keeps their baselines; they are
//! saved periodically (not every commit), so a crash loses the last save period of them.
//!
//! On PostgreSQL (`[state] url`) the same records live in a versioned schema, and writes for
//! a watch are fenced by its lease (see `pg`, and `fleet` for the leases).
//!
//! Modules: `watches` (records, observations, history, evidence), `intents` (deploy intents
//! and the notification outbox), `dedup` (webhook events, seen deployments, meta), `scrape`
//! (scrape checks' history): each holds the SQLite SQL and hands PostgreSQL calls to its
//! twin under `pg`. `fleet`: nodes, leases and fences (PostgreSQL only).

mod dedup;
pub mod fleet;
mod intents;
mod pg;
mod rows;
mod scrape;
mod watches;
mod writer;

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Params};
use serde::de::DeserializeOwned;

pub use fleet::{Acquired, LeaseRow, NodeRow};
pub use intents::OutboxItem;
pub use pg::SCHEMA_VERSION;
pub use scrape::Claimed;
pub use watches::{Commit, HistoryEntry};
pub use writer::Stats as WriterStats;

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
    /// A statement failed on PostgreSQL (the connection is fine).
    #[error("state database (PostgreSQL): {0}")]
    Pg(postgres::Error),
    /// PostgreSQL cannot be reached, or the connection was lost during the call: the call
    /// did not happen (or its transaction rolled back); a later one reconnects.
    #[error("state database unavailable: {0}")]
    Unavailable(String),
    #[error("state database settings: {0}")]
    Config(String),
    #[error("the state database has schema version {found}, newer than this backstop knows ({supported}): upgrade backstop")]
    SchemaTooNew { found: i32, supported: i32 },
    /// The write was refused: another node took the lease of the watch (or this node never
    /// held it). Nothing was written.
    #[error("this node no longer holds the lease of watch {watch}")]
    Fenced { watch: String },
    #[error("needs [state] url (PostgreSQL)")]
    NotShared,
    #[error("state record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the inbox of watch {0:?} is full: too many deployments waiting to be handled")]
    Full(String),
    /// The transaction this write was batched with failed as a whole: nothing was written.
    #[error("the batched transaction failed: {0}")]
    Batch(String),
}

impl From<postgres::Error> for StoreError {
    /// A lost connection is [`StoreError::Unavailable`]; anything else is the statement's.
    fn from(e: postgres::Error) -> Self {
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        // Connection exceptions (08) and operator intervention (57P: the server shutting down
        // or terminating the backend) end the session, not just the statement.
        let lost = e
            .code()
            .is_some_and(|c| c.code().starts_with("08") || c.code().starts_with("57P"));
        if e.is_closed() || io || lost {
            StoreError::Unavailable(e.to_string())
        } else {
            StoreError::Pg(e)
        }
    }
}

/// Cheap-to-clone handle on the database. Calls are short and synchronous; the SQLite lock is
/// never held across `.await`, and PostgreSQL calls run on the backend's own threads.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// The thread that writes the actors' transitions in batches ([`Store::submit`]).
    writer: Arc<writer::Writer>,
}

/// The two backends. Closed set.
#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<Connection>>),
    Postgres(Arc<pg::Pg>),
}

impl Backend {
    /// See [`Store::write_batch`].
    fn write_batch(&self, batch: Vec<rows::Rows>) -> Vec<Result<(), StoreError>> {
        let n = batch.len();
        let done = match self {
            Backend::Sqlite(c) => {
                let mut conn = c.lock().unwrap_or_else(|e| e.into_inner());
                sqlite_batch(&mut conn, &batch)
            }
            Backend::Postgres(pg) => {
                let fence = pg.fence_lookup();
                pg.call_to_the_end(move |c| pg::watches::commit_batch(c, &batch, &fence))
            }
        };
        done.unwrap_or_else(|e| writer::whole_batch_failed(n, e))
    }

    /// Transitions per transaction at most (see `writer` and `pg::watches::MAX_BATCH`).
    fn max_batch(&self) -> usize {
        match self {
            Backend::Sqlite(_) => writer::MAX_BATCH,
            Backend::Postgres(_) => pg::watches::MAX_BATCH,
        }
    }
}

/// The SQLite half of [`Backend::write_batch`]: `synchronous=FULL` for the batch when any
/// transition in it is durable.
fn sqlite_batch(
    conn: &mut Connection,
    batch: &[rows::Rows],
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let durable = batch.iter().any(|r| r.durable);
    if durable {
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    let result = (|| {
        let mut tx = conn.transaction()?;
        let mut results = Vec::with_capacity(batch.len());
        for rows in batch {
            let sp = tx.savepoint()?;
            match watches::write(&sp, rows) {
                Ok(()) => {
                    sp.commit()?;
                    results.push(Ok(()));
                }
                // A row this transition's statements broke (a constraint, a trigger's
                // RAISE(ABORT)): dropping the savepoint rolls its writes back alone.
                Err(e) if refused_row(&e) => results.push(Err(e)),
                // Anything else (a full disk, an I/O error, no memory, a lock held elsewhere)
                // may have rolled the whole transaction back already: a later savepoint would
                // then begin (and its release commit) a transaction of its own. Nothing of
                // the batch is kept; every transition is answered with the cause.
                Err(e) => return Err(e),
            }
        }
        tx.commit()?;
        Ok(results)
    })();
    if durable {
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
    }
    result
}

/// Whether a SQLite error concerns one transition's rows only (the transaction is intact).
fn refused_row(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Sql(rusqlite::Error::SqliteFailure(f, _))
            if f.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

/// Where one call goes: the locked SQLite connection, or the PostgreSQL backend.
enum Route<'a> {
    Sqlite(std::sync::MutexGuard<'a, Connection>),
    Postgres(&'a pg::Pg),
}

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
    /// Runs `f` on this store on the async runtime's blocking pool, for the watch actors.
    /// Every store call waits for the store's one connection (SQLite), which the writer
    /// thread holds for a whole batch's transaction, fsyncs included; made on one of the
    /// runtime's two worker threads, that wait stalled every task queued on the worker. Rounds
    /// slipped, and a probe whose answer sat unread on the stalled worker timed out as if the
    /// application were down, unseen by the lag probe running on the other worker: the
    /// collapse of the scale benchmark past 3,400 watches (bench/RESULTS.md).
    pub async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        // At most a quarter of the blocking pool: thousands of watches starting (or taken over
        // by a fleet node) queue here, not ahead of a lease renewal or the API's enqueues.
        static READS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(16);
        let _slot = READS.acquire().await;
        let store = self.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .unwrap_or_else(|e| {
                Err(StoreError::Unavailable(format!(
                    "a store call on the blocking pool failed: {e}"
                )))
            })
    }

    /// Runs a store call that must stay synchronous where it is (a deploy intent's progress,
    /// saved inside the deployer protocol's synchronous callback right before the deploy call
    /// it gates; a notification marked delivered from a sink's callback), telling a
    /// multi-thread runtime first that this thread will block, so the tasks queued on this
    /// worker move to another one instead of waiting for the disk (and for the writer's
    /// batch holding the connection) with it. Anywhere else (a current-thread runtime, a
    /// blocking-pool thread, no runtime) it just runs.
    pub fn in_place<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| f(self))
            }
            _ => f(self),
        }
    }
}

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
        Store::sqlite(conn)
    }

    /// The store `[state]` configures: PostgreSQL when it has a `url`, else SQLite in `dir`.
    pub fn from_config(state: &crate::config::StateConfig) -> Result<Self, StoreError> {
        match &state.url {
            Some(url) => Store::open_postgres(url),
            None => Store::open(&state.dir),
        }
    }

    /// Connects to PostgreSQL and migrates its schema; refuses a schema newer than this
    /// binary ([`StoreError::SchemaTooNew`]). Never call it expecting a quick answer from a
    /// down server: it waits for the first connection (bounded).
    pub fn open_postgres(url: &crate::secret::Secret) -> Result<Self, StoreError> {
        Store::with_writer(Backend::Postgres(Arc::new(pg::Pg::open(url)?)))
    }

    /// An in-memory store for unit tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Store::sqlite(conn)
    }

    fn sqlite(conn: Connection) -> Result<Self, StoreError> {
        Store::with_writer(Backend::Sqlite(Arc::new(Mutex::new(conn))))
    }

    fn with_writer(backend: Backend) -> Result<Self, StoreError> {
        Ok(Store {
            writer: Arc::new(writer::Writer::start(backend.clone())?),
            backend,
        })
    }

    /// The writer's metrics, for the daemon's registry.
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.stats.clone()
    }

    /// Writes transitions in one transaction, each in its own savepoint (see `writer`): one
    /// answer per transition, in order.
    fn write_batch(&self, batch: Vec<rows::Rows>) -> Vec<Result<(), StoreError>> {
        self.backend.write_batch(batch)
    }

    /// Where a call goes: each public method runs its SQLite SQL on the locked connection or
    /// hands the call to its PostgreSQL twin.
    fn route(&self) -> Route<'_> {
        match &self.backend {
            Backend::Sqlite(c) => Route::Sqlite(c.lock().unwrap_or_else(|e| e.into_inner())),
            Backend::Postgres(pg) => Route::Postgres(pg),
        }
    }

    /// The SQLite connection (tests reaching under the API).
    #[cfg(test)]
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(_) => panic!("not a SQLite store"),
        }
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
