//! Watch records, observations, history and evidence on PostgreSQL; a lifecycle transition
//! is one fenced transaction.

use postgres::{Client, Transaction};

use super::{begin, Fence};
use crate::evidence::Evidence;
use crate::judge::observation::{Sample, Verdict};
use crate::model::{ObservationRecord, WatchRecord};
use crate::store::rows::{EvidenceRows, Rows};
use crate::store::{HistoryEntry, StoreError};

/// Transitions per batch at most on PostgreSQL: each is a subtransaction, and a transaction
/// with more than 64 of them overflows every session's snapshot cache (a cost to the whole
/// server, replicas most of all).
pub(in crate::store) const MAX_BATCH: usize = 48;
/// A batch stops taking transitions once it has run this long: the rest are answered "not
/// written" and retried by their actors. It holds its watches' lease rows `FOR SHARE` until it
/// commits, which holds up this node's own lease renewal and another node's takeover.
const BATCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// Writes a batch of transitions in one transaction, each in its own savepoint under its
/// watch's fence: a transition that fails (fenced, a refused statement) is rolled back alone
/// and answered with its error; the others commit together. The transaction is durable when
/// any of them is. `Err` when the batch as a whole failed (the connection, the commit): then
/// nothing was written.
///
/// The fences are checked once, up front: the batch locks its watches' lease rows in one
/// statement, in watch order (as lease renewal does), so a batch and a renewal never wait on
/// each other in opposite orders (a deadlock that aborted the renewal).
pub(in crate::store) fn commit_batch(
    client: &mut Client,
    batch: &[Rows],
    fence: &dyn Fn(&str) -> Fence,
) -> Result<Vec<Result<(), StoreError>>, StoreError> {
    let started = std::time::Instant::now();
    let mut tx = begin(client, batch.iter().any(|r| r.durable))?;
    // A lease row held by a takeover or a renewal is waited for briefly; longer, the batch
    // fails and its actors retry.
    tx.batch_execute("SET LOCAL lock_timeout = '2s'")?;
    let mut watches: Vec<&str> = batch.iter().map(|r| r.watch.as_str()).collect();
    watches.sort_unstable();
    watches.dedup();
    let held: std::collections::HashMap<String, (String, i64)> = tx
        .query(
            "SELECT watch, owner, epoch FROM leases
             WHERE watch = ANY($1) AND owner IS NOT NULL AND expires_at > now()
             ORDER BY watch FOR SHARE",
            &[&watches],
        )?
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut results = Vec::with_capacity(batch.len());
    for rows in batch {
        if started.elapsed() > BATCH_BUDGET {
            results.push(Err(StoreError::Unavailable(
                "not written: the database is slow and the batch ran out of time".into(),
            )));
            continue;
        }
        // The writer's fence: this node, under the epoch the actor was started with.
        let mine = fence(&rows.watch).map(|(node, now)| (node, rows.epoch.unwrap_or(now)));
        if mine.is_none() || held.get(&rows.watch) != mine.as_ref() {
            results.push(Err(StoreError::Fenced {
                watch: rows.watch.clone(),
            }));
            continue;
        }
        let mut sp = tx.transaction()?;
        match write(&mut sp, rows) {
            Ok(()) => {
                sp.commit()?;
                results.push(Ok(()));
            }
            Err(e @ StoreError::Unavailable(_)) => return Err(e),
            Err(e) => {
                sp.rollback()?;
                results.push(Err(e));
            }
        }
    }
    tx.commit()?;
    Ok(results)
}

/// Writes one transition's rows inside the caller's transaction (its fence already checked).
fn write(tx: &mut Transaction<'_>, rows: &Rows) -> Result<(), StoreError> {
    for (o, verdict) in &rows.finished {
        tx.execute(
            "INSERT INTO observations (id, watch, deployment_id, active, body, verdict)
             VALUES ($1, $2, $3, false, $4::text::jsonb, $5::text::jsonb)
             ON CONFLICT (id) DO UPDATE SET active = false,
                 deployment_id = excluded.deployment_id, body = excluded.body,
                 verdict = excluded.verdict",
            &[&o.id, &o.watch, &o.deployment_id, &o.body, verdict],
        )?;
    }
    if let Some(body) = &rows.record {
        tx.execute(
            "INSERT INTO watches (name, body) VALUES ($1, $2::text::jsonb)
             ON CONFLICT (name) DO UPDATE SET body = excluded.body",
            &[&rows.watch, body],
        )?;
        tx.execute("DELETE FROM quarantine WHERE watch = $1", &[&rows.watch])?;
    }
    if let Some(o) = &rows.open {
        tx.execute(
            "INSERT INTO observations (id, watch, deployment_id, active, body)
             VALUES ($1, $2, $3, true, $4::text::jsonb)
             ON CONFLICT (id) DO UPDATE SET deployment_id = excluded.deployment_id,
                 body = excluded.body",
            &[&o.id, &o.watch, &o.deployment_id, &o.body],
        )?;
    }
    if let Some(i) = &rows.intent {
        super::intents::upsert_intent(tx, i)?;
    }
    for ev in &rows.evidence {
        write_evidence(tx, ev)?;
    }
    for (id, body) in &rows.outbox {
        tx.execute(
            "INSERT INTO outbox (id, watch, body, delivered) VALUES ($1, $2, $3::text::jsonb, false)
             ON CONFLICT (id) DO NOTHING",
            &[id, &rows.watch, body],
        )?;
    }
    if let Some(seq) = rows.inbox_done {
        tx.execute("DELETE FROM inbox WHERE seq = $1", &[&seq])?;
    }
    for dep in &rows.seen {
        tx.execute(
            "INSERT INTO seen_deployments (watch, deployment_id) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&rows.watch, dep],
        )?;
    }
    Ok(())
}

/// The document without its series, and the samples the series table lacks.
fn write_evidence(tx: &mut Transaction<'_>, ev: &EvidenceRows) -> Result<(), StoreError> {
    let EvidenceRows {
        id,
        watch,
        body,
        samples,
    } = ev;
    if !samples.is_empty() {
        let stmt = tx.prepare(
            "INSERT INTO evidence_series (observation_id, watch, check_name, at_ms, body)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )?;
        for (check, at_ms, sample) in samples {
            tx.execute(&stmt, &[id, watch, check, at_ms, sample])?;
        }
    }
    tx.execute(
        "INSERT INTO evidence (id, watch, body) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET body = excluded.body",
        &[id, watch, body],
    )?;
    Ok(())
}

/// One row's JSON body (selected as text), deserialised.
pub(super) fn one<T: serde::de::DeserializeOwned>(
    client: &mut Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Option<T>, StoreError> {
    let row = client.query_opt(sql, params)?;
    Ok(row
        .map(|r| serde_json::from_str(r.get::<_, &str>(0)))
        .transpose()?)
}

pub(in crate::store) fn load_watch(
    client: &mut Client,
    name: &str,
) -> Result<WatchRecord, StoreError> {
    let mut rec: WatchRecord = one(
        client,
        "SELECT body::text FROM watches WHERE name = $1",
        &[&name],
    )?
    .unwrap_or_default();
    rec.observation = one(
        client,
        "SELECT body::text FROM observations WHERE watch = $1 AND active
         ORDER BY seq DESC LIMIT 1",
        &[&name],
    )?;
    rec.intent = one(
        client,
        "SELECT body::text FROM rollbacks WHERE watch = $1 ORDER BY seq DESC LIMIT 1",
        &[&name],
    )?;
    for row in client.query(
        "SELECT release, reason FROM quarantine WHERE watch = $1",
        &[&name],
    )? {
        rec.quarantined.entry(row.get(0)).or_insert(row.get(1));
    }
    Ok(rec)
}

pub(in crate::store) fn latest_observation(
    client: &mut Client,
    watch: &str,
) -> Result<Option<ObservationRecord>, StoreError> {
    one(
        client,
        "SELECT body::text FROM observations WHERE watch = $1 ORDER BY seq DESC LIMIT 1",
        &[&watch],
    )
}

pub(in crate::store) fn deployment_known(
    client: &mut Client,
    watch: &str,
    deployment_id: &str,
) -> Result<bool, StoreError> {
    let row = client.query_one(
        "SELECT EXISTS (SELECT 1 FROM observations WHERE watch = $1 AND deployment_id = $2)
             OR EXISTS (SELECT 1 FROM rollbacks WHERE watch = $1 AND deployment_id = $2)
             OR EXISTS (SELECT 1 FROM seen_deployments WHERE watch = $1 AND deployment_id = $2)",
        &[&watch, &deployment_id],
    )?;
    Ok(row.get(0))
}

pub(in crate::store) fn evidence_body(
    client: &mut Client,
    id: &str,
) -> Result<Option<Evidence>, StoreError> {
    one(client, "SELECT body FROM evidence WHERE id = $1", &[&id])
}

/// The document with each check's series joined in, thinned (as on SQLite).
pub(in crate::store) fn evidence(
    client: &mut Client,
    id: &str,
) -> Result<Option<Evidence>, StoreError> {
    let Some(mut ev) = evidence_body(client, id)? else {
        return Ok(None);
    };
    let stmt = client.prepare(
        "SELECT body FROM evidence_series WHERE observation_id = $1 AND check_name = $2
         ORDER BY at_ms",
    )?;
    for c in ev.checks.iter_mut() {
        let rows = client.query(&stmt, &[&ev.id, &c.track.name])?;
        if rows.is_empty() {
            continue;
        }
        let samples = rows
            .iter()
            .map(|r| serde_json::from_str::<Sample>(r.get::<_, &str>(0)))
            .collect::<Result<Vec<_>, _>>()?;
        c.series = crate::series::downsample(
            samples,
            crate::series::MAX_SERIES,
            c.track.condemning.as_ref(),
        );
    }
    Ok(Some(ev))
}

/// Past observations, newest first; one query per shape so each uses its index.
pub(in crate::store) fn history(
    client: &mut Client,
    watch: Option<&str>,
    limit: usize,
) -> Result<Vec<HistoryEntry>, StoreError> {
    let limit = limit as i64;
    let rows = match watch {
        Some(w) => client.query(
            "SELECT body::text, verdict::text FROM observations WHERE watch = $1
             ORDER BY seq DESC LIMIT $2",
            &[&w, &limit],
        )?,
        None => client.query(
            "SELECT body::text, verdict::text FROM observations ORDER BY seq DESC LIMIT $1",
            &[&limit],
        )?,
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let obs: ObservationRecord = serde_json::from_str(row.get::<_, &str>(0))?;
        let verdict: Option<Verdict> = row
            .get::<_, Option<&str>>(1)
            .map(serde_json::from_str)
            .transpose()?;
        out.push(crate::store::watches::entry(obs, verdict));
    }
    Ok(out)
}
