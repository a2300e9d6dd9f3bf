//! Deployments learned and sample rounds. What a sample means beyond its rules is in
//! `sample`, the verdicts in `verdict`.

use chrono::{DateTime, Utc};

use super::{after, EvidencePatch, Learned, Level, Metric, RoundResult, Transition};
use crate::config::{Probe, WatchConfig};
use crate::deployer::octopus::protocol::CLOCK_SKEW;
use crate::judge::observation::{Decision, Sample, Tracker, VerdictKind};
use crate::judge::{judge_sample, Outcome};
use crate::model::{Deployed, ObservationKind, ObservationRecord, Source, WatchState, HISTORY};
use crate::sinks::AlertKind;

use super::Effect;

impl Transition<'_> {
    /// The newest deployment creation time backstop knows of for this watch.
    pub(super) fn newest_created(&self) -> Option<DateTime<Utc>> {
        let trusted = |t: &DateTime<Utc>| *t <= self.now + CLOCK_SKEW;
        let obs = self
            .r
            .observation
            .as_ref()
            .and_then(|o| o.created)
            .filter(trusted);
        let seen = self
            .r
            .deployed
            .iter()
            .filter_map(|d| d.created)
            .filter(trusted)
            .max();
        obs.max(seen)
    }

    pub(super) fn learned(&mut self, l: Learned) {
        // The failure of the deployment being observed (announced once in place, then a later
        // step failed): the same deployment, now known to have failed.
        if let (Some(f), Some(obs)) = (&l.failure, self.r.observation.as_mut()) {
            let same = match (&l.deployment_id, &obs.deployment_id) {
                (Some(a), Some(b)) => a == b,
                // Without an id on either side, the release says it.
                (Some(_), None) | (None, _) => obs.release == l.release,
            };
            if same && obs.failure.is_none() && obs.condemned.is_none() {
                obs.deployment_id = obs.deployment_id.take().or(l.deployment_id.clone());
                obs.failure = Some(f.clone());
                return self.deploy_failed();
            }
        }
        if l.known {
            if let Some(f) = &l.failure {
                // Observed and judged already (or made by backstop, whose own failures are
                // reported by its intent): people still learn that it failed.
                let ours = self
                    .r
                    .intent
                    .as_ref()
                    .is_some_and(|i| i.deployment_id == l.deployment_id);
                if !ours {
                    let msg = format!(
                        "deployment {} of {} failed after backstop had handled it: {}; nothing more is done about it",
                        l.deployment_id.as_deref().unwrap_or("(no id)"),
                        l.release,
                        f.summary()
                    );
                    self.log(Level::Warn, msg.clone());
                    self.notify(
                        &l.observation_id,
                        AlertKind::DeployFailed,
                        &l.release,
                        &msg,
                        None,
                    );
                    return;
                }
            }
            return self.log(
                Level::Info,
                format!(
                    "deployment {} already handled; ignoring",
                    l.deployment_id.unwrap_or_default()
                ),
            );
        }
        if let (Some(dep), Some(obs)) = (&l.deployment_id, self.r.observation.as_mut()) {
            if obs.deployment_id.as_ref() == Some(dep) {
                return;
            }
            // The same deployment announced earlier without its id: attach it, do not restart
            // (unless it is plainly an older deployment of the same release).
            let same = l
                .created
                .is_none_or(|c| Some(c) >= obs.deployed_at.checked_sub_signed(CLOCK_SKEW));
            if obs.deployment_id.is_none()
                && obs.release == l.release
                && obs.condemned.is_none()
                && same
            {
                obs.deployment_id = Some(dep.clone());
                obs.created = obs.created.or(l.created);
                return;
            }
        }
        if let (Some(created), Some(newest)) = (self.order_time(&l), self.newest_created()) {
            if created < newest {
                if let Some(dep) = &l.deployment_id {
                    self.fx.push(Effect::Seen(dep.clone()));
                }
                let msg = format!(
                    "deployment {} of {} (created {created}) is older than the newest known ({newest}); recorded and ignored",
                    l.deployment_id.as_deref().unwrap_or("(no id)"), l.release
                );
                if let Some(f) = &l.failure {
                    // Nothing to act on (a newer deployment is in place), but it failed.
                    let told = format!("{msg}; it failed: {}", f.summary());
                    self.notify(
                        &l.observation_id,
                        AlertKind::DeployFailed,
                        &l.release,
                        &told,
                        None,
                    );
                }
                return self.log(Level::Warn, msg);
            }
        }
        self.remember(&l);
        if self.r.state == Some(WatchState::Paused) {
            self.log(
                Level::Warn,
                format!(
                    "watch is paused; deployment of {} recorded, not observed",
                    l.release
                ),
            );
            if let Some(dep) = &l.deployment_id {
                self.fx.push(Effect::Seen(dep.clone()));
            }
            if let Some(f) = &l.failure {
                // People are told even while backstop does nothing about it.
                let msg = format!(
                    "the deployment of {} failed: {}; the watch is paused, so nothing is done about it",
                    l.release,
                    f.summary()
                );
                self.log(Level::Warn, msg.clone());
                self.notify(
                    &l.observation_id,
                    AlertKind::DeployFailed,
                    &l.release,
                    &msg,
                    None,
                );
            }
            self.r.current_release = Some(l.release);
            return;
        }
        if self.r.observation.is_some() {
            self.finish(
                VerdictKind::Superseded,
                format!("superseded by a newer deployment of {}", l.release),
                None,
            );
        }
        let failed = l.failure.is_some();
        self.observe(l, ObservationKind::Deployment);
        if failed {
            self.deploy_failed();
        }
    }

    /// When a deployment was made, on the deployer's clock, for ordering: its creation time,
    /// else a webhook's event time (the deployer's clock too). A time further in the future
    /// than [`CLOCK_SKEW`] is not trusted: one wrong clock must not make every later
    /// deployment look older.
    fn order_time(&self, l: &Learned) -> Option<DateTime<Utc>> {
        let t = l.created.or(match l.source {
            Source::Webhook => Some(l.deployed_at),
            _ => None,
        })?;
        (t <= self.now + CLOCK_SKEW).then_some(t)
    }

    /// Remembers a deployment for ordering and the irreversibility guard.
    pub(super) fn remember(&mut self, l: &Learned) {
        self.r.deployed.push_back(Deployed {
            release: l.release.clone(),
            deployment_id: l.deployment_id.clone(),
            created: l.created,
            deployed_at: Some(l.deployed_at),
            rollback_safe: l.rollback_safe,
        });
        while self.r.deployed.len() > HISTORY {
            self.r.deployed.pop_front();
        }
    }

    /// Opens an observation. A deployment learned late still gets a full window of samples;
    /// one from the future (clock skew) starts now.
    pub(super) fn observe(&mut self, l: Learned, kind: ObservationKind) {
        if self.r.observation.is_some() {
            // Never dropped without a verdict.
            self.finish(
                VerdictKind::Superseded,
                format!("superseded by the {} of {}", kind.as_str(), l.release),
                None,
            );
        }
        let deployed_at = l.deployed_at.min(self.now);
        let judging_from = after(deployed_at, self.cfg.warmup).max(self.now);
        let mut tracker = Tracker::new(self.checks(), self.cfg.error_limit);
        tracker.min_error_for_ms = self.cfg.min_error_for().as_millis() as u64;
        for (t, c) in tracker.checks.iter_mut().zip(&self.cfg.checks) {
            t.min_samples = c.min_samples;
            t.min_failure_for_ms = c.min_failure_for.as_millis() as u64;
        }
        // The deployment before this one (remembered just before), if it was condemned: this
        // release's look-back must not be judged by it, and its baseline ends where it began.
        let n = self.r.deployed.len();
        let previous = (n >= 2)
            .then(|| &self.r.deployed[n - 2])
            .filter(|d| d.release != l.release && self.r.quarantined.contains_key(&d.release));
        let previous_condemned = previous.map(|d| d.release.clone());
        let baseline_until = previous.and_then(|d| d.deployed_at);
        let obs = ObservationRecord {
            id: l.observation_id,
            watch: self.cfg.name.clone(),
            release: l.release.clone(),
            version: l.version,
            deployment_id: l.deployment_id,
            kind,
            source: l.source,
            deployed_at,
            judging_from,
            window_ends: after(judging_from, self.cfg.window),
            rollback_safe: l.rollback_safe,
            tracker,
            condemned: None,
            created: l.created,
            previous_condemned,
            baseline_until,
            failure: l.failure.clone(),
            cause: Default::default(),
            unjudged: false,
        };
        self.log(
            Level::Info,
            format!(
                "observing {} of {} ({}), window ends {}",
                kind.as_str(),
                obs.release,
                l.source.as_str(),
                obs.window_ends
            ),
        );
        self.fx.push(Effect::Metric(Metric::ObservationStarted {
            source: l.source,
            failed: l.failure.is_some(),
        }));
        let first = self.first_round_at(judging_from);
        self.fx.push(Effect::Schedule(first));
        self.r.current_release = Some(l.release);
        if self.r.state != Some(WatchState::Paused) {
            self.r.state = Some(WatchState::Idle);
        }
        self.r.attention = None;
        self.r.observation = Some(obs);
    }

    /// When an observation judging from `judging_from` takes its first round. With http
    /// checks, readiness is probed from the start: judging begins as soon as every http check
    /// passes once (the release is up), at the latest after `warmup`.
    fn first_round_at(&self, judging_from: DateTime<Utc>) -> DateTime<Utc> {
        if self.readiness_checks() {
            self.now
        } else {
            judging_from.max(self.now)
        }
    }

    /// The first round of the open observation, taken now or when judging starts.
    pub(super) fn first_round(&self) -> DateTime<Utc> {
        let from = self
            .r
            .observation
            .as_ref()
            .map_or(self.now, |o| o.judging_from);
        self.first_round_at(from)
    }

    /// Whether the watch has http checks, whose passing marks the release as up.
    pub(super) fn readiness_checks(&self) -> bool {
        self.cfg
            .checks
            .iter()
            .any(|c| matches!(c.probe, Probe::Http { .. }))
    }

    /// The baseline a check's ratio rules judge against: at least its `baseline_floor`.
    fn floored(&self, check: &str, baseline: Option<f64>) -> Option<f64> {
        let floor = self
            .cfg
            .checks
            .iter()
            .find(|c| c.name == check)
            .and_then(|c| c.baseline_floor);
        match (baseline, floor) {
            // A NaN baseline (nothing measured before) counts as the floor too.
            (Some(b), Some(f)) if b.is_nan() || b < f => Some(f),
            (b, _) => b,
        }
    }

    pub(super) fn round(&mut self, round: RoundResult) {
        if self
            .r
            .command
            .as_ref()
            .is_some_and(|c| c.purpose == crate::model::CommandPurpose::DeployFailed)
        {
            // The policy has not acted yet: nothing is judged before the hook ended.
            return;
        }
        match &self.r.observation {
            Some(o) if o.condemned.is_none() => {}
            _ => return,
        }
        self.reconcile();
        let Some(mut obs) = self.r.observation.take() else {
            return;
        };
        if self.now < obs.judging_from {
            // Warming up: `warmup` is the longest wait. Ready (every http check passed) ends
            // it now; otherwise nothing of this round is judged (a release answering 503 while
            // it starts is never rolled back for it).
            let http: Vec<&str> = self
                .cfg
                .checks
                .iter()
                .filter(|c| matches!(c.probe, Probe::Http { .. }))
                .map(|c| c.name.as_str())
                .collect();
            let ready = !http.is_empty()
                && http.iter().all(|name| {
                    round.checks.iter().any(|c| {
                        c.name == *name
                            && matches!(&c.reading, Ok(r) if self.cfg.checks.iter().any(|k| k.name == *name && judge_sample(&k.rules, r, None) == Outcome::Pass))
                    })
                });
            if !ready {
                let next = after(round.scheduled, self.cfg.fast_interval)
                    .max(self.now)
                    .min(obs.judging_from);
                self.r.observation = Some(obs);
                self.fx.push(Effect::Schedule(next));
                return;
            }
            let early = obs.judging_from - self.now;
            obs.judging_from = self.now;
            obs.window_ends = after(self.now, self.cfg.window);
            let id = obs.id.clone();
            self.note(
                &id,
                format!(
                    "ready: every http check passed; judging starts {}s before the end of warmup",
                    early.num_seconds()
                ),
            );
        }
        let mut before = Vec::new();
        for c in round.checks {
            let Some(track) = obs.tracker.check_mut(&c.name) else {
                continue; // a check removed by a reload while its round ran
            };
            let mut baseline_error = None;
            match c.baseline {
                Some(Ok(v)) => {
                    track.baseline = v;
                    before.extend(c.before.map(|b| (c.name.clone(), b)));
                }
                Some(Err(e)) => baseline_error = Some(format!("baseline unavailable: {e}")),
                None => {}
            }
            let app_down = matches!(&c.reading, Err(u) if u.app_down);
            let (value, note, alerts) = match &c.reading {
                Ok(r) => (Some(r.as_f64()), r.note(), r.alerts()),
                Err(_) => (None, None, Vec::new()),
            };
            let outcome = match c.reading {
                Ok(r) => match (
                    judge_sample(&track.rules, &r, self.floored(&c.name, track.baseline)),
                    baseline_error,
                ) {
                    (Outcome::Error { .. }, Some(reason)) => Outcome::Error {
                        reason,
                        late: false,
                    },
                    (o, _) => o,
                },
                Err(u) => self.unmeasured(&c.name, u, c.lag),
            };
            let outcome = self.compared(track, c.compare, outcome);
            let outcome = self.controlled(track, value, c.control, outcome);
            let outcome = self.traffic(&c.name, outcome, c.traffic, app_down);
            let (outcome, mixed) = self.look_back(&obs, &c.name, outcome);
            obs.tracker.record_named(
                &c.name,
                Sample {
                    at: self.now,
                    value,
                    outcome,
                    mixed,
                    note,
                    alerts,
                },
            );
        }
        obs.tracker.end_round();
        obs.tracker.mark_round(round.scheduled);
        let decision = obs
            .tracker
            .decide_at(self.now >= obs.window_ends, round.scheduled);
        // Every judged round extends the evidence (its charts show the whole observation).
        self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
            observation_id: obs.id.clone(),
            observation: Some(obs.clone()),
            before,
            ..EvidencePatch::default()
        })));
        self.r.observation = Some(obs);
        let cadence = if samples_fast(self.cfg, self.r.observation.as_ref(), self.now) {
            self.cfg.fast_interval
        } else {
            self.cfg.interval
        };
        let next = after(round.scheduled, cadence).max(self.now);
        match decision {
            Decision::Continue => self.fx.push(Effect::Schedule(next)),
            Decision::Verified => self.verified(),
            Decision::Inconclusive { reason } => self.inconclusive(reason),
            Decision::Condemned { reason } => self.condemned(reason),
        }
    }
}

/// Whether rounds are taken at the fast cadence at `now`: while warming up, for `fast_for`
/// after judging starts (when a bad release does most harm), and while a failure is confirmed.
pub(super) fn samples_fast(
    cfg: &WatchConfig,
    obs: Option<&ObservationRecord>,
    now: DateTime<Utc>,
) -> bool {
    let Some(obs) = obs else {
        return false;
    };
    let confirming = obs
        .tracker
        .checks
        .iter()
        .any(|t| t.consecutive_failures > 0);
    confirming || now < after(obs.judging_from, cfg.fast_for)
}
