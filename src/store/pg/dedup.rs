//! The inbox, webhook event ids, seen deployments and meta values on PostgreSQL.
//!
//! The inbox is written by any node (whichever received the webhook or announcement), so
//! `enqueue` is not fenced; it notifies [`super::INBOX_CHANNEL`] with each watch, in the same
//! transaction, so the notification fires exactly when the triggers are visible.

use postgres::Client;

use super::{begin, check_fence, Fence, INBOX_CHANNEL};
use crate::store::dedup::INBOX_LIMIT;
use crate::store::StoreError;

/// Triggers serialised on the caller's thread: (watch, body).
pub(in crate::store) type Triggers = Vec<(String, String)>;

pub(in crate::store) fn enqueue(
    client: &mut Client,
    event_id: Option<&str>,
    triggers: &Triggers,
) -> Result<bool, StoreError> {
    // Accepted means durable.
    let mut tx = begin(client, true)?;
    for (watch, _) in triggers {
        let n: i64 = tx
            .query_one(
                "SELECT count(*) FROM (SELECT 1 FROM inbox WHERE watch = $1 LIMIT $2) AS waiting",
                &[watch, &INBOX_LIMIT],
            )?
            .get(0);
        if n >= INBOX_LIMIT {
            return Err(StoreError::Full(watch.clone()));
        }
    }
    if let Some(id) = event_id {
        let n = tx.execute(
            "INSERT INTO seen_events (id, at) VALUES ($1, now()) ON CONFLICT DO NOTHING",
            &[&id],
        )?;
        if n == 0 {
            return Ok(false);
        }
    }
    for (watch, body) in triggers {
        tx.execute(
            "INSERT INTO inbox (watch, body) VALUES ($1, $2::text::jsonb)",
            &[watch, body],
        )?;
    }
    let mut watches: Vec<&String> = triggers.iter().map(|(w, _)| w).collect();
    watches.sort();
    watches.dedup();
    for watch in watches {
        tx.execute("SELECT pg_notify($1, $2)", &[&INBOX_CHANNEL, watch])?;
    }
    tx.commit()?;
    Ok(true)
}

/// (seq, trigger body) of the watch's inbox, oldest first.
pub(in crate::store) fn inbox(
    client: &mut Client,
    watch: &str,
) -> Result<Vec<(i64, String)>, StoreError> {
    let rows = client.query(
        "SELECT seq, body::text FROM inbox WHERE watch = $1 ORDER BY seq",
        &[&watch],
    )?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

pub(in crate::store) fn purge_inbox(
    client: &mut Client,
    watch: &str,
    fence: &Fence,
) -> Result<(), StoreError> {
    let mut tx = begin(client, false)?;
    check_fence(&mut tx, watch, fence)?;
    tx.execute("DELETE FROM inbox WHERE watch = $1", &[&watch])?;
    tx.commit()?;
    Ok(())
}

/// See [`crate::store::Store::retain_inbox`]; a single node's only (no fence: no leases).
pub(in crate::store) fn retain_inbox(
    client: &mut Client,
    watches: &[String],
) -> Result<(), StoreError> {
    client.execute("DELETE FROM inbox WHERE NOT (watch = ANY($1))", &[&watches])?;
    Ok(())
}

pub(in crate::store) fn event_seen(client: &mut Client, id: &str) -> Result<bool, StoreError> {
    Ok(client
        .query_opt("SELECT 1 FROM seen_events WHERE id = $1", &[&id])?
        .is_some())
}

pub(in crate::store) fn mark_deployment_seen(
    client: &mut Client,
    watch: &str,
    deployment_id: &str,
) -> Result<(), StoreError> {
    client.execute(
        "INSERT INTO seen_deployments (watch, deployment_id) VALUES ($1, $2)
         ON CONFLICT DO NOTHING",
        &[&watch, &deployment_id],
    )?;
    Ok(())
}

pub(in crate::store) fn meta(client: &mut Client, key: &str) -> Result<Option<String>, StoreError> {
    Ok(client
        .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])?
        .map(|r| r.get(0)))
}

pub(in crate::store) fn set_meta(
    client: &mut Client,
    key: &str,
    value: &str,
) -> Result<(), StoreError> {
    client.execute(
        "INSERT INTO meta (key, value) VALUES ($1, $2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[&key, &value],
    )?;
    Ok(())
}
