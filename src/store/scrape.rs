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

use super::{Store, StoreError};

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
        let mut conn = self.conn();
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
    pub fn save_scrape_history(
        &self,
        watch: &str,
        check: &str,
        fingerprint: &str,
        points: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE scrape_history SET points = ?4
             WHERE watch = ?1 AND check_name = ?2 AND fingerprint = ?3",
            params![watch, check, fingerprint, points],
        )?;
        Ok(n > 0)
    }

    /// Deletes the scrape history of every watch not in `watches` (removed from the config,
    /// while running or while backstop was down).
    pub fn retain_scrape_history(&self, watches: &[&str]) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM scrape_history WHERE watch NOT IN (SELECT value FROM json_each(?1))",
            [serde_json::to_string(watches)?],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(s: &Store) -> Vec<(String, String, String)> {
        let conn = s.conn();
        let mut stmt = conn
            .prepare(
                "SELECT watch, check_name, points FROM scrape_history ORDER BY watch, check_name",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap();
        rows.map(Result::unwrap).collect()
    }

    #[test]
    fn saved_points_are_found_again_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            let claimed = s
                .claim_scrape_history("shop", &[("errors", "f1"), ("latency", "f2")])
                .unwrap();
            assert_eq!(claimed, vec![Claimed::Empty, Claimed::Empty]);
            assert!(s
                .save_scrape_history("shop", "errors", "f1", "[1]")
                .unwrap());
            assert!(s
                .save_scrape_history("shop", "errors", "f1", "[1,2]")
                .unwrap());
        }
        let s = Store::open(dir.path()).unwrap();
        let claimed = s
            .claim_scrape_history("shop", &[("errors", "f1"), ("latency", "f2")])
            .unwrap();
        assert_eq!(
            claimed,
            vec![Claimed::Found("[1,2]".into()), Claimed::Empty],
            "one row per check, the last save wins; a claimed row never saved is empty"
        );
        assert_eq!(rows(&s).len(), 2);
    }

    #[test]
    fn another_fingerprint_discards_the_points_and_the_old_settings_cannot_write() {
        let s = Store::in_memory().unwrap();
        s.claim_scrape_history("shop", &[("errors", "old")])
            .unwrap();
        s.save_scrape_history("shop", "errors", "old", "stale")
            .unwrap();
        assert_eq!(
            s.claim_scrape_history("shop", &[("errors", "new")])
                .unwrap(),
            vec![Claimed::Changed]
        );
        assert_eq!(
            s.claim_scrape_history("shop", &[("errors", "new")])
                .unwrap(),
            vec![Claimed::Empty],
            "discarded, not kept aside"
        );
        assert!(!s
            .save_scrape_history("shop", "errors", "old", "late")
            .unwrap());
        assert_eq!(rows(&s)[0].2, "");
    }

    #[test]
    fn removed_checks_and_watches_are_purged_and_late_saves_do_not_return() {
        let s = Store::in_memory().unwrap();
        for w in ["shop", "cart"] {
            s.claim_scrape_history(w, &[("a", "f"), ("b", "f")])
                .unwrap();
            for c in ["a", "b"] {
                s.save_scrape_history(w, c, "f", "x").unwrap();
            }
        }
        // Check b removed from shop: its row goes when shop's collectors start again.
        let claimed = s.claim_scrape_history("shop", &[("a", "f")]).unwrap();
        assert_eq!(claimed, vec![Claimed::Found("x".into())]);
        // cart removed from the config; its collector saves once more while stopping.
        s.retain_scrape_history(&["shop"]).unwrap();
        assert!(!s.save_scrape_history("cart", "a", "f", "late").unwrap());
        assert!(!s.save_scrape_history("shop", "b", "f", "late").unwrap());
        assert_eq!(rows(&s), vec![("shop".into(), "a".into(), "x".into())]);
        // A watch without scrape checks keeps none.
        s.claim_scrape_history("shop", &[]).unwrap();
        assert!(rows(&s).is_empty());
    }

    #[test]
    fn the_body_is_stored_as_given_whatever_it_holds() {
        // Decoding (and surviving a garbled row) is the scrape check's business.
        let s = Store::in_memory().unwrap();
        s.claim_scrape_history("shop", &[("a", "f")]).unwrap();
        s.save_scrape_history("shop", "a", "f", "{not json")
            .unwrap();
        assert_eq!(
            s.claim_scrape_history("shop", &[("a", "f")]).unwrap(),
            vec![Claimed::Found("{not json".into())]
        );
    }
}
