//! The watch lifecycle as a pure state machine: `step(config, record, event, now)` returns
//! the next record and the effects to run. No I/O, no clock, no randomness: the actor (the
//! shell) persists the new record and the effects' durable parts in one transaction, then runs
//! the effects and feeds their results back as events.
//!
//! A watch is idle, observing a release (sample rounds until a verdict), deciding what to do
//! about a condemned release (gathering rollback candidates), carrying out a deploy intent
//! (rollback or retry), running a command, failed (a human must act) or paused. Which one is
//! derived from the record: an open observation, a condemned observation, an active intent, a
//! pending command, and `state` for failed and paused.
//!
//! Delivery rules of the effects that leave the process: a deploy call is exactly once (the
//! intent is persisted first and the deployer's protocol adopts what an earlier attempt made);
//! a command is at most once (recorded as started before it runs; after a crash it is not run
//! again and the watch says it may have run); a notification is at least once, with a stable
//! id (recorded in the outbox with the decision, delivered after the commit).
//!
//! Files: this one (events, effects, deployments, rounds, pause), `decide` (what to do about a
//! condemned release), `deploy` (intent outcomes and commands).

mod decide;
mod deploy;

use chrono::{DateTime, Utc};

use crate::command::CommandResult;
use crate::config::WatchConfig;
use crate::deployer::ExecOutcome;
use crate::evidence::{ActionFacts, DeployFacts, VerdictFacts};
use crate::judge::observation::{Decision, Sample, Tracker, Verdict, VerdictKind};
use crate::judge::{judge_sample, Outcome, Reading};
use crate::metrics::RollbackOutcome;
use crate::model::{
    Chosen, CommandPurpose, DeployIntent, Deployed, ObservationKind, ObservationRecord, Source,
    WatchRecord, WatchState, HISTORY,
};
use crate::sinks::AlertKind;

/// A deployment backstop has learned of, with what the shell could find out about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    /// When it started (the baseline window ends here).
    pub deployed_at: DateTime<Utc>,
    /// Deployer-side creation time, which orders deployments; `None` when unknown.
    pub created: Option<DateTime<Utc>>,
    pub source: Source,
    pub rollback_safe: Option<bool>,
    /// Already handled (observed, made by backstop, or seen while polling).
    pub known: bool,
    /// The id the observation gets (ids are made by the shell: the core has no randomness).
    pub observation_id: String,
}

/// One check's result in a round.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub name: String,
    /// The baseline when it was fetched this round: a value, none, or why not.
    pub baseline: Option<Result<Option<f64>, String>>,
    pub reading: Result<Reading, String>,
}

/// A completed sample round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundResult {
    /// When the round was scheduled (cadence is kept on scheduled times).
    pub scheduled: DateTime<Utc>,
    pub checks: Vec<CheckResult>,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Deployment(Learned),
    Round(RoundResult),
    /// Rollback candidates from the deployer (newest first), asked for by
    /// [`Effect::GatherCandidates`].
    Candidates(Result<Vec<String>, String>),
    /// A deploy intent ended (or was interrupted by shutdown).
    Deployed {
        intent: Box<DeployIntent>,
        outcome: ExecOutcome,
    },
    /// A command asked for by [`Effect::RunCommand`] finished.
    CommandDone(CommandResult),
    Pause,
    Resume,
    /// The actor (re)started: after a crash, a restart or a reload.
    Recovered,
}

/// A change to an observation's evidence document; the shell merges it into the stored one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EvidencePatch {
    pub observation_id: String,
    /// The observation as it stands (checks and deployment facts are refreshed from it).
    pub observation: Option<ObservationRecord>,
    pub verdict: Option<VerdictFacts>,
    pub action: Option<ActionFacts>,
    pub deploy: Option<DeployFacts>,
    pub command: Option<CommandResult>,
    pub notes: Vec<(DateTime<Utc>, String)>,
}

/// A notification. `id` is stable, so a redelivery after a crash can be deduplicated.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub id: String,
    pub kind: AlertKind,
    pub release: String,
    pub summary: String,
    /// The observation whose evidence is attached.
    pub evidence: Option<String>,
}

/// A metric to record.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    Verdict { kind: VerdictKind, seconds: f64 },
    Action(Chosen),
    Rollback(RollbackOutcome),
    ObservationStarted { source: Source },
    DuplicateDeployments(u64),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Take the next sample round at this time.
    Schedule(DateTime<Utc>),
    /// No more rounds.
    Unschedule,
    /// Ask the deployer for rollback candidates; answer with [`Event::Candidates`].
    GatherCandidates,
    /// Carry out the record's intent; answer with [`Event::Deployed`].
    Execute,
    /// Run `[watch.command]`; answer with [`Event::CommandDone`]. Recorded as started first.
    RunCommand(CommandPurpose),
    /// Durable in the commit, then delivered.
    Notify(Notice),
    /// Durable in the commit.
    Evidence(Box<EvidencePatch>),
    /// An observation closed with its verdict (durable in the commit).
    Finished(Box<(ObservationRecord, Verdict)>),
    /// A deployment recorded as handled without being observed (durable in the commit).
    Seen(String),
    Metric(Metric),
    /// A line for the log: (is it a problem a human must see, text).
    Log(Level, String),
}

/// Log severity of [`Effect::Log`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// The transition function.
pub fn step(
    cfg: &WatchConfig,
    record: &WatchRecord,
    event: Event,
    now: DateTime<Utc>,
) -> (WatchRecord, Vec<Effect>) {
    let mut t = Transition {
        cfg,
        r: record.clone(),
        fx: Vec::new(),
        now,
    };
    match event {
        Event::Deployment(l) => t.learned(l),
        Event::Round(r) => t.round(r),
        Event::Candidates(c) => t.candidates(c),
        Event::Deployed { intent, outcome } => t.deployed(*intent, outcome),
        Event::CommandDone(result) => t.command_done(result),
        Event::Pause => t.pause(),
        Event::Resume => t.resume(),
        Event::Recovered => t.recovered(),
    }
    (t.r, t.fx)
}

/// One transition in the making.
struct Transition<'a> {
    cfg: &'a WatchConfig,
    r: WatchRecord,
    fx: Vec<Effect>,
    now: DateTime<Utc>,
}

fn to_chrono(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Transition<'_> {
    fn log(&mut self, level: Level, text: impl Into<String>) {
        self.fx.push(Effect::Log(level, text.into()));
    }

    fn notify(
        &mut self,
        key: &str,
        kind: AlertKind,
        release: &str,
        summary: &str,
        ev: Option<&str>,
    ) {
        if self.cfg.notify.is_empty() {
            return;
        }
        self.fx.push(Effect::Notify(Notice {
            id: format!("{key}:{}", kind.as_str()),
            kind,
            release: release.to_string(),
            summary: summary.to_string(),
            evidence: ev.map(String::from),
        }));
    }

    fn note(&mut self, observation_id: &str, text: impl Into<String>) {
        self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
            observation_id: observation_id.to_string(),
            notes: vec![(self.now, text.into())],
            ..EvidencePatch::default()
        })));
    }

    fn checks(&self) -> impl Iterator<Item = (&str, &[crate::judge::Rule], u32)> {
        self.cfg
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.rules.as_slice(), c.failure_limit))
    }

    /// Brings the open observation's checks in line with the config, by name.
    fn reconcile(&mut self) {
        let Some(mut obs) = self.r.observation.take() else {
            return;
        };
        let checks: Vec<_> = self.checks().collect();
        let notes = obs.tracker.reconcile(checks, self.cfg.error_limit);
        let id = obs.id.clone();
        self.r.observation = Some(obs);
        for n in notes {
            self.log(Level::Info, n.clone());
            self.note(&id, n);
        }
    }

    fn recovered(&mut self) {
        self.reconcile();
        if let Some(pending) = self.r.command.clone() {
            return self.command_lost(pending.purpose);
        }
        if let Some(intent) = self.r.intent.clone() {
            if !intent.state.is_done() {
                self.r.state = Some(WatchState::RollingBack);
                self.log(
                    Level::Warn,
                    format!(
                        "resuming an unfinished {} to {}",
                        intent.kind.as_str(),
                        intent.target_release
                    ),
                );
                self.fx.push(Effect::Execute);
                return;
            }
            if self.r.state == Some(WatchState::RollingBack) {
                // Stopped after the intent ended and before its outcome was acted on.
                if let Some(outcome) = crate::deployer::octopus::protocol::outcome(&intent) {
                    return self.deployed(intent, outcome);
                }
            }
        }
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        if obs.condemned.is_some() {
            self.log(
                Level::Warn,
                format!(
                    "release {} was condemned before a restart; deciding again",
                    obs.release
                ),
            );
            return self.decide(None);
        }
        self.log(
            Level::Info,
            format!(
                "resuming observation of {} (round {})",
                obs.release, obs.tracker.rounds
            ),
        );
        let at = obs.judging_from.max(self.now);
        self.fx.push(Effect::Schedule(at));
    }

    fn pause(&mut self) {
        self.log(Level::Warn, "watch paused by operator");
        if self.r.observation.is_some() {
            self.finish(
                VerdictKind::Superseded,
                "observation stopped: watch paused".into(),
                None,
            );
        }
        self.r.state = Some(WatchState::Paused);
        let release = self.r.current_release.clone().unwrap_or_default();
        let id = format!("{}:pause:{}", self.cfg.name, self.now.timestamp_millis());
        let msg = format!(
            "watch {} paused by an operator: deployments are recorded, not observed, until `backstop resume {}`",
            self.cfg.name, self.cfg.name
        );
        self.notify(&id, AlertKind::Paused, &release, &msg, None);
    }

    fn resume(&mut self) {
        if self.r.state == Some(WatchState::Paused) {
            self.log(Level::Info, "watch resumed by operator");
            self.r.state = Some(WatchState::Idle);
            self.r.attention = None;
        }
    }

    /// The newest deployment creation time backstop knows of for this watch.
    fn newest_created(&self) -> Option<DateTime<Utc>> {
        let obs = self.r.observation.as_ref().and_then(|o| o.created);
        let seen = self.r.deployed.iter().filter_map(|d| d.created).max();
        obs.max(seen)
    }

    fn learned(&mut self, l: Learned) {
        if l.known {
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
            // The same deployment announced earlier without its id: attach it, do not restart.
            if obs.deployment_id.is_none() && obs.release == l.release && obs.condemned.is_none() {
                obs.deployment_id = Some(dep.clone());
                obs.created = obs.created.or(l.created);
                return;
            }
        }
        if let (Some(created), Some(newest)) = (l.created, self.newest_created()) {
            if created < newest {
                if let Some(dep) = &l.deployment_id {
                    self.fx.push(Effect::Seen(dep.clone()));
                }
                return self.log(Level::Warn, format!(
                    "deployment {} of {} (created {created}) is older than the newest known ({newest}); recorded and ignored",
                    l.deployment_id.as_deref().unwrap_or("(no id)"), l.release
                ));
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
        self.observe(l, ObservationKind::Deployment);
    }

    /// Remembers a deployment for ordering and the irreversibility guard.
    fn remember(&mut self, l: &Learned) {
        self.r.deployed.push_back(Deployed {
            release: l.release.clone(),
            deployment_id: l.deployment_id.clone(),
            created: l.created,
            rollback_safe: l.rollback_safe,
        });
        while self.r.deployed.len() > HISTORY {
            self.r.deployed.pop_front();
        }
    }

    /// Opens an observation. A deployment learned late still gets a full window of samples;
    /// one from the future (clock skew) starts now.
    fn observe(&mut self, l: Learned, kind: ObservationKind) {
        let deployed_at = l.deployed_at.min(self.now);
        let judging_from = (deployed_at + to_chrono(self.cfg.warmup)).max(self.now);
        let tracker = Tracker::new(self.checks(), self.cfg.error_limit);
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
            window_ends: judging_from + to_chrono(self.cfg.window),
            rollback_safe: l.rollback_safe,
            tracker,
            condemned: None,
            created: l.created,
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
        }));
        self.fx.push(Effect::Schedule(judging_from));
        self.r.current_release = Some(l.release);
        if self.r.state != Some(WatchState::Paused) {
            self.r.state = Some(WatchState::Idle);
        }
        self.r.attention = None;
        self.r.observation = Some(obs);
    }

    fn round(&mut self, round: RoundResult) {
        match &self.r.observation {
            Some(o) if o.condemned.is_none() => {}
            _ => return,
        }
        self.reconcile();
        let Some(mut obs) = self.r.observation.take() else {
            return;
        };
        for c in round.checks {
            let Some(track) = obs.tracker.check_mut(&c.name) else {
                continue; // a check removed by a reload while its round ran
            };
            let mut baseline_error = None;
            match c.baseline {
                Some(Ok(v)) => track.baseline = v,
                Some(Err(e)) => baseline_error = Some(format!("baseline unavailable: {e}")),
                None => {}
            }
            let (value, outcome) = match c.reading {
                Ok(r) => {
                    let outcome = match (
                        judge_sample(&track.rules, r, track.baseline),
                        baseline_error,
                    ) {
                        (Outcome::Error { .. }, Some(reason)) => Outcome::Error { reason },
                        (o, _) => o,
                    };
                    (Some(r.as_f64()), outcome)
                }
                Err(reason) => (None, Outcome::Error { reason }),
            };
            obs.tracker.record_named(
                &c.name,
                Sample {
                    at: self.now,
                    value,
                    outcome,
                },
            );
        }
        obs.tracker.end_round();
        let decision = obs.tracker.decide(self.now >= obs.window_ends);
        let next = (round.scheduled + to_chrono(self.cfg.interval)).max(self.now);
        self.r.observation = Some(obs);
        match decision {
            Decision::Continue => self.fx.push(Effect::Schedule(next)),
            Decision::Verified => self.verified(),
            Decision::Inconclusive { reason } => self.inconclusive(reason),
            Decision::Condemned { reason } => self.condemned(reason),
        }
    }

    fn verified(&mut self) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        let release = obs.release.clone();
        self.log(Level::Info, format!("release {release} verified good"));
        if self.r.quarantined.remove(&release).is_some() {
            self.log(
                Level::Info,
                format!("quarantine of {release} lifted: it has now passed a full window"),
            );
        }
        self.r.last_good_release = Some(release.clone());
        self.r.last_good_version = obs.version.clone();
        self.r.state = Some(WatchState::Idle);
        self.finish(
            VerdictKind::Verified,
            format!("{release} passed its window without reaching any failure limit"),
            Some("none: release kept and recorded as last good".into()),
        );
    }

    fn inconclusive(&mut self, reason: String) {
        let Some(obs) = &self.r.observation else {
            return;
        };
        let (release, id) = (obs.release.clone(), obs.id.clone());
        self.log(
            Level::Warn,
            format!(
                "verdict inconclusive: checks could not judge {release}; no action taken: {reason}"
            ),
        );
        self.finish(
            VerdictKind::Inconclusive,
            reason.clone(),
            Some("none: inconclusive verdicts never trigger a deployment".into()),
        );
        let msg = format!("release {release} could not be judged (blind): {reason}");
        self.notify(&id, AlertKind::Inconclusive, &release, &msg, Some(&id));
    }

    /// Closes the open observation with a verdict. Condemned verdicts get their evidence
    /// (with the action) from the decision.
    fn finish(
        &mut self,
        kind: VerdictKind,
        summary: String,
        action: Option<String>,
    ) -> Option<Verdict> {
        let obs = self.r.observation.take()?;
        self.fx.push(Effect::Unschedule);
        let verdict = Verdict {
            verdict: kind,
            release: obs.release.clone(),
            version: obs.version.clone(),
            deployment_id: obs.deployment_id.clone(),
            observation_id: obs.id.clone(),
            decided_at: self.now,
            summary,
            checks: obs.tracker.checks.clone(),
            action,
        };
        if kind != VerdictKind::Condemned {
            self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
                observation_id: obs.id.clone(),
                observation: Some(obs.clone()),
                verdict: Some(VerdictFacts {
                    verdict: kind,
                    decided_at: self.now,
                    summary: verdict.summary.clone(),
                }),
                notes: vec![(self.now, format!("{}: {}", kind.as_str(), verdict.summary))],
                ..EvidencePatch::default()
            })));
        }
        let seconds = (self.now - obs.deployed_at).num_milliseconds() as f64 / 1000.0;
        self.fx
            .push(Effect::Metric(Metric::Verdict { kind, seconds }));
        self.r.last_verdict = Some(verdict.clone());
        self.fx
            .push(Effect::Finished(Box::new((obs, verdict.clone()))));
        Some(verdict)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
pub(crate) use tests::config as test_config;
