//! A transition's rows, serialised on the caller's thread: what the writer (and either
//! backend) writes without touching the caller's records again. Serialising is the costly part
//! of a write (JSON of an observation and its evidence), so it is done once, by the task that
//! made the transition, and the writer thread only runs SQL.

use super::{Commit, StoreError};
use crate::model::{DeployIntent, ObservationRecord};

/// A [`Commit`] serialised on the caller's thread, so the writer owns what it writes.
pub(in crate::store) struct Rows {
    pub(super) watch: String,
    pub(super) durable: bool,
    /// The epoch the write is fenced under (see [`Commit::epoch`]).
    pub(super) epoch: Option<i64>,
    /// Closed observations, each with its verdict.
    pub(super) finished: Vec<(ObservationRow, String)>,
    /// The watch's row; `None` for a routine checkpoint (`Commit::routine`) or a commit
    /// without a record.
    pub(super) record: Option<String>,
    /// The record's open observation.
    pub(super) open: Option<ObservationRow>,
    pub(super) intent: Option<IntentRow>,
    pub(super) evidence: Vec<EvidenceRows>,
    /// (id, body)
    pub(super) outbox: Vec<(String, String)>,
    pub(super) inbox_done: Option<i64>,
    pub(super) seen: Vec<String>,
}

/// An observation's columns.
pub(super) struct ObservationRow {
    pub(super) id: String,
    pub(super) watch: String,
    pub(super) deployment_id: Option<String>,
    pub(super) body: String,
}

impl ObservationRow {
    fn of(o: &ObservationRecord) -> Result<Self, StoreError> {
        Ok(ObservationRow {
            id: o.id.clone(),
            watch: o.watch.clone(),
            deployment_id: o.deployment_id.clone(),
            body: serde_json::to_string(o)?,
        })
    }
}

/// An evidence document without its series, and the series' samples as
/// (check, at_ms, sample).
pub(super) struct EvidenceRows {
    pub(super) id: String,
    pub(super) watch: String,
    pub(super) body: String,
    pub(super) samples: Vec<(String, i64, String)>,
}

impl Rows {
    pub(in crate::store) fn of(watch: &str, c: &Commit<'_>) -> Result<Self, StoreError> {
        let mut finished = Vec::with_capacity(c.finished.len());
        for (obs, verdict) in &c.finished {
            finished.push((ObservationRow::of(obs)?, serde_json::to_string(verdict)?));
        }
        let mut evidence = Vec::with_capacity(c.evidence.len());
        for ev in &c.evidence {
            let mut samples = Vec::new();
            for check in &ev.checks {
                for s in &check.series {
                    samples.push((
                        check.track.name.clone(),
                        s.at.timestamp_millis(),
                        serde_json::to_string(s)?,
                    ));
                }
            }
            // The series lives in its own table (appended, never rewritten).
            let mut body = ev.clone();
            for check in body.checks.iter_mut() {
                check.series = Vec::new();
            }
            let body = serde_json::to_string(&body)?;
            evidence.push(EvidenceRows {
                id: ev.id.clone(),
                watch: ev.watch.clone(),
                body,
                samples,
            });
        }
        let mut outbox = Vec::with_capacity(c.outbox.len());
        for item in &c.outbox {
            outbox.push((item.id.clone(), serde_json::to_string(item)?));
        }
        let rec = c.record;
        // A routine checkpoint changed only the open observation (see `Commit::routine`).
        let whole = rec.filter(|_| !c.routine);
        Ok(Rows {
            watch: watch.to_string(),
            durable: c.durable,
            epoch: c.epoch,
            finished,
            record: whole.map(serde_json::to_string).transpose()?,
            open: rec
                .and_then(|r| r.observation.as_ref())
                .map(ObservationRow::of)
                .transpose()?,
            intent: whole
                .and_then(|r| r.intent.as_ref())
                .map(IntentRow::of)
                .transpose()?,
            evidence,
            outbox,
            inbox_done: c.inbox_done,
            seen: c.seen.clone(),
        })
    }
}

/// An intent serialised on the caller's thread.
pub(super) struct IntentRow {
    pub(super) id: String,
    pub(super) observation_id: String,
    pub(super) watch: String,
    pub(super) deployment_id: Option<String>,
    pub(super) done: bool,
    pub(super) body: String,
}

impl IntentRow {
    pub(super) fn of(i: &DeployIntent) -> Result<Self, StoreError> {
        Ok(IntentRow {
            id: i.id.clone(),
            observation_id: i.observation_id.clone(),
            watch: i.watch.clone(),
            deployment_id: i.deployment_id.clone(),
            done: i.state.is_done(),
            body: serde_json::to_string(i)?,
        })
    }
}
