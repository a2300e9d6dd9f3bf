//! Watch records, observations, history and evidence; [`Store::commit`] writes a whole
//! lifecycle transition in one transaction.

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};

use super::rows::Rows;
use super::{select_json, OutboxItem, Route, Store, StoreError};
use crate::evidence::Evidence;
use crate::judge::observation::{Sample, Verdict, VerdictKind};
use crate::model::{ObservationKind, ObservationRecord, WatchRecord};

/// One line of `GET /v1/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub id: String,
    pub watch: String,
    pub release: String,
    pub kind: ObservationKind,
    pub deployed_at: DateTime<Utc>,
    /// verified, condemned, inconclusive, superseded; None while observing.
    pub verdict: Option<VerdictKind>,
    pub decided_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub action: Option<String>,
    /// `succeeded`, or `failed` when the deployment itself failed.
    #[serde(default)]
    pub outcome: crate::model::DeployOutcome,
    /// The deployer's account of a failed deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::model::DeployFailure>,
}

/// Everything one lifecycle transition writes.
#[derive(Debug, Default)]
pub struct Commit<'a> {
    /// The watch's record after the transition, with its observation and intent.
    pub record: Option<&'a WatchRecord>,
    /// Observations closed by the transition, with their verdicts.
    pub finished: Vec<(ObservationRecord, Verdict)>,
    pub evidence: Vec<Evidence>,
    /// Notifications to deliver at least once.
    pub outbox: Vec<OutboxItem>,
    /// Deployments recorded as handled (never observed again).
    pub seen: Vec<String>,
    /// The inbox trigger this transition handled: removed with it.
    pub inbox_done: Option<i64>,
    /// Commit with `synchronous=FULL`: an intent changed or something leaves the process next.
    /// On PostgreSQL the same choice is `synchronous_commit = on` (else `off`, as routine
    /// commits are `NORMAL` on SQLite).
    pub durable: bool,
    /// A routine checkpoint: only the open observation's counters and samples changed since
    /// the last commit ([`crate::engine::lifecycle::persist::routine`]), so the watch's row,
    /// its quarantine and its intent are not written again; the observation and its evidence
    /// are. One page fewer per checkpoint, and checkpoints are most of what a large fleet of
    /// healthy watches writes.
    pub routine: bool,
    /// In a fleet, the lease epoch the writing actor was started under: the write is refused
    /// unless this node still holds the watch under *that* epoch, however long the write
    /// waited in the writer's queue (an actor of an earlier tenure never writes under a later
    /// one). `None`: the epoch this node holds now (CLI commands, tests).
    pub epoch: Option<i64>,
}

impl Store {
    /// The watch's record with its open observation and latest intent joined in. Quarantine
    /// rows from before the record owned the quarantine are merged in.
    pub fn load_watch(&self, name: &str) -> Result<WatchRecord, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let name = name.to_string();
                return pg.call(move |c| super::pg::watches::load_watch(c, &name));
            }
        };
        let mut rec: WatchRecord =
            select_json(&conn, "SELECT body FROM watches WHERE name = ?1", [name])?
                .unwrap_or_default();
        rec.observation = select_json(
            &conn,
            "SELECT body FROM observations WHERE watch = ?1 AND active = 1
             ORDER BY rowid DESC LIMIT 1",
            [name],
        )?;
        rec.intent = select_json(
            &conn,
            "SELECT body FROM rollbacks WHERE watch = ?1 ORDER BY rowid DESC LIMIT 1",
            [name],
        )?;
        let mut stmt = conn.prepare("SELECT release, reason FROM quarantine WHERE watch = ?1")?;
        let rows = stmt.query_map([name], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))?;
        for row in rows {
            let (release, reason) = row?;
            rec.quarantined.entry(release).or_insert(reason);
        }
        Ok(rec)
    }

    /// Writes one transition atomically, on the calling thread (CLI commands, tests). On
    /// PostgreSQL, under the watch's fence. The daemon's actors use [`Store::submit`], which
    /// hands the same rows to the writer thread.
    pub fn commit(&self, watch: &str, c: &Commit<'_>) -> Result<(), StoreError> {
        let rows = Rows::of(watch, c)?;
        self.write_batch(vec![rows])
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("nothing was written".into())))
    }

    /// Hands one transition to the writer thread and answers once its batch is written: the
    /// daemon's actors await this instead of writing on the runtime's worker threads. The rows
    /// are serialised now, on the caller's thread, so the future borrows nothing.
    pub fn submit(
        &self,
        watch: &str,
        c: &Commit<'_>,
    ) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let answer = Rows::of(watch, c).map(|rows| self.writer.submit(rows));
        async move {
            answer?
                .await
                .unwrap_or_else(|_| Err(super::writer::stopped()))
        }
    }

    /// The most recent observation of a watch, open or closed.
    pub fn latest_observation(&self, watch: &str) -> Result<Option<ObservationRecord>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.to_string();
                return pg.call(move |c| super::pg::watches::latest_observation(c, &watch));
            }
        };
        select_json(
            &conn,
            "SELECT body FROM observations WHERE watch = ?1 ORDER BY rowid DESC LIMIT 1",
            [watch],
        )
    }

    /// Whether backstop already handled this deployment: observed it, made it as a rollback,
    /// or saw it while polling.
    pub fn deployment_known(&self, watch: &str, deployment_id: &str) -> Result<bool, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let (watch, dep) = (watch.to_string(), deployment_id.to_string());
                return pg.call(move |c| super::pg::watches::deployment_known(c, &watch, &dep));
            }
        };
        let n: i64 = conn.query_row(
            "SELECT (SELECT count(*) FROM observations WHERE watch = ?1 AND deployment_id = ?2)
                  + (SELECT count(*) FROM rollbacks WHERE watch = ?1 AND deployment_id = ?2)
                  + (SELECT count(*) FROM seen_deployments WHERE watch = ?1 AND deployment_id = ?2)",
            params![watch, deployment_id],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    }

    /// The evidence document of an observation, each check's `series` joined in from the
    /// samples appended round by round (thinned to [`crate::series::MAX_SERIES`]).
    pub fn evidence(&self, id: &str) -> Result<Option<Evidence>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let id = id.to_string();
                return pg.call(move |c| super::pg::watches::evidence(c, &id));
            }
        };
        let Some(mut ev) =
            select_json::<Evidence>(&conn, "SELECT body FROM evidence WHERE id = ?1", [id])?
        else {
            return Ok(None);
        };
        join_series(&conn, &mut ev)?;
        Ok(Some(ev))
    }

    /// The evidence document without its series joined in: what a round merges its patch
    /// into (the series is appended, never rewritten, so reading it every round is waste).
    pub fn evidence_body(&self, id: &str) -> Result<Option<Evidence>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let id = id.to_string();
                return pg.call(move |c| super::pg::watches::evidence_body(c, &id));
            }
        };
        select_json(&conn, "SELECT body FROM evidence WHERE id = ?1", [id])
    }

    /// Past observations, newest first, optionally of one watch.
    pub fn history(
        &self,
        watch: Option<&str>,
        limit: usize,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let conn = match self.route() {
            Route::Sqlite(c) => c,
            Route::Postgres(pg) => {
                let watch = watch.map(String::from);
                return pg.call(move |c| super::pg::watches::history(c, watch.as_deref(), limit));
            }
        };
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
            out.push(entry(obs, verdict));
        }
        Ok(out)
    }
}

/// A history line from an observation and its verdict (both backends).
pub(super) fn entry(obs: ObservationRecord, verdict: Option<Verdict>) -> HistoryEntry {
    HistoryEntry {
        id: obs.id,
        watch: obs.watch,
        release: obs.release,
        kind: obs.kind,
        deployed_at: obs.deployed_at,
        verdict: verdict.as_ref().map(|v| v.verdict),
        decided_at: verdict.as_ref().map(|v| v.decided_at),
        summary: verdict.as_ref().map(|v| v.summary.clone()),
        action: verdict.and_then(|v| v.action),
        outcome: crate::model::DeployOutcome::of(&obs.failure),
        failure: obs.failure,
    }
}

/// Writes a transition's rows on SQLite, inside the caller's transaction or savepoint: the
/// closed observations, the record with its open observation and intent, evidence, outbox,
/// the handled inbox row and the deployments seen.
pub(super) fn write(conn: &Connection, r: &Rows) -> Result<(), StoreError> {
    for (o, verdict) in &r.finished {
        conn.execute(
            "INSERT INTO observations (id, watch, deployment_id, active, body, verdict)
             VALUES (?1, ?2, ?3, 0, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET active = 0, deployment_id = excluded.deployment_id,
                 body = excluded.body, verdict = excluded.verdict",
            params![o.id, o.watch, o.deployment_id, o.body, verdict],
        )?;
    }
    if let Some(body) = &r.record {
        conn.execute(
            "INSERT INTO watches (name, body) VALUES (?1, ?2)
             ON CONFLICT(name) DO UPDATE SET body = excluded.body",
            params![r.watch, body],
        )?;
        conn.execute("DELETE FROM quarantine WHERE watch = ?1", [&r.watch])?;
    }
    if let Some(o) = &r.open {
        conn.execute(
            "INSERT INTO observations (id, watch, deployment_id, active, body)
             VALUES (?1, ?2, ?3, 1, ?4)
             ON CONFLICT(id) DO UPDATE SET deployment_id = excluded.deployment_id,
                 body = excluded.body",
            params![o.id, o.watch, o.deployment_id, o.body],
        )?;
    }
    if let Some(i) = &r.intent {
        super::intents::upsert_intent(conn, i)?;
    }
    for ev in &r.evidence {
        // The series lives in its own table (appended, never rewritten).
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO evidence_series (observation_id, check_name, at_ms, body)
             VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (check, at_ms, sample) in &ev.samples {
            stmt.execute(params![ev.id, check, at_ms, sample])?;
        }
        conn.execute(
            "INSERT INTO evidence (id, watch, body) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            params![ev.id, ev.watch, ev.body],
        )?;
    }
    for (id, body) in &r.outbox {
        conn.execute(
            "INSERT OR IGNORE INTO outbox (id, watch, body, delivered) VALUES (?1, ?2, ?3, 0)",
            params![id, r.watch, body],
        )?;
    }
    if let Some(seq) = r.inbox_done {
        conn.execute("DELETE FROM inbox WHERE seq = ?1", [seq])?;
    }
    for dep in &r.seen {
        conn.execute(
            "INSERT OR IGNORE INTO seen_deployments (watch, deployment_id) VALUES (?1, ?2)",
            params![r.watch, dep],
        )?;
    }
    Ok(())
}

/// Joins each check's `series` in from the samples appended round by round, thinned to
/// [`crate::series::MAX_SERIES`]. A document written before the table (and not since) keeps
/// the series in its body.
fn join_series(conn: &rusqlite::Connection, ev: &mut Evidence) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT body FROM evidence_series WHERE observation_id = ?1 AND check_name = ?2
         ORDER BY at_ms",
    )?;
    for c in ev.checks.iter_mut() {
        let rows = stmt
            .query_map(params![ev.id, c.track.name], |r| r.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if rows.is_empty() {
            continue;
        }
        let samples = rows
            .iter()
            .map(|b| serde_json::from_str::<Sample>(b))
            .collect::<Result<Vec<_>, _>>()?;
        c.series = crate::series::downsample(
            samples,
            crate::series::MAX_SERIES,
            c.track.condemning.as_ref(),
        );
    }
    Ok(())
}
