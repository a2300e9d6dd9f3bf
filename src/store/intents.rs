//! Deploy intents (the `rollbacks` table: rollbacks and retries) and the notification outbox.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::rows::IntentRow;
use super::{select_all_json, select_json, Durable, Route, Store, StoreError};
use crate::model::DeployIntent;
use crate::sinks::Alert;

/// A notification recorded in the same transaction as the decision it announces, delivered
/// at least once: after a crash, undelivered items are sent again with the same `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxItem {
    /// Stable across redeliveries (observation or intent id plus the event): receivers
    /// deduplicate on it.
    pub id: String,
    pub sinks: Vec<String>,
    pub alert: Alert,
}

/// Inserts or updates an intent; one per condemned observation (the UNIQUE column). A copy
/// older than the stored one (a lower `rev`) changes nothing: progress is never rolled back.
pub(super) fn upsert_intent(conn: &Connection, i: &IntentRow) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO rollbacks (id, observation_id, watch, deployment_id, done, body)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(id) DO UPDATE SET deployment_id = excluded.deployment_id,
             done = excluded.done, body = excluded.body
         WHERE coalesce(json_extract(rollbacks.body, '$.rev'), 0)
               <= coalesce(json_extract(excluded.body, '$.rev'), 0)",
        params![
            i.id,
            i.observation_id,
            i.watch,
            i.deployment_id,
            i.done,
            i.body
        ],
    )?;
    Ok(())
}

impl Store {
    /// Persists an intent's progress with `synchronous=FULL`, before the deployer's next call.
    /// On PostgreSQL, under the fence of the intent's watch.
    pub fn save_intent(&self, i: &DeployIntent) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let row = IntentRow::of(i)?;
                let fence = pg.fence(&i.watch);
                return pg.call(move |c| super::pg::intents::save_intent(c, &row, &fence));
            }
        };
        let row = IntentRow::of(i)?;
        let _durable = Durable::new(&conn)?;
        upsert_intent(&conn, &row)
    }

    /// The most recent intent of a watch.
    pub fn latest_intent(&self, watch: &str) -> Result<Option<DeployIntent>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.to_string();
                return pg.call(move |c| super::pg::intents::latest_intent(c, &watch));
            }
        };
        select_json(
            &conn,
            "SELECT body FROM rollbacks WHERE watch = ?1 ORDER BY rowid DESC LIMIT 1",
            [watch],
        )
    }

    /// Whether an intent with this id belongs to the watch.
    pub fn has_intent(&self, watch: &str, id: &str) -> Result<bool, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let (watch, id) = (watch.to_string(), id.to_string());
                return pg.call(move |c| super::pg::intents::has_intent(c, &watch, &id));
            }
        };
        let n: i64 = conn.query_row(
            "SELECT count(*) FROM rollbacks WHERE watch = ?1 AND id = ?2",
            params![watch, id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Notifications recorded but not yet delivered, oldest first.
    pub fn undelivered(&self, watch: &str) -> Result<Vec<OutboxItem>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.to_string();
                return pg.call(move |c| super::pg::intents::undelivered(c, &watch));
            }
        };
        select_all_json(
            &conn,
            "SELECT body FROM outbox WHERE watch = ?1 AND delivered = 0 ORDER BY rowid",
            [watch],
        )
    }

    /// The newest `limit` notifications of a watch, newest first, each with whether it was
    /// delivered (or given up on); for the dashboard's timeline.
    pub fn notifications(
        &self,
        watch: &str,
        limit: usize,
    ) -> Result<Vec<(OutboxItem, bool)>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.to_string();
                return pg.call(move |c| super::pg::intents::notifications(c, &watch, limit));
            }
        };
        let mut stmt = conn.prepare(
            "SELECT body, delivered FROM outbox WHERE watch = ?1 ORDER BY rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![watch, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, delivered) = row?;
            out.push((serde_json::from_str(&body)?, delivered != 0));
        }
        Ok(out)
    }

    /// Marks a notification delivered (or given up on after the sink's retries). On
    /// PostgreSQL, under the fence of the row's watch.
    pub fn delivered(&self, id: &str) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let (id, fences) = (id.to_string(), pg.fence_lookup());
                return pg.call(move |c| super::pg::intents::delivered(c, &id, fences));
            }
        };
        conn.execute("UPDATE outbox SET delivered = 1 WHERE id = ?1", [id])?;
        Ok(())
    }
}
