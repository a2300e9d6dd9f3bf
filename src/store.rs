//! Durable state in SQLite: the only module that speaks SQL.
//!
//! What must survive a `kill -9`: the observation in progress (so it resumes), each watch's
//! last verified release, the quarantine of condemned releases, rollback intents (written
//! *before* the deploy call, so a restart never posts twice), and the ids of webhook events and
//! deployments already handled. Records are stored as JSON bodies beside the columns queries
//! need, so adding a field does not need a migration. The journal is WAL with
//! `synchronous=NORMAL`: every commit survives a crash of the process (`kill -9`), and
//! observation progress — written every round by every watch — costs no fsync. Deploy intents,
//! the writes exactly-once rests on, are committed with `synchronous=FULL` so they survive a
//! power loss too. (With FULL for everything, 3,400 watches at 1 s spent their time in fsync
//! and rounds slipped by 300 ms: bench/RESULTS.md.)

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::judge::observation::{Tracker, Verdict};
use crate::status::WatchState;

/// Database file name inside `[state] dir`.
pub const DB_FILE: &str = "backstop.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("state database: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("state record is corrupt: {0}")]
    Corrupt(#[from] serde_json::Error),
}

/// Whether an observation follows an ordinary deployment or one of backstop's own actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservationKind {
    Deployment,
    /// Never rolled back again: a condemned rollback means a human is needed.
    Rollback,
    /// A roll-over (the same release redeployed); if condemned, the retry's `then` applies.
    Retry,
}

impl ObservationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObservationKind::Deployment => "deployment",
            ObservationKind::Rollback => "rollback",
            ObservationKind::Retry => "retry",
        }
    }
}

/// How backstop learned of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Announce,
    Webhook,
    Poll,
    Rollback,
    Retry,
}

impl Source {
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Announce => "announce",
            Source::Webhook => "webhook",
            Source::Poll => "poll",
            Source::Rollback => "rollback",
            Source::Retry => "retry",
        }
    }
}

/// An observation in progress, persisted after every round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationRecord {
    pub id: String,
    pub watch: String,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    pub kind: ObservationKind,
    pub source: Source,
    pub deployed_at: DateTime<Utc>,
    pub judging_from: DateTime<Utc>,
    pub window_ends: DateTime<Utc>,
    /// false when the release is marked as not safe to roll back from; None when unknown.
    #[serde(default)]
    pub rollback_safe: Option<bool>,
    pub tracker: Tracker,
}

/// One line of `GET /v1/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub id: String,
    pub watch: String,
    pub release: String,
    pub kind: String,
    pub deployed_at: DateTime<Utc>,
    /// verified, condemned, inconclusive, superseded; None while observing.
    pub verdict: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub action: Option<String>,
}

/// Progress of a rollback intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackState {
    /// Decided and persisted; the deployment may or may not exist yet.
    Pending,
    /// The deployer accepted the deployment; its task is being followed.
    Created,
    Succeeded,
    Failed,
}

/// What an automatic deploy call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Deploy the last verified release.
    #[default]
    Rollback,
    /// Roll over: deploy the condemned release again.
    Retry,
}

impl ActionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Rollback => "rollback",
            ActionKind::Retry => "retry",
        }
    }
}

/// A deploy intent (rollback or retry): one per condemned observation (a UNIQUE column
/// enforces it), persisted before any deploy call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackRecord {
    pub id: String,
    pub observation_id: String,
    pub watch: String,
    #[serde(default)]
    pub kind: ActionKind,
    /// Deploy calls made so far for this intent (persisted before each call): a deployer that
    /// cannot look its deployments up (a command) refuses to call again after a restart.
    #[serde(default)]
    pub calls: u32,
    pub condemned_release: String,
    pub target_release: String,
    pub target_version: Option<String>,
    pub environment: String,
    /// Unique text put in the deployment's Comments, used to find it after a crash.
    pub marker: String,
    pub comments: String,
    pub state: RollbackState,
    pub deployment_id: Option<String>,
    pub task_id: Option<String>,
    pub detail: Option<String>,
    pub decided_at: DateTime<Utc>,
}

/// What is remembered about a watch between observations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WatchRecord {
    pub current_release: Option<String>,
    pub last_good_release: Option<String>,
    pub last_good_version: Option<String>,
    pub state: Option<WatchState>,
    pub attention: Option<String>,
    pub last_verdict: Option<Verdict>,
}

/// Cheap-to-clone handle on the database. Calls are short and synchronous; the lock is never
/// held across `.await`.
#[derive(Clone)]
pub struct Store(Arc<Mutex<Connection>>);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS watches (
    name TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS observations (
    id TEXT PRIMARY KEY,
    watch TEXT NOT NULL,
    deployment_id TEXT,
    active INTEGER NOT NULL,
    body TEXT NOT NULL,
    verdict TEXT
);
CREATE INDEX IF NOT EXISTS observations_watch ON observations (watch, active);
CREATE INDEX IF NOT EXISTS observations_deployment ON observations (watch, deployment_id);
CREATE TABLE IF NOT EXISTS quarantine (
    watch TEXT NOT NULL,
    release TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (watch, release)
);
CREATE TABLE IF NOT EXISTS rollbacks (
    id TEXT PRIMARY KEY,
    observation_id TEXT NOT NULL UNIQUE,
    watch TEXT NOT NULL,
    deployment_id TEXT,
    done INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_events (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_deployments (
    watch TEXT NOT NULL,
    deployment_id TEXT NOT NULL,
    PRIMARY KEY (watch, deployment_id)
);
CREATE TABLE IF NOT EXISTS evidence (
    id TEXT PRIMARY KEY,
    watch TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS evidence_watch ON evidence (watch);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
";

impl Store {
    /// Opens (creating if needed) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            path: dir.display().to_string(),
            source,
        })?;
        let conn = Connection::open(dir.join(DB_FILE))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store(Arc::new(Mutex::new(conn))))
    }

    /// An in-memory store for unit tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store(Arc::new(Mutex::new(conn))))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- watches ----

    pub fn watch(&self, name: &str) -> Result<WatchRecord, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row("SELECT body FROM watches WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(match body {
            Some(b) => serde_json::from_str(&b)?,
            None => WatchRecord::default(),
        })
    }

    /// Read-modify-write of a watch record in one transaction.
    pub fn update_watch(
        &self,
        name: &str,
        f: impl FnOnce(&mut WatchRecord),
    ) -> Result<WatchRecord, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let body: Option<String> = tx
            .query_row("SELECT body FROM watches WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let mut rec: WatchRecord = match body {
            Some(b) => serde_json::from_str(&b)?,
            None => WatchRecord::default(),
        };
        f(&mut rec);
        tx.execute(
            "INSERT INTO watches (name, body) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET body = excluded.body",
            params![name, serde_json::to_string(&rec)?],
        )?;
        tx.commit()?;
        Ok(rec)
    }

    // ---- observations ----

    /// Inserts or updates an active observation.
    pub fn save_observation(&self, obs: &ObservationRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO observations (id, watch, deployment_id, active, body) VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT(id) DO UPDATE SET deployment_id = excluded.deployment_id, body = excluded.body",
            params![obs.id, obs.watch, obs.deployment_id, serde_json::to_string(obs)?],
        )?;
        Ok(())
    }

    /// Closes an observation with its verdict.
    pub fn finish_observation(&self, id: &str, verdict: &Verdict) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE observations SET active = 0, verdict = ?2 WHERE id = ?1",
            params![id, serde_json::to_string(verdict)?],
        )?;
        Ok(())
    }

    /// The watch's observation in progress, if any.
    pub fn active_observation(&self, watch: &str) -> Result<Option<ObservationRecord>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM observations WHERE watch = ?1 AND active = 1
                 ORDER BY rowid DESC LIMIT 1",
                [watch],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// The most recent observation of a watch, active or not.
    pub fn latest_observation(&self, watch: &str) -> Result<Option<ObservationRecord>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM observations WHERE watch = ?1 ORDER BY rowid DESC LIMIT 1",
                [watch],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Whether backstop already handled this deployment: observed it, made it as a rollback,
    /// or saw it while polling.
    pub fn deployment_known(&self, watch: &str, deployment_id: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT (SELECT count(*) FROM observations WHERE watch = ?1 AND deployment_id = ?2)
                  + (SELECT count(*) FROM rollbacks WHERE watch = ?1 AND deployment_id = ?2)
                  + (SELECT count(*) FROM seen_deployments WHERE watch = ?1 AND deployment_id = ?2)",
            params![watch, deployment_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    // ---- quarantine ----

    pub fn quarantine(&self, watch: &str, release: &str, reason: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO quarantine (watch, release, reason, at) VALUES (?1, ?2, ?3, ?4)",
            params![watch, release, reason, Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    /// Lifts the quarantine of a release that has since been verified good (a human fixed the
    /// environment and redeployed it): it may be a rollback target again.
    pub fn unquarantine(&self, watch: &str, release: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM quarantine WHERE watch = ?1 AND release = ?2",
            params![watch, release],
        )?;
        Ok(n > 0)
    }

    pub fn is_quarantined(&self, watch: &str, release: &str) -> Result<bool, StoreError> {
        let n: i64 = self.conn().query_row(
            "SELECT count(*) FROM quarantine WHERE watch = ?1 AND release = ?2",
            params![watch, release],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    // ---- rollbacks ----

    /// Persists a new rollback intent, or returns the one already recorded for the same
    /// condemned observation (so a repeated decision cannot create a second intent).
    pub fn insert_rollback(&self, rec: &RollbackRecord) -> Result<RollbackRecord, StoreError> {
        let conn = self.conn();
        let _durable = Durable::new(&conn)?;
        conn.execute(
            "INSERT OR IGNORE INTO rollbacks (id, observation_id, watch, deployment_id, done, body)
             VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            params![
                rec.id,
                rec.observation_id,
                rec.watch,
                rec.deployment_id,
                serde_json::to_string(rec)?
            ],
        )?;
        let body: String = conn.query_row(
            "SELECT body FROM rollbacks WHERE observation_id = ?1",
            [&rec.observation_id],
            |r| r.get(0),
        )?;
        Ok(serde_json::from_str(&body)?)
    }

    pub fn update_rollback(&self, rec: &RollbackRecord) -> Result<(), StoreError> {
        let done = matches!(rec.state, RollbackState::Succeeded | RollbackState::Failed);
        let conn = self.conn();
        let _durable = Durable::new(&conn)?;
        conn.execute(
            "UPDATE rollbacks SET deployment_id = ?2, done = ?3, body = ?4 WHERE id = ?1",
            params![rec.id, rec.deployment_id, done, serde_json::to_string(rec)?],
        )?;
        Ok(())
    }

    /// The watch's unfinished rollback, if a previous process stopped during one.
    pub fn pending_rollback(&self, watch: &str) -> Result<Option<RollbackRecord>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM rollbacks WHERE watch = ?1 AND done = 0 ORDER BY rowid DESC LIMIT 1",
                [watch],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// The most recent rollback of a watch.
    pub fn latest_rollback(&self, watch: &str) -> Result<Option<RollbackRecord>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row(
                "SELECT body FROM rollbacks WHERE watch = ?1 ORDER BY rowid DESC LIMIT 1",
                [watch],
                |r| r.get(0),
            )
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// How many automatic deploy calls were decided for a watch since `since` (for
    /// `max_actions`).
    pub fn actions_since(&self, watch: &str, since: DateTime<Utc>) -> Result<usize, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT body FROM rollbacks WHERE watch = ?1 ORDER BY rowid DESC LIMIT 500")?;
        let bodies = stmt.query_map([watch], |r| r.get::<_, String>(0))?;
        let mut n = 0;
        for b in bodies {
            let rec: RollbackRecord = serde_json::from_str(&b?)?;
            if rec.decided_at >= since {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The newest release marked not safe to roll back from that was deployed after the last
    /// deployment of `target` (or anywhere in recent history when backstop never saw `target`):
    /// rolling back to `target` would cross it.
    pub fn irreversible_after(
        &self,
        watch: &str,
        target: &str,
    ) -> Result<Option<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT body FROM observations WHERE watch = ?1 ORDER BY rowid DESC LIMIT 500",
        )?;
        let bodies = stmt.query_map([watch], |r| r.get::<_, String>(0))?;
        for b in bodies {
            let obs: ObservationRecord = serde_json::from_str(&b?)?;
            if obs.release == target {
                return Ok(None);
            }
            if obs.rollback_safe == Some(false) {
                return Ok(Some(obs.release));
            }
        }
        Ok(None)
    }

    // ---- evidence ----

    /// Inserts or replaces an evidence document.
    pub fn save_evidence(&self, ev: &crate::evidence::Evidence) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO evidence (id, watch, body) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            params![ev.id, ev.watch, serde_json::to_string(ev)?],
        )?;
        Ok(())
    }

    pub fn evidence(&self, id: &str) -> Result<Option<crate::evidence::Evidence>, StoreError> {
        let body: Option<String> = self
            .conn()
            .query_row("SELECT body FROM evidence WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(body.map(|b| serde_json::from_str(&b)).transpose()?)
    }

    /// Past observations, newest first, optionally of one watch.
    pub fn history(
        &self,
        watch: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT body, verdict FROM observations WHERE (?1 IS NULL OR watch = ?1)
             ORDER BY rowid DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![watch, limit as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (body, verdict) = row?;
            let obs: ObservationRecord = serde_json::from_str(&body)?;
            let verdict: Option<Verdict> = verdict.map(|v| serde_json::from_str(&v)).transpose()?;
            out.push(HistoryEntry {
                id: obs.id,
                watch: obs.watch,
                release: obs.release,
                kind: obs.kind.as_str().into(),
                deployed_at: obs.deployed_at,
                verdict: verdict.as_ref().map(|v| v.verdict.as_str().to_string()),
                decided_at: verdict.as_ref().map(|v| v.decided_at),
                summary: verdict.as_ref().map(|v| v.summary.clone()),
                action: verdict.and_then(|v| v.action),
            });
        }
        Ok(out)
    }

    // ---- deduplication ----

    /// Records a webhook event id; false when it was already seen (a redelivery).
    pub fn first_delivery(&self, event_id: &str) -> Result<bool, StoreError> {
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

    // ---- meta ----

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

/// `synchronous=FULL` for the commits made while it lives, `NORMAL` again after.
struct Durable<'a>(&'a Connection);

impl<'a> Durable<'a> {
    fn new(conn: &'a Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "FULL")?;
        Ok(Durable(conn))
    }
}

impl Drop for Durable<'_> {
    fn drop(&mut self) {
        let _ = self.0.pragma_update(None, "synchronous", "NORMAL");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::judge::Rule;

    fn obs(id: &str, dep: Option<&str>) -> ObservationRecord {
        let rules = [Rule::Max(1.0)];
        ObservationRecord {
            id: id.into(),
            watch: "shop".into(),
            release: "Releases-2".into(),
            version: None,
            deployment_id: dep.map(String::from),
            kind: ObservationKind::Deployment,
            source: Source::Announce,
            deployed_at: Utc::now(),
            judging_from: Utc::now(),
            window_ends: Utc::now(),
            rollback_safe: None,
            tracker: Tracker::new([("c", &rules[..], 3)], 5),
        }
    }

    fn rb(obs_id: &str) -> RollbackRecord {
        RollbackRecord {
            id: format!("rb-{obs_id}"),
            observation_id: obs_id.into(),
            watch: "shop".into(),
            kind: ActionKind::Rollback,
            calls: 0,
            condemned_release: "Releases-2".into(),
            target_release: "Releases-1".into(),
            target_version: None,
            environment: "Environments-1".into(),
            marker: "m".into(),
            comments: "c".into(),
            state: RollbackState::Pending,
            deployment_id: None,
            task_id: None,
            detail: None,
            decided_at: Utc::now(),
        }
    }

    #[test]
    fn state_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.save_observation(&obs("o1", Some("Deployments-5")))
                .unwrap();
            s.update_watch("shop", |w| w.last_good_release = Some("Releases-1".into()))
                .unwrap();
            s.quarantine("shop", "Releases-3", "condemned").unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.active_observation("shop").unwrap().unwrap().id, "o1");
        assert_eq!(
            s.watch("shop").unwrap().last_good_release.as_deref(),
            Some("Releases-1")
        );
        assert!(s.is_quarantined("shop", "Releases-3").unwrap());
        assert!(!s.is_quarantined("shop", "Releases-1").unwrap());
        assert!(s.unquarantine("shop", "Releases-3").unwrap());
        assert!(!s.is_quarantined("shop", "Releases-3").unwrap());
        assert!(s.deployment_known("shop", "Deployments-5").unwrap());
        assert!(!s.deployment_known("other", "Deployments-5").unwrap());
    }

    #[test]
    fn one_rollback_intent_per_condemned_observation() {
        let s = Store::in_memory().unwrap();
        let first = s.insert_rollback(&rb("o1")).unwrap();
        let mut again = rb("o1");
        again.id = "another".into();
        let second = s.insert_rollback(&again).unwrap();
        assert_eq!(first.id, second.id);
        assert_eq!(s.pending_rollback("shop").unwrap().unwrap().id, first.id);
        let mut done = first.clone();
        done.state = RollbackState::Succeeded;
        done.deployment_id = Some("Deployments-9".into());
        s.update_rollback(&done).unwrap();
        assert!(s.pending_rollback("shop").unwrap().is_none());
        assert!(s.deployment_known("shop", "Deployments-9").unwrap());
    }

    #[test]
    fn finished_observations_are_not_active() {
        let s = Store::in_memory().unwrap();
        s.save_observation(&obs("o1", None)).unwrap();
        let v = Verdict {
            verdict: crate::judge::observation::VerdictKind::Verified,
            release: "Releases-2".into(),
            version: None,
            deployment_id: None,
            observation_id: "o1".into(),
            decided_at: Utc::now(),
            summary: String::new(),
            checks: vec![],
            action: None,
        };
        s.finish_observation("o1", &v).unwrap();
        assert!(s.active_observation("shop").unwrap().is_none());
        assert_eq!(s.latest_observation("shop").unwrap().unwrap().id, "o1");
    }

    #[test]
    fn webhook_event_ids_deduplicate() {
        let s = Store::in_memory().unwrap();
        assert!(s.first_delivery("Events-1").unwrap());
        assert!(!s.first_delivery("Events-1").unwrap());
        assert!(s.first_delivery("Events-2").unwrap());
    }
}
