//! Deduplication: webhook event ids and deployments already handled; small meta values.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

impl Store {
    /// Whether a webhook event id was already delivered to its watches.
    pub fn event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM seen_events WHERE id = ?1",
            [event_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// Records a webhook event id once its trigger was handed to every watch; false when it
    /// was already recorded (a concurrent redelivery).
    pub fn mark_event_seen(&self, event_id: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT OR IGNORE INTO seen_events (id, at) VALUES (?1, ?2)",
            params![event_id, Utc::now().to_rfc3339()],
        )?;
        Ok(n == 1)
    }

    pub fn mark_deployment_seen(&self, watch: &str, deployment_id: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO seen_deployments (watch, deployment_id) VALUES (?1, ?2)",
            params![watch, deployment_id],
        )?;
        Ok(())
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}
