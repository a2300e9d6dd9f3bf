//! Scrape checks' history (the `scrape_history` table): one row per (watch, check) with the
//! encoded points and the fingerprint of the settings they were scraped with.
//!
//! The body is opaque text here: its encoding belongs to the scrape check
//! (`checks::scrape::record`), which reads it leniently (a row that does not decode is
//! discarded, never fatal). A collector claims its row when it starts and then only updates
//! it, one small UPDATE per save period, and only while the fingerprint is its own: a save
//! that arrives after its watch was removed (the collector was still stopping when the rows
//! were purged) finds no row and puts none back.

use rusqlite::{params, OptionalExtension};

use super::{Route, Store, StoreError};

/// What a collector found when it claimed its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// Points stored under the same fingerprint: continue from them.
    Found(String),
    /// Nothing stored: a new check (or one never saved).
    Empty,
    /// Points stored under another fingerprint (the check now scrapes something else): they
    /// were discarded.
    Changed,
}

/// The body of a claimed row until the first save.
const EMPTY: &str = "";

impl Store {
    /// Claims the rows of a watch's scrape checks, given as (check, fingerprint), in one
    /// transaction: rows of checks no longer listed are deleted, rows under another
    /// fingerprint are emptied, missing ones are created. Answers in the order given.
    pub fn claim_scrape_history(
        &self,
        watch: &str,
        checks: &[(&str, &str)],
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.to_string();
                let checks: Vec<(String, String)> = checks
                    .iter()
                    .map(|(c, f)| (c.to_string(), f.to_string()))
                    .collect();
                return pg.call(move |c| super::pg::scrape::claim(c, &watch, &checks));
            }
        };
        let tx = conn.transaction()?;
        let names = serde_json::to_string(&checks.iter().map(|(c, _)| c).collect::<Vec<_>>())?;
        tx.execute(
            "DELETE FROM scrape_history WHERE watch = ?1
             AND check_name NOT IN (SELECT value FROM json_each(?2))",
            params![watch, names],
        )?;
        let mut out = Vec::with_capacity(checks.len());
        for (check, fingerprint) in checks {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT fingerprint, points FROM scrape_history
                     WHERE watch = ?1 AND check_name = ?2",
                    params![watch, check],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let claimed = match row {
                Some((f, points)) if f == *fingerprint => {
                    out.push(if points.is_empty() {
                        Claimed::Empty
                    } else {
                        Claimed::Found(points)
                    });
                    continue;
                }
                Some(_) => Claimed::Changed,
                None => Claimed::Empty,
            };
            tx.execute(
                "INSERT INTO scrape_history (watch, check_name, fingerprint, points)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(watch, check_name) DO UPDATE
                 SET fingerprint = excluded.fingerprint, points = excluded.points",
                params![watch, check, fingerprint, EMPTY],
            )?;
            out.push(claimed);
        }
        tx.commit()?;
        Ok(out)
    }

    /// Replaces the stored points of a claimed row. `Ok(false)`: the row is gone (its watch
    /// or check was removed) or was claimed under another fingerprint; nothing is written.
    /// On PostgreSQL, under the watch's fence.
    pub fn save_scrape_history(
        &self,
        watch: &str,
        check: &str,
        fingerprint: &str,
        points: &str,
    ) -> Result<bool, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let fence = pg.fence(watch);
                let row = (
                    watch.into(),
                    check.into(),
                    fingerprint.into(),
                    points.into(),
                );
                return pg.call(move |c| super::pg::scrape::save(c, &row, &fence));
            }
        };
        let n = conn.execute(
            "UPDATE scrape_history SET points = ?4
             WHERE watch = ?1 AND check_name = ?2 AND fingerprint = ?3",
            params![watch, check, fingerprint, points],
        )?;
        Ok(n > 0)
    }

    /// Deletes the scrape history of every watch not in `watches` (removed from the config,
    /// while running or while backstop was down).
    pub fn retain_scrape_history(&self, watches: &[&str]) -> Result<(), StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watches: Vec<String> = watches.iter().map(|w| w.to_string()).collect();
                return pg.call(move |c| super::pg::scrape::retain(c, &watches));
            }
        };
        conn.execute(
            "DELETE FROM scrape_history WHERE watch NOT IN (SELECT value FROM json_each(?1))",
            [serde_json::to_string(watches)?],
        )?;
        Ok(())
    }
}
