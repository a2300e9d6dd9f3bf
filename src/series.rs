//! The chartable series of a check's evidence: its whole observation (`series`) and the
//! pre-deployment series behind its baseline (`before`). Pure: the watch actor calls
//! [`carry`] each time it merges a patch into an evidence document, and the store calls
//! [`downsample`] when it reads one.
//!
//! Why not in the lifecycle's tracker: the tracker is persisted and cloned every round, and
//! keeps only the newest samples it needs to decide. The whole observation is evidence, not
//! state. Nor is it rewritten whole in the evidence document every round (a 2,000-sample
//! series rewritten every round by every watch is megabytes a second): each round's patch
//! carries the samples the tracker holds, the store appends the ones it does not have yet to
//! its own table (keyed by observation, check and time, in the same commit as the record), and
//! reading the document joins them back in, thinned to [`MAX_SERIES`]. A clean stop (a
//! shutdown, a reload, a handover) loses nothing; a crash loses the samples of the routine
//! rounds since the last checkpoint (at most `lifecycle::persist::CHECKPOINT_ROUNDS`).

use crate::evidence::CheckEvidence;
use crate::judge::observation::Sample;
use crate::judge::Outcome;
use crate::model::{BeforeSeries, Span};

/// Most samples kept in a check's `series`.
pub const MAX_SERIES: usize = 2000;
/// Most points kept in a check's `before`.
pub const MAX_BEFORE: usize = 1000;

/// Fills each rebuilt check (`fresh`) for a merge into the stored document (`old`, by name:
/// a reload may reorder checks): `series` is the samples the tracker holds now (the store
/// appends those it does not have; an alert check's label sets stay in `samples` only, as in
/// 2,000 samples they would cost megabytes a check), and `before` is the one fetched this
/// round (`fetched`, by check name), else the stored one.
pub fn carry(
    old: &[CheckEvidence],
    fresh: &mut [CheckEvidence],
    fetched: &[(String, BeforeSeries)],
) {
    for f in fresh.iter_mut() {
        let prev = old.iter().find(|o| o.track.name == f.track.name);
        f.series = f
            .track
            .samples
            .iter()
            .map(|s| Sample {
                alerts: Vec::new(),
                ..s.clone()
            })
            .collect();
        f.before = fetched
            .iter()
            .find(|(name, _)| *name == f.track.name)
            .map(|(_, b)| thin_before(b.clone()))
            .or_else(|| prev.and_then(|p| p.before.clone()));
    }
}

/// At most `cap` of `samples`, in their order. Kept first, in this order while room remains:
/// the samples of the condemning `run`, the other failures, the first and the newest; the
/// rest get one sample per equal slice of time, so repeated thinning as samples arrive stays
/// even in time. A group that does not fit whole is thinned evenly itself.
pub fn downsample(samples: Vec<Sample>, cap: usize, run: Option<&Span>) -> Vec<Sample> {
    let n = samples.len();
    if n <= cap {
        return samples;
    }
    let in_run = |s: &Sample| run.is_some_and(|r| r.contains(s.at));
    let failed = |s: &Sample| matches!(s.outcome, Outcome::Fail { .. });
    let mut keep = vec![false; n];
    let mut room = cap;
    let groups: [Vec<usize>; 3] = [
        (0..n).filter(|&i| in_run(&samples[i])).collect(),
        (0..n)
            .filter(|&i| !in_run(&samples[i]) && failed(&samples[i]))
            .collect(),
        [0, n - 1]
            .into_iter()
            .filter(|&i| !in_run(&samples[i]) && !failed(&samples[i]))
            .collect(),
    ];
    for group in groups {
        let group: Vec<usize> = group.into_iter().filter(|&i| !keep[i]).collect();
        for i in evenly(&group, room) {
            keep[i] = true;
            room -= 1;
        }
    }
    if room > 0 {
        let first = samples[0].at;
        let span = (samples[n - 1].at - first).num_milliseconds().max(0) as i128 + 1;
        let mut taken = vec![false; room];
        let rest: Vec<usize> = (0..n).filter(|&i| !keep[i]).collect();
        for i in rest {
            let offset = (samples[i].at - first).num_milliseconds().max(0) as i128;
            let slot = ((offset * room as i128) / span).clamp(0, room as i128 - 1) as usize;
            if !taken[slot] {
                taken[slot] = true;
                keep[i] = true;
            }
        }
    }
    samples
        .into_iter()
        .zip(keep)
        .filter_map(|(s, k)| k.then_some(s))
        .collect()
}

/// `before` at most [`MAX_BEFORE`] points, thinned evenly (the first and last kept).
pub fn thin_before(mut b: BeforeSeries) -> BeforeSeries {
    if b.points.len() > MAX_BEFORE {
        let idx: Vec<usize> = (0..b.points.len()).collect();
        let picked = evenly(&idx, MAX_BEFORE);
        b.points = picked.into_iter().map(|i| b.points[i]).collect();
    }
    b
}

/// At most `k` of `items`, evenly spread, the first and last included when `k >= 2`.
fn evenly(items: &[usize], k: usize) -> Vec<usize> {
    let n = items.len();
    if n <= k {
        return items.to_vec();
    }
    match k {
        0 => Vec::new(),
        1 => vec![items[n - 1]],
        _ => (0..k)
            .map(|i| items[(i * (n - 1) + (k - 1) / 2) / (k - 1)])
            .collect(),
    }
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
