//! Which transitions must reach the store now, and which may wait for the next checkpoint:
//! pure, so what a crash can lose is decided (and tested) here, not in the I/O shell.
//!
//! A round in which every check keeps passing (or in which backstop itself was late, inside
//! a stretch of such rounds: late errors are transparent to runs) changes only counters and
//! recent samples.
//! Writing it every round is what made 3,400 watches at 1 s spend their time in the store
//! (bench/RESULTS.md); skipping it loses, on a crash, at most [`CHECKPOINT_ROUNDS`] rounds of
//! pass counts and samples (the tracker keeps the last 20 samples, so the evidence series is
//! still complete at the next write). Everything else is written at once: a run of failures
//! or errors starting, growing or breaking, a stretch of lateness starting or ending, a baseline, a verdict, an intent, a command,
//! a notification, a deployment seen, any change of state.

use super::{Effect, EvidencePatch};
use crate::model::{ObservationRecord, WatchRecord};

/// A routine round is written at least every this many rounds: fewer than the samples a
/// tracker keeps, so a checkpoint's evidence (rebuilt from the tracker) still holds every
/// sample since the last one even when the two writes before it failed (a longer gap would
/// leave holes in the evidence series). It was 10: at 18, a watch at 1 s writes about half as
/// often, most of the store's load at scale (bench/RESULTS.md, "highest N that keeps up"),
/// for 8 more rounds of pass counts a crash may lose.
pub const CHECKPOINT_ROUNDS: u32 = crate::judge::observation::KEPT_SAMPLES as u32 - 2;

/// Whether the transition `prev` → `next` with `effects` changes nothing the store holds: the
/// same record, and effects that only schedule, log or count. Nothing to write (an idle watch
/// starting: a thousand watches starting wrote a thousand identical records).
pub fn unchanged(prev: &WatchRecord, next: &WatchRecord, effects: &[Effect]) -> bool {
    prev == next
        && effects.iter().all(|e| {
            matches!(
                e,
                Effect::Schedule(_) | Effect::Unschedule | Effect::Metric(_) | Effect::Log(..)
            )
        })
}

/// Whether the transition `prev` → `next` with `effects` is routine: counters and samples of
/// checks that all pass, nothing else. Only routine transitions may be left unwritten.
pub fn routine(prev: &WatchRecord, next: &WatchRecord, effects: &[Effect]) -> bool {
    let quiet_effects = effects.iter().all(|e| match e {
        Effect::Schedule(_) | Effect::Unschedule | Effect::Metric(_) | Effect::Log(..) => true,
        Effect::Evidence(p) => routine_patch(p),
        _ => false,
    });
    let (Some(before), Some(after)) = (&prev.observation, &next.observation) else {
        return false; // an observation starting or ending
    };
    quiet_effects
        && before.id == after.id
        && no_run(after)
        && runs_unchanged(before, after)
        && same_but_trackers(prev, next)
}

/// A patch that only refreshes the observation's samples.
fn routine_patch(p: &EvidencePatch) -> bool {
    p.verdict.is_none()
        && p.action.is_none()
        && p.deploy.is_none()
        && p.command.is_none()
        && p.notes.is_empty()
        && p.before.is_empty()
}

/// No check is in a run of failures or errors: a run in progress is always written, so a
/// crash never loses a run that would condemn.
fn no_run(o: &ObservationRecord) -> bool {
    o.tracker
        .checks
        .iter()
        .all(|c| c.consecutive_failures == 0 && c.consecutive_errors == 0)
}

/// What a check's judgement rests on besides its counters: its limits, baselines,
/// pre-deployment samples, the condemning state.
fn runs_unchanged(a: &ObservationRecord, b: &ObservationRecord) -> bool {
    // The limits come from the config: a reload that changes them is written at once, so a
    // crash never resumes under the old ones.
    a.tracker.error_limit == b.tracker.error_limit
        && a.tracker.min_error_for_ms == b.tracker.min_error_for_ms
        && a.tracker.checks.len() == b.tracker.checks.len()
        && a.tracker
            .checks
            .iter()
            .zip(&b.tracker.checks)
            .all(|(x, y)| {
                x.name == y.name
                    && x.rules == y.rules
                    && x.failure_limit == y.failure_limit
                    && x.min_samples == y.min_samples
                    && x.min_failure_for_ms == y.min_failure_for_ms
                    && x.baseline == y.baseline
                    && x.limit_hit == y.limit_hit
                    && x.pre.is_some() == y.pre.is_some()
                    && x.control_baseline == y.control_baseline
                    && x.failing_since == y.failing_since
                    && x.erring_since == y.erring_since
                    // A stretch of lateness starting is written at once; its end may wait (a
                    // crash then resumes it as still going on: longer, never shorter).
                    && (y.late_since.is_none() || x.late_since == y.late_since)
            })
}

/// Whether two records are equal but for their observations' trackers (counters and
/// samples), which [`runs_unchanged`] compares field by field. Destructured rather than
/// cloned and compared: this runs every round of every observing watch, and two clones of
/// the whole record (samples included) were most of a routine round's allocations. The
/// patterns name every field, so a field added later is a compile error here, never a
/// change that silently goes unwritten.
fn same_but_trackers(a: &WatchRecord, b: &WatchRecord) -> bool {
    let WatchRecord {
        current_release,
        last_good_release,
        last_good_version,
        state,
        attention,
        last_verdict,
        quarantined,
        actions,
        deployed,
        command,
        observation,
        intent,
    } = a;
    *current_release == b.current_release
        && *last_good_release == b.last_good_release
        && *last_good_version == b.last_good_version
        && *state == b.state
        && *attention == b.attention
        && *last_verdict == b.last_verdict
        && *quarantined == b.quarantined
        && *actions == b.actions
        && *deployed == b.deployed
        && *command == b.command
        && *intent == b.intent
        && match (observation, &b.observation) {
            (None, None) => true,
            (Some(x), Some(y)) => same_observation_but_tracker(x, y),
            _ => false,
        }
}

/// See [`same_but_trackers`].
fn same_observation_but_tracker(a: &ObservationRecord, b: &ObservationRecord) -> bool {
    let ObservationRecord {
        id,
        watch,
        release,
        version,
        deployment_id,
        kind,
        source,
        deployed_at,
        judging_from,
        window_ends,
        rollback_safe,
        tracker: _,
        condemned,
        created,
        previous_condemned,
        baseline_until,
        failure,
        cause,
        unjudged,
    } = a;
    *id == b.id
        && *watch == b.watch
        && *release == b.release
        && *version == b.version
        && *deployment_id == b.deployment_id
        && *kind == b.kind
        && *source == b.source
        && *deployed_at == b.deployed_at
        && *judging_from == b.judging_from
        && *window_ends == b.window_ends
        && *rollback_safe == b.rollback_safe
        && *condemned == b.condemned
        && *created == b.created
        && *previous_condemned == b.previous_condemned
        && *baseline_until == b.baseline_until
        && *failure == b.failure
        && *cause == b.cause
        && *unjudged == b.unjudged
}

#[cfg(test)]
#[path = "persist_tests.rs"]
mod tests;
