//! The fleet's SQL: node heartbeats and leases. Every time is the database's `now()`.

use std::time::Duration;

use postgres::Client;

use super::begin;
use crate::store::fleet::{acquire, Acquired, Current, LeaseRow, NodeRow};
use crate::store::StoreError;

/// A lease length as whole microseconds, multiplied by `interval '1 microsecond'` in SQL.
fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(in crate::store) fn heartbeat(
    client: &mut Client,
    node: &str,
    watches: &[String],
    lease: Duration,
) -> Result<Vec<NodeRow>, StoreError> {
    let mut tx = begin(client, false)?;
    tx.execute(
        "INSERT INTO nodes (name, watches, heartbeat_at) VALUES ($1, $2, now())
         ON CONFLICT (name) DO UPDATE SET watches = excluded.watches, heartbeat_at = now()",
        &[&node, &watches],
    )?;
    let rows = tx.query(
        "SELECT name, watches, heartbeat_at,
                heartbeat_at > now() - $1::bigint * interval '1 microsecond'
         FROM nodes ORDER BY name",
        &[&micros(lease)],
    )?;
    tx.commit()?;
    Ok(rows
        .iter()
        .map(|r| NodeRow {
            name: r.get(0),
            watches: r.get(1),
            heartbeat_at: r.get(2),
            alive: r.get(3),
        })
        .collect())
}

pub(in crate::store) fn acquire_lease(
    client: &mut Client,
    watch: &str,
    node: &str,
    lease: Duration,
) -> Result<Acquired, StoreError> {
    let mut tx = begin(client, true)?;
    // A row to lock: two nodes asking for a new watch at once both insert, one wins, and
    // both then decide on the same locked row.
    tx.execute(
        "INSERT INTO leases (watch, owner, epoch, expires_at) VALUES ($1, NULL, 0, '-infinity')
         ON CONFLICT (watch) DO NOTHING",
        &[&watch],
    )?;
    let row = tx.query_one(
        "SELECT owner, epoch, expires_at > now(), expires_at = '-infinity'
         FROM leases WHERE watch = $1 FOR UPDATE",
        &[&watch],
    )?;
    let fresh: bool = row.get(3);
    let current = Current {
        owner: row.get(0),
        epoch: row.get(1),
        live: row.get(2),
    };
    let decision = acquire((!fresh).then_some(&current), node);
    if let Acquired::Got { epoch, .. } = &decision {
        tx.execute(
            "UPDATE leases SET owner = $2, epoch = $3,
                 expires_at = now() + $4::bigint * interval '1 microsecond'
             WHERE watch = $1",
            &[&watch, &node, epoch, &micros(lease)],
        )?;
    }
    tx.commit()?;
    Ok(decision)
}

pub(in crate::store) fn renew_leases(
    client: &mut Client,
    node: &str,
    held: &[(String, i64)],
    lease: Duration,
) -> Result<Vec<String>, StoreError> {
    let (watches, epochs): (Vec<&str>, Vec<i64>) =
        held.iter().map(|(w, e)| (w.as_str(), *e)).unzip();
    // Durable: a renewal lost to a server crash would leave this node acting (by its own
    // clock) past the expiry the others see.
    let mut tx = begin(client, true)?;
    // Row locks in watch order, as the store writer's batches take them (FOR SHARE): an UPDATE
    // over many rows locks them in no defined order, and against a batch holding some of them
    // that deadlocked, aborting the renewal.
    tx.execute(
        "SELECT 1 FROM leases WHERE watch = ANY($2) AND owner = $1 ORDER BY watch FOR UPDATE",
        &[&node, &watches],
    )?;
    let rows = tx.query(
        "UPDATE leases SET expires_at = now() + $4::bigint * interval '1 microsecond'
         FROM unnest($2::text[], $3::bigint[]) AS held(watch, epoch)
         WHERE leases.watch = held.watch AND leases.epoch = held.epoch AND leases.owner = $1
         RETURNING leases.watch",
        &[&node, &watches, &epochs, &micros(lease)],
    )?;
    tx.commit()?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

pub(in crate::store) fn release_lease(
    client: &mut Client,
    watch: &str,
    node: &str,
    epoch: i64,
) -> Result<(), StoreError> {
    let mut tx = begin(client, true)?;
    // The owner is cleared too: the next node takes a lease given up, not one taken over (its
    // `takeover_from` is None), so a handover or a clean shutdown is not logged and counted in
    // `backstop_lease_takeovers_total` as if this node had died. The epoch is kept: the next
    // tenure still gets a higher one.
    tx.execute(
        "UPDATE leases SET expires_at = now() - interval '1 microsecond', owner = NULL
         WHERE watch = $1 AND owner = $2 AND epoch = $3",
        &[&watch, &node, &epoch],
    )?;
    tx.commit()?;
    Ok(())
}

pub(in crate::store) fn retire_node(client: &mut Client, node: &str) -> Result<(), StoreError> {
    client.execute("DELETE FROM nodes WHERE name = $1", &[&node])?;
    Ok(())
}

pub(in crate::store) fn leases(client: &mut Client) -> Result<Vec<LeaseRow>, StoreError> {
    let rows = client.query(
        "SELECT watch, owner, epoch, expires_at, expires_at > now(),
                GREATEST(extract(epoch FROM expires_at - now()) * 1000000, 0)::bigint
         FROM leases WHERE expires_at <> '-infinity' ORDER BY watch",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| LeaseRow {
            watch: r.get(0),
            owner: r.get(1),
            epoch: r.get(2),
            expires_at: r.get(3),
            live: r.get(4),
            expires_in: std::time::Duration::from_micros(
                u64::try_from(r.get::<_, i64>(5)).unwrap_or(0),
            ),
        })
        .collect())
}
