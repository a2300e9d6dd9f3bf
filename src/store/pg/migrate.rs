//! Versioned schema: SQL files embedded in the binary, applied in order at start.
//!
//! Several nodes may start together against one database: the whole check-and-apply runs in
//! one transaction holding a transaction-scoped advisory lock, so one node migrates and the
//! others find the work done. A database migrated by a newer backstop is refused
//! ([`StoreError::SchemaTooNew`]) rather than written with rules this binary does not know.

use crate::store::StoreError;

/// The migrations, in order: version `i + 1` is `MIGRATIONS[i]`. Append only.
const MIGRATIONS: &[&str] = &[include_str!("migrations/0001_init.sql")];

/// The newest schema version this binary knows.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// The advisory lock key migrations serialise on ("backstop" in ASCII).
const LOCK_KEY: i64 = 0x6261_636b_7374_6f70;

pub(super) fn migrate(client: &mut postgres::Client) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    // Not a NOTICE at every start that schema_version already exists.
    tx.batch_execute("SET LOCAL client_min_messages = warning")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )?;
    let found: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])?
        .get(0);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in (1..).zip(MIGRATIONS).skip(found as usize) {
        tx.batch_execute(sql)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&version],
        )?;
        tracing::info!(version, "state database migrated");
    }
    tx.commit()?;
    Ok(())
}
