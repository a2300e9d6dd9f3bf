//! Deduplication: webhook event ids and deployments already handled; small meta values.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::{Route, Store, StoreError};

impl Store {
    /// Commits triggers to their watches' inboxes, and the event id (when given) as seen, in
    /// one transaction. `false` when the event was already seen (nothing is added). On
    /// PostgreSQL any node may enqueue (not fenced), and each watch is notified at commit.
    pub fn enqueue(
        &self,
        event_id: Option<&str>,
        triggers: &[(String, crate::engine::Inbound)],
    ) -> Result<bool, StoreError> {
        let mut conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let mut rows = Vec::with_capacity(triggers.len());
                for (watch, t) in triggers {
                    rows.push((watch.clone(), serde_json::to_string(t)?));
                }
                let event_id = event_id.map(String::from);
                return pg.call(move |c| super::pg::dedup::enqueue(c, event_id.as_deref(), &rows));
            }
        };
        // Accepted means durable, through a power loss too.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let result = enqueue_in(&mut conn, event_id, triggers);
        let _ = conn.pragma_update(None, "synchronous", "NORMAL");
        result
    }

    /// The watch's inbox rows not handled yet, oldest first, with their sequence numbers.
    pub fn inbox(&self, watch: &str) -> Result<Vec<(i64, crate::engine::Inbound)>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.to_string();
                let rows = pg.call(move |c| super::pg::dedup::inbox(c, &watch))?;
                return rows
                    .into_iter()
                    .map(|(seq, body)| Ok((seq, serde_json::from_str(&body)?)))
                    .collect();
            }
        };
        let mut stmt = conn.prepare("SELECT seq, body FROM inbox WHERE watch = ?1 ORDER BY seq")?;
        let rows = stmt.query_map([watch], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, body) = row?;
            out.push((seq, serde_json::from_str(&body)?));
        }
        Ok(out)
    }

    /// Drops the inbox of a watch that was removed from the config. On PostgreSQL, under the
    /// watch's fence.
    pub fn purge_inbox(&self, watch: &str) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let (watch, fence) = (watch.to_string(), pg.fence(watch));
                return pg.call(move |c| super::pg::dedup::purge_inbox(c, &watch, &fence));
            }
        };
        conn.execute("DELETE FROM inbox WHERE watch = ?1", [watch])?;
        Ok(())
    }

    /// Drops the inbox rows of every watch not in `watches` (a single node's configured
    /// watches): a request accepted for a watch that was removed before it was handled (while
    /// backstop was down, or by a reload racing the request) is never replayed onto a watch of
    /// that name added later.
    pub fn retain_inbox(&self, watches: &[&str]) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watches: Vec<String> = watches.iter().map(|w| w.to_string()).collect();
                return pg.call(move |c| super::pg::dedup::retain_inbox(c, &watches));
            }
        };
        conn.execute(
            "DELETE FROM inbox WHERE watch NOT IN (SELECT value FROM json_each(?1))",
            [serde_json::to_string(watches)?],
        )?;
        Ok(())
    }
}

/// Triggers waiting per watch before announcements are refused (503): a flood must not grow
/// the state database without bound.
pub const INBOX_LIMIT: i64 = 1000;

fn enqueue_in(
    conn: &mut rusqlite::Connection,
    event_id: Option<&str>,
    triggers: &[(String, crate::engine::Inbound)],
) -> Result<bool, StoreError> {
    let tx = conn.transaction()?;
    for (watch, _) in triggers {
        let n: i64 = tx.query_row(
            "SELECT count(*) FROM inbox WHERE watch = ?1",
            [watch],
            |r| r.get(0),
        )?;
        if n >= INBOX_LIMIT {
            return Err(StoreError::Full(watch.clone()));
        }
    }
    if let Some(id) = event_id {
        let n = tx.execute(
            "INSERT OR IGNORE INTO seen_events (id, at) VALUES (?1, ?2)",
            params![id, Utc::now().to_rfc3339()],
        )?;
        if n == 0 {
            return Ok(false);
        }
    }
    for (watch, t) in triggers {
        tx.execute(
            "INSERT INTO inbox (watch, body) VALUES (?1, ?2)",
            params![watch, serde_json::to_string(t)?],
        )?;
    }
    tx.commit()?;
    Ok(true)
}

impl Store {
    /// Whether a webhook event id was already delivered to its watches.
    pub fn event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let id = event_id.to_string();
                return pg.call(move |c| super::pg::dedup::event_seen(c, &id));
            }
        };
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM seen_events WHERE id = ?1",
            [event_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    pub fn mark_deployment_seen(&self, watch: &str, deployment_id: &str) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let (watch, dep) = (watch.to_string(), deployment_id.to_string());
                return pg.call(move |c| super::pg::dedup::mark_deployment_seen(c, &watch, &dep));
            }
        };
        conn.execute(
            "INSERT OR IGNORE INTO seen_deployments (watch, deployment_id) VALUES (?1, ?2)",
            params![watch, deployment_id],
        )?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let key = key.to_string();
                return pg.call(move |c| super::pg::dedup::meta(c, &key));
            }
        };
        Ok(conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let (key, value) = (key.to_string(), value.to_string());
                return pg.call(move |c| super::pg::dedup::set_meta(c, &key, &value));
            }
        };
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}
