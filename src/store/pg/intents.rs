//! Deploy intents and the notification outbox on PostgreSQL.

use postgres::{Client, Transaction};

use super::{begin, check_fence, Fence};
use crate::model::DeployIntent;
use crate::store::rows::IntentRow;
use crate::store::{OutboxItem, StoreError};

/// Inserts or updates an intent; a copy with a lower `rev` than the stored one changes
/// nothing (as on SQLite).
pub(super) fn upsert_intent(tx: &mut Transaction<'_>, i: &IntentRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO rollbacks (id, observation_id, watch, deployment_id, done, body)
         VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)
         ON CONFLICT (id) DO UPDATE SET deployment_id = excluded.deployment_id,
             done = excluded.done, body = excluded.body
         WHERE coalesce((rollbacks.body->>'rev')::bigint, 0)
               <= coalesce((excluded.body->>'rev')::bigint, 0)",
        &[
            &i.id,
            &i.observation_id,
            &i.watch,
            &i.deployment_id,
            &i.done,
            &i.body,
        ],
    )?;
    Ok(())
}

/// Persists an intent's progress durably, under its watch's fence.
pub(in crate::store) fn save_intent(
    client: &mut Client,
    i: &IntentRow,
    fence: &Fence,
) -> Result<(), StoreError> {
    let mut tx = begin(client, true)?;
    check_fence(&mut tx, &i.watch, fence)?;
    upsert_intent(&mut tx, i)?;
    tx.commit()?;
    Ok(())
}

pub(in crate::store) fn latest_intent(
    client: &mut Client,
    watch: &str,
) -> Result<Option<DeployIntent>, StoreError> {
    super::watches::one(
        client,
        "SELECT body::text FROM rollbacks WHERE watch = $1 ORDER BY seq DESC LIMIT 1",
        &[&watch],
    )
}

pub(in crate::store) fn has_intent(
    client: &mut Client,
    watch: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let row = client.query_opt(
        "SELECT 1 FROM rollbacks WHERE watch = $1 AND id = $2",
        &[&watch, &id],
    )?;
    Ok(row.is_some())
}

pub(in crate::store) fn undelivered(
    client: &mut Client,
    watch: &str,
) -> Result<Vec<OutboxItem>, StoreError> {
    let rows = client.query(
        "SELECT body::text FROM outbox WHERE watch = $1 AND NOT delivered ORDER BY seq",
        &[&watch],
    )?;
    rows.iter()
        .map(|r| Ok(serde_json::from_str(r.get::<_, &str>(0))?))
        .collect()
}

pub(in crate::store) fn notifications(
    client: &mut Client,
    watch: &str,
    limit: usize,
) -> Result<Vec<(OutboxItem, bool)>, StoreError> {
    let rows = client.query(
        "SELECT body::text, delivered FROM outbox WHERE watch = $1 ORDER BY seq DESC LIMIT $2",
        &[&watch, &(limit as i64)],
    )?;
    rows.iter()
        .map(|r| Ok((serde_json::from_str(r.get::<_, &str>(0))?, r.get(1))))
        .collect()
}

/// Marks a notification delivered, under the fence of the watch the row belongs to.
pub(in crate::store) fn delivered(
    client: &mut Client,
    id: &str,
    fences: impl FnOnce(&str) -> Fence,
) -> Result<(), StoreError> {
    let mut tx = begin(client, false)?;
    let Some(row) = tx.query_opt("SELECT watch FROM outbox WHERE id = $1", &[&id])? else {
        return Ok(());
    };
    let watch: String = row.get(0);
    check_fence(&mut tx, &watch, &fences(&watch))?;
    tx.execute("UPDATE outbox SET delivered = true WHERE id = $1", &[&id])?;
    tx.commit()?;
    Ok(())
}
