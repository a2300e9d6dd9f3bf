//! The chartable series of a check's evidence: its whole observation (`series`) and the
//! pre-deployment series behind its baseline (`before`). Pure: the watch actor calls
//! [`carry`] each time it merges a patch into a stored evidence document.
//!
//! Why here and not in the lifecycle's tracker: the tracker is persisted and cloned every
//! round, and keeps only the newest samples it needs to decide. The whole observation is
//! evidence, not state: it lives in the stored evidence document, which each round's patch
//! extends with that round's samples. A restart or a reload loses nothing, because the
//! document is stored in the same commit as the record, and the tracker still holds the
//! samples the next merge needs.

use crate::evidence::CheckEvidence;
use crate::judge::observation::Sample;
use crate::judge::Outcome;
use crate::model::{BeforeSeries, Span};

/// Most samples kept in a check's `series`.
pub const MAX_SERIES: usize = 2000;
/// Most points kept in a check's `before`.
pub const MAX_BEFORE: usize = 1000;

/// Carries each check's `series` and `before` from the stored document (`old`) into its
/// rebuilt checks (`fresh`, by name: a reload may reorder them): the series is extended with
/// the samples the tracker holds that it does not, and `before` is the one fetched this round
/// (`fetched`, by check name), else the stored one.
pub fn carry(
    old: &[CheckEvidence],
    fresh: &mut [CheckEvidence],
    fetched: &[(String, BeforeSeries)],
) {
    for f in fresh.iter_mut() {
        let prev = old.iter().find(|o| o.track.name == f.track.name);
        let mut series = prev.map(|p| p.series.clone()).unwrap_or_default();
        merge(
            &mut series,
            f.track.samples.iter(),
            f.track.condemning.as_ref(),
        );
        f.series = series;
        f.before = fetched
            .iter()
            .find(|(name, _)| *name == f.track.name)
            .map(|(_, b)| thin_before(b.clone()))
            .or_else(|| prev.and_then(|p| p.before.clone()));
    }
}

/// Appends the samples newer than the series' newest (a sample's `at` is its identity: the
/// tracker's samples overlap what an earlier patch appended), then thins to [`MAX_SERIES`].
/// Only newer ones: a sample thinned away must not come back while the tracker still holds it.
/// An alert check's matching alerts (up to 10 label sets a sample) stay in the newest
/// `samples` only: in 2,000 samples rewritten every round they would cost megabytes a check.
pub fn merge<'a>(
    series: &mut Vec<Sample>,
    newest: impl IntoIterator<Item = &'a Sample>,
    run: Option<&Span>,
) {
    for s in newest {
        if series.last().is_none_or(|last| s.at > last.at) {
            series.push(Sample {
                alerts: Vec::new(),
                ..s.clone()
            });
        }
    }
    if series.len() > MAX_SERIES {
        *series = downsample(std::mem::take(series), MAX_SERIES, run);
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
