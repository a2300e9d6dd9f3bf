//! The verdict state machine of one observed release.
//!
//! Each check keeps its consecutive-failure and consecutive-error runs. After every sample
//! round, [`Tracker::decide`] says whether the release is condemned (some check failed
//! `failure_limit` times in a row), inconclusive (some check could not be judged `error_limit`
//! times in a row), verified (the window ended without either) or still under observation.
//! Condemnation wins over inconclusiveness: a check that is clearly failing is evidence enough
//! even if another check is blind. The whole tracker serialises, so an observation interrupted
//! by a restart resumes with its runs intact, and doubles as the evidence of the verdict.

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Outcome, Rule};

/// Most recent samples kept per check as evidence (and the longest a routine round waits to
/// be written: `engine::lifecycle::persist::CHECKPOINT_ROUNDS`).
pub const KEPT_SAMPLES: usize = 20;

/// One judged sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Sample {
    pub at: DateTime<Utc>,
    /// The measured value (HTTP status for http checks); absent when the probe failed.
    pub value: Option<f64>,
    #[serde(flatten)]
    pub outcome: Outcome,
    /// The query's look-back reached before the deployment: the sample mixes two releases.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mixed: bool,
    /// What the reading said besides its outcome: an alert check's pending, older or muted
    /// alerts ("firing since before the deployment: not this release's").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Alert checks: the matching alerts (at most [`super::alerts::KEPT_ALERTS`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<super::alerts::SeenAlert>,
}

/// Running state and evidence of one check during one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CheckTrack {
    pub name: String,
    pub rules: Vec<Rule>,
    pub failure_limit: u32,
    /// Pre-deployment baseline, once known.
    pub baseline: Option<f64>,
    pub consecutive_failures: u32,
    pub consecutive_errors: u32,
    pub passes: u64,
    pub failures: u64,
    pub errors: u64,
    /// Samples that were neither evidence for nor against the release.
    #[serde(default)]
    pub no_data: u64,
    /// Judged samples (pass or fail) needed in the window for the release to be verified.
    #[serde(default)]
    pub min_samples: u32,
    /// Scheduled time of the round that began the current failure run.
    #[serde(default)]
    pub failing_since: Option<DateTime<Utc>>,
    /// How long a failure run must span (scheduled times) to condemn, in milliseconds.
    #[serde(default)]
    pub min_failure_for_ms: u64,
    /// Scheduled time of the round that began the current error run.
    #[serde(default)]
    pub erring_since: Option<DateTime<Utc>>,
    /// The most recent samples, oldest first.
    #[schema(value_type = Vec<Sample>)]
    pub samples: VecDeque<Sample>,
    /// Set when this check condemned the release or made it inconclusive: which limit was hit.
    pub limit_hit: Option<String>,
    /// `compare` checks: the pre-deployment samples, fetched once per observation. Not
    /// serialised (the comparison keeps a bounded copy as evidence): after a restart they are
    /// fetched again.
    #[serde(skip)]
    pub pre: Option<Vec<f64>>,
    /// `compare` checks: the newest comparison of the post-deployment samples with the pre.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<super::compare::Comparison>,
    /// Checks with `control_query`: the control's pre-deployment baseline, fetched once per
    /// observation; evidence beside the check's own baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_baseline: Option<f64>,
    /// When the first sample of the current failure run was taken (its `at`), kept beyond the
    /// bounded `samples` so the condemning run can be told however long it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_from: Option<DateTime<Utc>>,
    /// When the first sample of the current error run was taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erring_from: Option<DateTime<Utc>>,
    /// Set with `limit_hit` when a run of this check condemned the release or made it
    /// inconclusive: the times (`at`) of the run's first and last samples, so a chart can mark
    /// exactly those samples.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condemning: Option<crate::model::Span>,
    /// When the first sample of the current stretch in which backstop itself was late (every
    /// sample since is a late error) was taken. Late errors are transparent to runs, so this
    /// is what keeps a release backstop could not see from being verified: a stretch as long
    /// as an error run must be (`min_error_for`) makes the window's end inconclusive. Its start
    /// is written at once (`engine::lifecycle::persist`), so a crash can only make a stretch
    /// look longer (the downtime counts), never shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_since: Option<DateTime<Utc>>,
    /// The longest ended stretch of lateness, in milliseconds: from its first late sample to
    /// its last.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub late_longest_ms: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the observation should do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Keep sampling.
    Continue,
    /// The release is bad: act on it.
    Condemned { reason: String },
    /// The release cannot be judged: report, do not act.
    Inconclusive { reason: String },
    /// The window passed without condemnation: the release is good.
    Verified,
}

/// The per-check runs of one observation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    pub checks: Vec<CheckTrack>,
    pub error_limit: u32,
    /// How long an error run must span (scheduled times), in milliseconds, besides reaching
    /// `error_limit`, to make the verdict inconclusive: `error_limit` rounds at the watch's
    /// `interval`, so the fast cadence never turns ten seconds of blindness into giving up.
    #[serde(default)]
    pub min_error_for_ms: u64,
    /// Completed sample rounds.
    pub rounds: u64,
}

impl Tracker {
    /// A fresh tracker for checks given as (name, rules, failure_limit).
    pub fn new<'a>(
        checks: impl IntoIterator<Item = (&'a str, &'a [Rule], u32)>,
        error_limit: u32,
    ) -> Self {
        let checks = checks
            .into_iter()
            .map(|(name, rules, failure_limit)| CheckTrack {
                name: name.to_string(),
                rules: rules.to_vec(),
                failure_limit: failure_limit.max(1),
                baseline: None,
                consecutive_failures: 0,
                consecutive_errors: 0,
                passes: 0,
                failures: 0,
                errors: 0,
                no_data: 0,
                min_samples: 0,
                failing_since: None,
                min_failure_for_ms: 0,
                erring_since: None,
                samples: VecDeque::new(),
                limit_hit: None,
                pre: None,
                comparison: None,
                control_baseline: None,
                failing_from: None,
                erring_from: None,
                condemning: None,
                late_since: None,
                late_longest_ms: 0,
            })
            .collect();
        Tracker {
            checks,
            error_limit: error_limit.max(1),
            min_error_for_ms: 0,
            rounds: 0,
        }
    }

    /// Makes the tracked checks match the configured ones, by name: a check added by a reload
    /// starts fresh, a removed one is dropped, one whose rules or limit changed keeps its runs.
    /// Returns what changed, for the evidence; empty when nothing did.
    pub fn reconcile<'a>(
        &mut self,
        checks: impl IntoIterator<Item = (&'a str, &'a [Rule], u32)>,
        error_limit: u32,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        let mut old: Vec<CheckTrack> = std::mem::take(&mut self.checks);
        for (name, rules, failure_limit) in checks {
            match old.iter().position(|t| t.name == name) {
                Some(i) => {
                    let mut t = old.remove(i);
                    if t.rules != rules || t.failure_limit != failure_limit.max(1) {
                        notes.push(format!(
                            "reload changed check {name}: rules {} (was {}), failure_limit {} (was {}); its runs are kept",
                            describe(rules),
                            describe(&t.rules),
                            failure_limit.max(1),
                            t.failure_limit
                        ));
                        t.rules = rules.to_vec();
                        t.failure_limit = failure_limit.max(1);
                    }
                    self.checks.push(t);
                }
                None => {
                    notes.push(format!("reload added check {name}: it starts fresh"));
                    self.checks
                        .extend(Tracker::new([(name, rules, failure_limit)], 1).checks);
                }
            }
        }
        for t in old {
            notes.push(format!(
                "reload removed check {}: its samples are dropped",
                t.name
            ));
        }
        if self.error_limit != error_limit.max(1) {
            notes.push(format!(
                "reload changed error_limit to {} (was {})",
                error_limit.max(1),
                self.error_limit
            ));
            self.error_limit = error_limit.max(1);
        }
        notes
    }

    /// Records one sample of the check named `name`; unknown names are ignored.
    pub fn record_named(&mut self, name: &str, sample: Sample) {
        if let Some(i) = self.checks.iter().position(|t| t.name == name) {
            self.record(i, sample);
        }
    }

    /// The tracked check named `name`.
    pub fn check_mut(&mut self, name: &str) -> Option<&mut CheckTrack> {
        self.checks.iter_mut().find(|t| t.name == name)
    }

    /// Records one sample of check `index`. A pass or a failure ends an error run, and an
    /// error does not break a failure run: a flapping scrape between two failures is not
    /// evidence that the release recovered.
    pub fn record(&mut self, index: usize, sample: Sample) {
        let Some(track) = self.checks.get_mut(index) else {
            return;
        };
        match &sample.outcome {
            Outcome::Pass => {
                track.passes += 1;
                track.consecutive_failures = 0;
                track.consecutive_errors = 0;
                track.failing_from = None;
                track.erring_from = None;
            }
            Outcome::Fail { .. } => {
                track.failures += 1;
                track.consecutive_failures += 1;
                track.consecutive_errors = 0;
                track.erring_from = None;
                if track.consecutive_failures == 1 {
                    track.failing_from = Some(sample.at);
                }
            }
            // backstop's own lateness: counted, and transparent to runs (see `Outcome::Error`),
            // but the stretch it spans is kept (`late_since`).
            Outcome::Error { late: true, .. } => {
                track.errors += 1;
                track.late_since.get_or_insert(sample.at);
            }
            Outcome::Error { .. } => {
                track.errors += 1;
                track.consecutive_errors += 1;
                if track.consecutive_errors == 1 {
                    track.erring_from = Some(sample.at);
                }
            }
            Outcome::NoData { .. } => track.no_data += 1,
        }
        if !matches!(sample.outcome, Outcome::Error { late: true, .. }) {
            // Measured again: the stretch of lateness (if any) ended at its last late sample
            // (measured like an error run, first to last, and like one still going on).
            if let Some(since) = track.late_since.take() {
                let last = track.samples.back().map_or(since, |s| s.at);
                let ms = (last - since).num_milliseconds().max(0) as u64;
                track.late_longest_ms = track.late_longest_ms.max(ms);
            }
        }
        track.samples.push_back(sample);
        let keep = KEPT_SAMPLES.max(track.failure_limit as usize + self.error_limit as usize);
        while track.samples.len() > keep {
            track.samples.pop_front();
        }
    }

    /// Marks the end of a sample round.
    pub fn end_round(&mut self) {
        self.rounds += 1;
    }

    /// Marks the round scheduled at `at`: a failure run starts at its first failing round and
    /// ends at a pass (errors and no data do not end it); an error run starts at its first
    /// error and ends at a pass or a failure.
    pub fn mark_round(&mut self, at: DateTime<Utc>) {
        for t in self.checks.iter_mut() {
            if t.consecutive_errors == 0 {
                t.erring_since = None;
            } else {
                t.erring_since.get_or_insert(at);
            }
            match t.samples.back().map(|s| &s.outcome) {
                Some(Outcome::Fail { .. }) if t.consecutive_failures == 1 => {
                    t.failing_since = Some(at)
                }
                Some(Outcome::Fail { .. }) => {
                    t.failing_since.get_or_insert(at);
                }
                Some(Outcome::Pass) => t.failing_since = None,
                _ => {}
            }
        }
    }

    /// Decides after a round. `window_over` is true once the observation window has ended.
    /// Marks the check that decided with the limit it hit.
    pub fn decide(&mut self, window_over: bool) -> Decision {
        self.decide_at(window_over, DateTime::<Utc>::MAX_UTC)
    }

    /// [`Tracker::decide`] for the round scheduled at `at`: a failure run condemns only once it
    /// spans `min_failure_for` (so a fast cadence never turns a blip into a rollback).
    pub fn decide_at(&mut self, window_over: bool, at: DateTime<Utc>) -> Decision {
        let spans = |t: &CheckTrack| {
            t.failing_since
                .is_none_or(|since| (at - since).num_milliseconds() >= t.min_failure_for_ms as i64)
        };
        if let Some(track) = self
            .checks
            .iter_mut()
            .find(|t| t.consecutive_failures >= t.failure_limit && spans(t))
        {
            let last = track
                .samples
                .iter()
                .rev()
                .find_map(|s| match &s.outcome {
                    Outcome::Fail { limit } => Some(limit.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let hit = format!(
                "failure_limit {} reached: {} consecutive failures (last: {last})",
                track.failure_limit, track.consecutive_failures
            );
            track.limit_hit = Some(hit.clone());
            track.condemning = track.run(track.failing_from, |o| !matches!(o, Outcome::Pass));
            return Decision::Condemned {
                reason: format!("check {} {hit}", track.name),
            };
        }
        let error_limit = self.error_limit;
        let min_error_for = self.min_error_for_ms as i64;
        let blind = |t: &CheckTrack| {
            t.consecutive_errors >= error_limit
                && t.erring_since
                    .is_none_or(|since| (at - since).num_milliseconds() >= min_error_for)
        };
        // A failure being confirmed by another check is worth waiting for: one blind check is
        // not a reason to stop watching a release that may be failing (the run ends soon, at a
        // pass or a condemnation). The window's end waits for nothing.
        let confirming = |i: usize| {
            !window_over
                && self
                    .checks
                    .iter()
                    .enumerate()
                    .any(|(j, t)| j != i && t.consecutive_failures > 0 && !blind(t))
        };
        let found = (0..self.checks.len()).find(|&i| blind(&self.checks[i]) && !confirming(i));
        if let Some(track) = found.map(|i| &mut self.checks[i]) {
            let last = track
                .samples
                .iter()
                .rev()
                .find_map(|s| match &s.outcome {
                    Outcome::Error { reason, .. } => Some(reason.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let hit = format!(
                "error_limit {error_limit} reached: {} consecutive errors (last: {last})",
                track.consecutive_errors
            );
            track.limit_hit = Some(hit.clone());
            track.condemning = track.run(track.erring_from, |o| {
                !matches!(o, Outcome::Pass | Outcome::Fail { .. })
            });
            return Decision::Inconclusive {
                reason: format!("check {} {hit}", track.name),
            };
        }
        if !window_over {
            return Decision::Continue;
        }
        // Never verified when backstop was blind to the release for as long as an error run
        // must last to make it inconclusive: its own lateness is not the application's error,
        // but it is not an observation either.
        let blind_for = |t: &CheckTrack| {
            let ongoing = t
                .late_since
                .zip(t.samples.back())
                .map_or(0, |(since, last)| {
                    (last.at - since).num_milliseconds().max(0) as u64
                });
            t.late_longest_ms.max(ongoing)
        };
        if let Some(track) = self.checks.iter_mut().find(|t| {
            (t.late_since.is_some() || t.late_longest_ms > 0)
                && blind_for(t) >= min_error_for as u64
        }) {
            let hit = format!(
                "backstop was late for {} in a row (min_error_for {}): the release was not observed long enough to be verified",
                humantime::format_duration(std::time::Duration::from_millis(blind_for(track))),
                humantime::format_duration(std::time::Duration::from_millis(min_error_for as u64)),
            );
            track.limit_hit = Some(hit.clone());
            return Decision::Inconclusive {
                reason: format!("check {} {hit}", track.name),
            };
        }
        // Never verified on errors and a lucky few passes: every check must have judged
        // enough samples.
        if let Some(track) = self
            .checks
            .iter_mut()
            .find(|t| t.passes + t.failures < u64::from(t.min_samples))
        {
            let hit = format!(
                "min_samples {} not reached: {} judged samples (pass or fail) in the window, {} errors, {} without data",
                track.min_samples,
                track.passes + track.failures,
                track.errors,
                track.no_data
            );
            track.limit_hit = Some(hit.clone());
            return Decision::Inconclusive {
                reason: format!("check {} {hit}", track.name),
            };
        }
        Decision::Verified
    }
}

impl CheckTrack {
    /// The run that just hit a limit: from `started` (the run's first sample), or, in a record
    /// written before that was kept, from the oldest of the newest samples that belong to it;
    /// to the newest sample.
    fn run(
        &self,
        started: Option<DateTime<Utc>>,
        belongs: impl Fn(&Outcome) -> bool,
    ) -> Option<crate::model::Span> {
        let to = self.samples.back()?.at;
        let from = started.or_else(|| {
            self.samples
                .iter()
                .rev()
                .take_while(|s| belongs(&s.outcome))
                .last()
                .map(|s| s.at)
        })?;
        Some(crate::model::Span { from, to })
    }
}

fn describe(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The kind of a final verdict. Closed set, persisted and reported as snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerdictKind {
    Verified,
    Condemned,
    Inconclusive,
    /// A newer deployment replaced the release before its window ended; never counts as good.
    Superseded,
}

impl VerdictKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            VerdictKind::Verified => "verified",
            VerdictKind::Condemned => "condemned",
            VerdictKind::Inconclusive => "inconclusive",
            VerdictKind::Superseded => "superseded",
        }
    }

    pub const ALL: [VerdictKind; 4] = [
        VerdictKind::Verified,
        VerdictKind::Condemned,
        VerdictKind::Inconclusive,
        VerdictKind::Superseded,
    ];
}

/// A final decision about one release, with everything that led to it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Verdict {
    pub verdict: VerdictKind,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    pub observation_id: String,
    pub decided_at: DateTime<Utc>,
    /// One line for humans: which check hit which limit.
    pub summary: String,
    /// Per check: rules, baseline, counters, recent samples and the limit hit.
    pub checks: Vec<CheckTrack>,
    /// What backstop did about it (rollback target, notify only, nothing).
    pub action: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker(failure_limit: u32, error_limit: u32) -> Tracker {
        let rules = [Rule::Max(1.0)];
        Tracker::new(
            [("a", &rules[..], failure_limit), ("b", &rules[..], 1000)],
            error_limit,
        )
    }

    fn s(outcome: Outcome) -> Sample {
        Sample {
            at: DateTime::<Utc>::UNIX_EPOCH,
            value: Some(1.0),
            outcome,
            mixed: false,
            note: None,
            alerts: Vec::new(),
        }
    }

    fn fail() -> Outcome {
        Outcome::Fail {
            limit: "value 2 > max 1".into(),
        }
    }

    fn err() -> Outcome {
        Outcome::Error {
            reason: "unreachable".into(),
            late: false,
        }
    }

    #[test]
    fn condemned_after_failure_limit_consecutive_failures() {
        let mut t = tracker(3, 5);
        for _ in 0..2 {
            t.record(0, s(fail()));
            assert_eq!(t.decide(false), Decision::Continue);
        }
        t.record(0, s(fail()));
        let d = t.decide(false);
        assert!(matches!(d, Decision::Condemned { ref reason } if reason.contains("check a")));
        assert!(t.checks[0].limit_hit.as_deref().unwrap().contains("max 1"));
    }

    #[test]
    fn a_pass_resets_the_failure_run_noise_is_tolerated() {
        let mut t = tracker(3, 5);
        for _ in 0..10 {
            t.record(0, s(fail()));
            t.record(0, s(fail()));
            t.record(0, s(Outcome::Pass));
            assert_eq!(t.decide(false), Decision::Continue);
        }
        assert_eq!(t.decide(true), Decision::Verified);
    }

    #[test]
    fn errors_never_condemn_but_a_run_makes_it_inconclusive() {
        let mut t = tracker(1, 3);
        t.record(0, s(err()));
        t.record(0, s(err()));
        assert_eq!(t.decide(false), Decision::Continue);
        t.record(0, s(err()));
        assert!(matches!(t.decide(false), Decision::Inconclusive { .. }));
    }

    fn late() -> Outcome {
        Outcome::Error {
            reason: "backstop was late".into(),
            late: true,
        }
    }

    #[test]
    fn backstops_own_lateness_neither_extends_nor_breaks_a_run() {
        // Any number of late errors alone: no run, never inconclusive by error_limit.
        let mut t = tracker(3, 3);
        for _ in 0..10 {
            t.record(0, s(late()));
            assert_eq!(t.decide(false), Decision::Continue);
        }
        assert_eq!(t.checks[0].errors, 10, "still counted as errors");
        assert_eq!(t.checks[0].consecutive_errors, 0);
        // Inside a run of real errors they do not break it: the run still reaches its limit.
        t.record(0, s(err()));
        t.record(0, s(late()));
        t.record(0, s(err()));
        t.record(0, s(late()));
        assert_eq!(t.decide(false), Decision::Continue);
        t.record(0, s(err()));
        assert!(matches!(t.decide(false), Decision::Inconclusive { .. }));
        // Nor a failure run: three failures with late errors between them condemn.
        let mut t = tracker(3, 3);
        for _ in 0..2 {
            t.record(0, s(fail()));
            t.record(0, s(late()));
        }
        t.record(0, s(fail()));
        assert!(matches!(t.decide(false), Decision::Condemned { .. }));
    }

    fn sample_at(outcome: Outcome, secs: i64) -> Sample {
        Sample {
            at: DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs),
            ..s(outcome)
        }
    }

    #[test]
    fn a_release_backstop_could_not_observe_is_never_verified() {
        // Late the whole window: no run, but blind at its end.
        let mut t = tracker(3, 3);
        t.min_error_for_ms = 20_000;
        for i in 0..30 {
            t.record(0, sample_at(late(), i));
            t.record(1, sample_at(Outcome::Pass, i));
        }
        let d = t.decide(true);
        assert!(
            matches!(d, Decision::Inconclusive { ref reason } if reason.contains("backstop was late for 29s")),
            "{d:?}"
        );
    }

    #[test]
    fn enough_passes_early_do_not_cover_a_long_blind_stretch_later() {
        // min_samples reached in the first minute, then backstop late for most of the window
        // (the release may be hanging all along): not verified, even though the stretch ended.
        let mut t = tracker(3, 3);
        t.min_error_for_ms = 40_000;
        t.checks[0].min_samples = 30;
        let mut now = 0;
        for _ in 0..30 {
            t.record(0, sample_at(Outcome::Pass, now));
            now += 2;
        }
        for _ in 0..54 {
            t.record(0, sample_at(late(), now));
            now += 10;
        }
        t.record(0, sample_at(Outcome::Pass, now));
        for i in 0..=now {
            t.record(1, sample_at(Outcome::Pass, i));
        }
        assert_eq!(t.checks[0].late_since, None, "the stretch ended");
        assert_eq!(t.checks[0].late_longest_ms, 530_000);
        let d = t.decide(true);
        assert!(
            matches!(d, Decision::Inconclusive { ref reason } if reason.contains("not observed")),
            "{d:?}"
        );
        // A short stretch (under min_error_for) is forgiven.
        let mut t = tracker(3, 3);
        t.min_error_for_ms = 40_000;
        for i in 0..30 {
            let o = if (10..13).contains(&i) {
                late()
            } else {
                Outcome::Pass
            };
            t.record(0, sample_at(o, i * 10));
            t.record(1, sample_at(Outcome::Pass, i * 10));
        }
        assert_eq!(t.checks[0].late_longest_ms, 20_000);
        assert_eq!(t.decide(true), Decision::Verified);
    }

    #[test]
    fn errors_between_failures_do_not_reset_the_failure_run() {
        let mut t = tracker(3, 5);
        t.record(0, s(fail()));
        t.record(0, s(err()));
        t.record(0, s(fail()));
        t.record(0, s(err()));
        assert_eq!(t.decide(false), Decision::Continue);
        t.record(0, s(fail()));
        assert!(matches!(t.decide(false), Decision::Condemned { .. }));
    }

    #[test]
    fn condemnation_wins_over_inconclusive() {
        let mut t = tracker(1, 1);
        t.record(1, s(err()));
        t.record(0, s(fail()));
        assert!(matches!(t.decide(false), Decision::Condemned { .. }));
    }

    #[test]
    fn condemnation_wins_at_window_end() {
        let mut t = tracker(1, 5);
        t.record(0, s(fail()));
        assert!(matches!(t.decide(true), Decision::Condemned { .. }));
    }

    #[test]
    fn samples_are_capped_and_tracker_roundtrips_through_json() {
        let mut t = tracker(3, 5);
        for _ in 0..100 {
            t.record(0, s(Outcome::Pass));
        }
        assert_eq!(t.checks[0].samples.len(), KEPT_SAMPLES);
        assert_eq!(t.checks[0].passes, 100);
        let json = serde_json::to_string(&t).unwrap();
        let back: Tracker = serde_json::from_str(&json).unwrap();
        assert_eq!(back, t);
    }

    #[test]
    fn reconcile_keys_checks_by_name() {
        let mut t = tracker(3, 5);
        t.record(0, s(fail()));
        t.record(1, s(Outcome::Pass));
        let strict = [Rule::Max(0.5)];
        let same = [Rule::Max(1.0)];
        // Reordered, one changed, one added, none removed.
        let notes = t.reconcile(
            [
                ("c", &same[..], 2),
                ("b", &strict[..], 1000),
                ("a", &same[..], 3),
            ],
            5,
        );
        let names: Vec<&str> = t.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert_eq!(t.checks[2].consecutive_failures, 1, "a keeps its run");
        assert_eq!(t.checks[1].passes, 1, "b keeps its counts");
        assert_eq!(t.checks[1].rules, strict);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("added check c")));
        assert!(notes.iter().any(|n| n.contains("changed check b")));
        let notes = t.reconcile([("a", &same[..], 3)], 5);
        assert_eq!(t.checks.len(), 1);
        assert_eq!(notes.len(), 2);
        assert!(t.reconcile([("a", &same[..], 3)], 5).is_empty());
        t.record_named("nope", s(fail()));
        t.record_named("a", s(fail()));
        assert_eq!(t.checks[0].consecutive_failures, 2);
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs)
    }

    #[test]
    fn an_error_run_must_span_min_error_for_not_just_fast_rounds() {
        let mut t = tracker(3, 5);
        t.min_error_for_ms = 40_000;
        // Five errors 2 s apart (the fast cadence): 8 s of blindness is not yet a verdict.
        for i in 0..5 {
            t.record(1, s(err()));
            t.mark_round(at(2 * i));
            assert_eq!(t.decide_at(false, at(2 * i)), Decision::Continue);
        }
        // Still erring 40 s after the run began: inconclusive.
        for i in 5..=20 {
            t.record(1, s(err()));
            t.mark_round(at(2 * i));
            let d = t.decide_at(false, at(2 * i));
            assert_eq!(d == Decision::Continue, i < 20, "round {i}: {d:?}");
        }
        // A pass ends the run: the next error starts a new one.
        t.record(1, s(Outcome::Pass));
        t.mark_round(at(42));
        assert_eq!(t.checks[1].erring_since, None);
        t.record(1, s(err()));
        t.mark_round(at(44));
        assert_eq!(t.checks[1].erring_since, Some(at(44)));
    }

    #[test]
    fn a_blind_check_waits_while_another_confirms_a_failure() {
        let mut t = tracker(3, 1);
        t.record(1, s(err()));
        t.record(0, s(fail()));
        t.mark_round(at(0));
        assert_eq!(
            t.decide_at(false, at(0)),
            Decision::Continue,
            "a is confirming"
        );
        t.record(1, s(err()));
        t.record(0, s(fail()));
        t.mark_round(at(2));
        assert_eq!(t.decide_at(false, at(2)), Decision::Continue);
        t.record(1, s(err()));
        t.record(0, s(fail()));
        t.mark_round(at(4));
        assert!(matches!(
            t.decide_at(false, at(4)),
            Decision::Condemned { .. }
        ));
        // Had a passed instead, b's blindness decides.
        let mut t = tracker(3, 1);
        t.record(1, s(err()));
        t.record(0, s(fail()));
        t.mark_round(at(0));
        assert_eq!(t.decide_at(false, at(0)), Decision::Continue);
        t.record(1, s(err()));
        t.record(0, s(Outcome::Pass));
        t.mark_round(at(2));
        assert!(
            matches!(t.decide_at(false, at(2)), Decision::Inconclusive { ref reason } if reason.contains("check b"))
        );
        // The window's end waits for nothing.
        let mut t = tracker(3, 1);
        t.record(1, s(err()));
        t.record(0, s(fail()));
        t.mark_round(at(0));
        assert!(matches!(
            t.decide_at(true, at(0)),
            Decision::Inconclusive { .. }
        ));
    }

    #[test]
    fn the_run_that_hit_a_limit_is_kept_however_long_it_ran() {
        let at = |secs: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs);
        let mut t = tracker(50, 5);
        t.record(
            0,
            Sample {
                at: at(0),
                ..s(Outcome::Pass)
            },
        );
        for i in 1..=50 {
            let o = if i % 7 == 0 { err() } else { fail() };
            t.record(0, Sample { at: at(i), ..s(o) });
        }
        // 43 failures so far, errors between them: the run started at the first.
        for i in 51..=57 {
            t.record(
                0,
                Sample {
                    at: at(i),
                    ..s(fail())
                },
            );
        }
        assert!(matches!(t.decide(false), Decision::Condemned { .. }));
        let run = t.checks[0].condemning.unwrap();
        assert_eq!((run.from, run.to), (at(1), at(57)));
        assert!(t.checks[0].samples.len() < 57, "beyond the kept samples");
        // An error run: from its first error.
        let mut t = tracker(3, 2);
        t.record(
            1,
            Sample {
                at: at(1),
                ..s(fail())
            },
        );
        t.record(
            1,
            Sample {
                at: at(2),
                ..s(err())
            },
        );
        t.record(
            1,
            Sample {
                at: at(3),
                ..s(err())
            },
        );
        assert!(matches!(t.decide(false), Decision::Inconclusive { .. }));
        let run = t.checks[1].condemning.unwrap();
        assert_eq!((run.from, run.to), (at(2), at(3)));
        // A record written before the run's start was kept: from the samples.
        let mut t = tracker(2, 5);
        t.record(
            0,
            Sample {
                at: at(1),
                ..s(fail())
            },
        );
        t.record(
            0,
            Sample {
                at: at(2),
                ..s(fail())
            },
        );
        t.checks[0].failing_from = None;
        assert!(matches!(t.decide(false), Decision::Condemned { .. }));
        assert_eq!(t.checks[0].condemning.unwrap().from, at(1));
    }

    #[test]
    fn out_of_range_index_is_ignored() {
        let mut t = tracker(1, 1);
        t.record(7, s(fail()));
        assert_eq!(t.decide(false), Decision::Continue);
    }
}
