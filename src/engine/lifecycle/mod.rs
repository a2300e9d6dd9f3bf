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
//! Files: this one (events, effects, recovery, pause), `observe` (deployments, rounds,
//! verdicts), `compare` and `control` (rules joined into a round's outcome), `decide` (what to do about a condemned release), `deploy` (intent outcomes and
//! commands), `failed` (deployments that themselves failed: `on_deploy_failure`).

mod compare;
mod control;
mod decide;
mod deploy;
mod failed;
mod observe;
pub mod persist;
mod sample;
mod verdict;

pub use sample::{late, LAG_BOUND};

use chrono::{DateTime, Utc};

use crate::command::CommandResult;
use crate::config::WatchConfig;
use crate::deployer::ExecOutcome;
use crate::evidence::{ActionFacts, DeployFacts, VerdictFacts};
use crate::judge::observation::{Verdict, VerdictKind};
use crate::judge::Reading;
use crate::metrics::RollbackOutcome;
use crate::model::{
    Chosen, CommandPurpose, DeployIntent, ObservationRecord, Source, WatchRecord, WatchState,
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
    /// `Some`: the deployment failed, with what is known about why.
    pub failure: Option<crate::model::DeployFailure>,
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
    /// With a baseline fetched this round: the pre-deployment series it is the mean of,
    /// passed on to the evidence (never kept in the record).
    pub before: Option<crate::model::BeforeSeries>,
    pub reading: Result<Reading, Unmeasured>,
    /// How late backstop itself was around this probe, as the shell measured it: the worst of
    /// the round's timer firing late, the scheduler lag seen while the probe was in flight,
    /// and the probe's timer firing after its timeout. Above [`LAG_BOUND`] a sample without
    /// an answer is backstop's error ([`late`]).
    pub lag: std::time::Duration,
    /// The request rate from the check's `min_traffic` (a prometheus query, or a scrape
    /// check's counter), when it has one.
    pub traffic: Option<Result<f64, String>>,
    /// The sample sets of a `compare` check, fetched this round.
    pub compare: Option<CompareSamples>,
    /// The check's `control_query`, read this round, when it has one.
    pub control: Option<ControlReading>,
}

/// A check's control (`control_query`), as the shell read it.
#[derive(Debug, Clone, PartialEq)]
pub struct ControlReading {
    /// The control, queried at the same time as the check; or why not.
    pub now: Result<f64, String>,
    /// The control's pre-deployment baseline when fetched this round (once per observation,
    /// kept in the check's track from then on); or why not.
    pub baseline: Option<Result<f64, String>>,
}

/// A `compare` check's samples, as the shell fetched them.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSamples {
    /// The pre-deployment samples (oldest first) when fetched this round: once per
    /// observation, kept in the check's track from then on; or why not.
    pub pre: Option<Result<Vec<f64>, String>>,
    /// Every post-deployment sample so far (oldest first): the whole set is re-judged each
    /// round; or why not.
    pub post: Result<Vec<f64>, String>,
}

/// Why a check could not be measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Unmeasured {
    pub reason: String,
    /// The application itself did not answer (connection refused or reset, no answer in
    /// time): an http or scrape check. Telemetry (Prometheus) being down is never this.
    pub app_down: bool,
    /// No answer in time (counted against the app only if backstop was on time).
    pub timed_out: bool,
    /// Measured, and nothing there (empty result, no series, zero denominator): the check's
    /// `no_data` policy decides.
    #[doc(alias = "no_data")]
    pub empty: bool,
}

impl Unmeasured {
    /// Could not measure, for a reason that says nothing about the application.
    pub fn other(reason: impl Into<String>) -> Self {
        Unmeasured {
            reason: reason.into(),
            app_down: false,
            timed_out: false,
            empty: false,
        }
    }
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
    /// Pre-deployment series fetched this round, by check name (with `observation`).
    pub before: Vec<(String, crate::model::BeforeSeries)>,
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
    ObservationStarted { source: Source, failed: bool },
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

/// About how many judged rounds an observation takes (for `backstop status`' progress): one
/// when judging starts, fast ones for `fast_for`, then one every `interval` until the window
/// ends. Confirming a failure adds fast rounds; a verdict may come sooner.
pub fn planned_rounds(cfg: &WatchConfig, obs: &ObservationRecord) -> u64 {
    let window = (obs.window_ends - obs.judging_from)
        .to_std()
        .unwrap_or_default();
    let fast = cfg.fast_for.min(window);
    let every = |d: std::time::Duration, step: std::time::Duration| match step.as_millis() {
        0 => 0,
        ms => d.as_millis().div_ceil(ms) as u64,
    };
    1 + every(fast, cfg.fast_interval) + every(window - fast, cfg.interval)
}

/// Whether the watch samples at its fast cadence at `now` (scrape collectors follow it, so
/// that each fast round judges a fresh scrape).
pub fn samples_fast(cfg: &WatchConfig, record: &WatchRecord, now: DateTime<Utc>) -> bool {
    observe::samples_fast(cfg, record.observation.as_ref(), now)
}

/// One transition in the making.
struct Transition<'a> {
    cfg: &'a WatchConfig,
    r: WatchRecord,
    fx: Vec<Effect>,
    now: DateTime<Utc>,
}

/// `t + d`, saturating: no duration can make the lifecycle panic.
fn after(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    crate::deployer::octopus::protocol::at(t, d)
}

/// `t - d`, saturating.
fn before(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
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
        obs.tracker.min_error_for_ms = self.cfg.min_error_for().as_millis() as u64;
        for t in obs.tracker.checks.iter_mut() {
            if let Some(c) = self.cfg.checks.iter().find(|c| c.name == t.name) {
                t.min_samples = c.min_samples;
                t.min_failure_for_ms = c.min_failure_for.as_millis() as u64;
            }
        }
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
            return self.command_lost(pending);
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
        // Still warming up with http checks: keep probing readiness.
        let at = if self.readiness_checks() {
            self.now
        } else {
            obs.judging_from.max(self.now)
        };
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
        // Nanoseconds: a pause, a resume and a pause again drained from the inbox in one
        // millisecond are two notifications, not one deduplicated by the outbox.
        let id = format!(
            "{}:pause:{}",
            self.cfg.name,
            self.now.timestamp_nanos_opt().unwrap_or_default()
        );
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
}

#[cfg(test)]
mod lag_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
pub(crate) use tests::config as test_config;
