//! The PostgreSQL backend: the same records as the SQLite one, in a database that several
//! nodes share, with leases and fences so that one node at a time writes for a watch.
//!
//! Durability mirrors SQLite's two levels: a durable commit runs with
//! `SET LOCAL synchronous_commit = on` (it returns once the WAL is flushed, like `FULL`), a
//! routine one with `off` (it survives a crash of backstop, and a server crash loses at most
//! the last moments of routine progress, like `NORMAL`).
//!
//! Fencing: every write an owner makes for a watch first checks, in the same transaction,
//! that the lease of the watch is still its own under the epoch it was granted
//! ([`check_fence`]), `FOR SHARE` so that a concurrent takeover waits for the write to commit.
//!
//! Modules: `pool` (threads and connections), `migrate` (versioned schema), `watches`,
//! `intents`, `dedup`, `scrape` (the records, as on SQLite), `fleet` (nodes and leases),
//! `listen` (inbox notifications).

pub(super) mod dedup;
pub(super) mod fleet;
pub(super) mod intents;
pub(super) mod listen;
mod migrate;
mod pool;
pub(super) mod scrape;
pub(super) mod watches;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use postgres::Transaction;

use super::StoreError;
use crate::secret::Secret;

pub use migrate::SCHEMA_VERSION;
#[cfg(test)]
pub(in crate::store) use pool::THREADS;

/// The channel `enqueue` notifies, with the watch as payload.
pub(super) const INBOX_CHANNEL: &str = "backstop_inbox";

/// The fence a node writes under for one watch: (node, epoch).
pub(super) type Fence = Option<(String, i64)>;

/// A connected PostgreSQL store.
pub(super) struct Pg {
    pool: pool::Pool,
    /// Kept to open the listener's own connection. Its `Debug` omits the password, but it is
    /// never printed anyway.
    settings: postgres::Config,
    /// Per watch, the fence this process writes under (set by the fleet manager).
    fences: Arc<Mutex<HashMap<String, (String, i64)>>>,
}

impl Pg {
    /// Starts the pool and brings the schema up to date (refusing a newer one).
    pub(super) fn open(url: &Secret) -> Result<Self, StoreError> {
        let settings = pool::settings(url.expose())?;
        let pg = Pg {
            pool: pool::Pool::start(settings.clone()),
            settings,
            fences: Arc::default(),
        };
        pg.call(migrate::migrate)?;
        Ok(pg)
    }

    /// Runs `f` with a connection on a pool thread.
    pub(super) fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut postgres::Client) -> Result<T, StoreError> + Send + 'static,
    {
        self.pool.call(f)
    }

    /// Like [`Pg::call`], waiting for the real outcome however long it takes (the writer).
    pub(super) fn call_to_the_end<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut postgres::Client) -> Result<T, StoreError> + Send + 'static,
    {
        self.pool.call_to_the_end(f)
    }

    /// The fence set for `watch`, to be checked inside the write's transaction.
    pub(super) fn fence(&self, watch: &str) -> Fence {
        self.fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(watch)
            .cloned()
    }

    /// Looks fences up from a pool thread, for writes that learn their watch from the row.
    pub(super) fn fence_lookup(&self) -> impl Fn(&str) -> Fence + Send + 'static {
        let fences = Arc::clone(&self.fences);
        move |watch| {
            fences
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(watch)
                .cloned()
        }
    }

    pub(super) fn set_fence(&self, node: &str, watch: &str, epoch: Option<i64>) {
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        match epoch {
            Some(epoch) => fences.insert(watch.to_string(), (node.to_string(), epoch)),
            None => fences.remove(watch),
        };
    }
}

/// Starts a transaction at the given durability (see the module's doc).
pub(super) fn begin(
    client: &mut postgres::Client,
    durable: bool,
) -> Result<Transaction<'_>, StoreError> {
    let mut tx = client.transaction()?;
    tx.batch_execute(if durable {
        "SET LOCAL synchronous_commit = on"
    } else {
        "SET LOCAL synchronous_commit = off"
    })?;
    Ok(tx)
}

/// Refuses the write unless this node still holds the lease of `watch` under its epoch.
pub(super) fn check_fence(
    tx: &mut Transaction<'_>,
    watch: &str,
    fence: &Fence,
) -> Result<(), StoreError> {
    let fenced = || StoreError::Fenced {
        watch: watch.to_string(),
    };
    let Some((node, epoch)) = fence else {
        return Err(fenced());
    };
    let held = tx.query_opt(
        "SELECT 1 FROM leases
         WHERE watch = $1 AND owner = $2 AND epoch = $3 AND expires_at > now()
         FOR SHARE",
        &[&watch, node, epoch],
    )?;
    held.map(|_| ()).ok_or_else(fenced)
}
