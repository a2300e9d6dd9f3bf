//! The actor of one watch: takes triggers, runs observation rounds, acts on verdicts.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{new_id, Command, Shared, Trigger};
use crate::checks;
use crate::config::WatchConfig;
use crate::deployer::Deployer;
use crate::judge::observation::{Decision, Sample, Tracker, Verdict, VerdictKind};
use crate::judge::{judge_sample, Outcome};
use crate::metrics::RollbackOutcome;
use crate::sinks::AlertKind;
use crate::status::{ObservationView, RollbackView, WatchState, WatchStatus};
use crate::store::{ObservationKind, ObservationRecord, RollbackRecord, Source, WatchRecord};

pub(super) struct WatchActor {
    pub(super) cfg: Arc<WatchConfig>,
    pub(super) deployer: Deployer,
    pub(super) shared: Shared,
    pub(super) cancel: CancellationToken,
    pub(super) record: WatchRecord,
    pub(super) obs: Option<ObservationRecord>,
    pub(super) rollback: Option<RollbackRecord>,
    /// Liveness for the watchdog; beaten during every step, rested while waiting.
    pub(super) pulse: Arc<super::Pulse>,
    next_round: Option<Instant>,
    /// Per check, the scrape collector of `kind = "scrape"` checks (started in `run`).
    collectors: Vec<Option<checks::scrape::Collector>>,
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The monotonic instant at which a wall-clock time arrives (now if it has passed).
fn instant_at(at: DateTime<Utc>) -> Instant {
    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + wait
}

impl WatchActor {
    pub(super) fn new(
        cfg: Arc<WatchConfig>,
        deployer: Deployer,
        shared: Shared,
        cancel: CancellationToken,
        pulse: Arc<super::Pulse>,
    ) -> Self {
        WatchActor {
            cfg,
            deployer,
            shared,
            cancel,
            pulse,
            record: WatchRecord::default(),
            obs: None,
            rollback: None,
            next_round: None,
            collectors: Vec::new(),
        }
    }

    pub(super) fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The actor loop. Returns on cancellation; everything it needs later is in the store.
    pub(super) async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let checks: Vec<(&str, &[crate::judge::Rule])> = self
            .cfg
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.rules.as_slice()))
            .collect();
        self.shared
            .metrics
            .register_watch(&self.cfg.name, &self.cfg.deployer, &checks);
        // Scrape checks collect from now on, so a deployment finds history to compare with.
        self.collectors = checks::scrape::start(
            &self.cfg,
            &self.shared.http,
            &self.shared.tasks,
            &self.cancel,
        );
        self.pulse.beat();
        if let Err(e) = self.recover().await {
            tracing::error!(watch = %self.name(), error = %e, "cannot read state; watch stays idle");
        }
        self.publish();
        loop {
            self.pulse.rest();
            let next = self.next_round;
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                cmd = rx.recv() => match cmd {
                    Some(c) => {
                        self.pulse.beat();
                        self.on_command(c).await;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now)), if next.is_some() => {
                    self.pulse.beat();
                    self.round().await;
                }
            }
        }
        self.pulse.rest();
        tracing::debug!(watch = %self.name(), "watch actor stopped");
    }

    /// Restores what a previous process left: an observation to resume, a rollback to finish.
    async fn recover(&mut self) -> Result<(), crate::store::StoreError> {
        let store = self.shared.store.clone();
        self.record = store.watch(self.name())?;
        self.rollback = store.latest_rollback(self.name())?;
        if let Some(obs) = store.active_observation(self.name())? {
            let condemned = self
                .rollback
                .as_ref()
                .is_some_and(|r| r.observation_id == obs.id);
            self.obs = Some(obs);
            if condemned {
                // Stopped between persisting the rollback intent and closing the observation.
                self.finish(
                    VerdictKind::Condemned,
                    "condemned before a restart".into(),
                    None,
                );
            } else if let Some(obs) = &self.obs {
                tracing::info!(watch = %self.name(), release = %obs.release, rounds = obs.tracker.rounds, "resuming observation");
                self.shared
                    .metrics
                    .observation_resumed(self.name(), obs.deployed_at.timestamp() as f64);
                self.next_round = Some(instant_at(obs.judging_from));
            }
        }
        if let Some(pending) = store.pending_rollback(self.name())? {
            tracing::warn!(watch = %self.name(), target = %pending.target_release, "resuming an unfinished rollback");
            self.execute_rollback(pending).await;
        }
        Ok(())
    }

    fn state(&self) -> WatchState {
        if self.obs.is_some() {
            WatchState::Observing
        } else {
            self.record.state.unwrap_or(WatchState::Idle)
        }
    }

    /// Persists the watch record (state, releases, verdict) and updates status and metrics.
    pub(super) fn save_record(&mut self) {
        let rec = self.record.clone();
        if let Err(e) = self.shared.store.update_watch(self.name(), |r| *r = rec) {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist watch state");
        }
        self.publish();
    }

    /// Publishes the current status and state metric.
    pub(super) fn publish(&self) {
        let state = self.state();
        self.shared.metrics.set_state(self.name(), state);
        let status = WatchStatus {
            name: self.cfg.name.clone(),
            state,
            current_release: self.record.current_release.clone(),
            last_good_release: self.record.last_good_release.clone(),
            observation: self.obs.as_ref().map(|o| ObservationView {
                id: o.id.clone(),
                release: o.release.clone(),
                version: o.version.clone(),
                deployment_id: o.deployment_id.clone(),
                kind: o.kind.as_str().into(),
                source: o.source.as_str().into(),
                deployed_at: o.deployed_at,
                judging_from: o.judging_from,
                window_ends: o.window_ends,
                rounds: o.tracker.rounds,
                checks: o.tracker.checks.clone(),
            }),
            last_verdict: self.record.last_verdict.clone(),
            rollback: self.rollback.as_ref().map(rollback_view),
            attention: self.record.attention.clone(),
        };
        self.shared.status.set(status);
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Pause => {
                tracing::warn!(watch = %self.name(), "watch paused by operator");
                if self.obs.is_some() {
                    self.finish(
                        VerdictKind::Superseded,
                        "observation stopped: watch paused".into(),
                        None,
                    );
                }
                self.record.state = Some(WatchState::Paused);
                self.save_record();
                let release = self.record.current_release.clone().unwrap_or_default();
                self.alert(
                    AlertKind::Paused,
                    &release,
                    &format!(
                        "watch {} paused by an operator: deployments are recorded, not observed",
                        self.cfg.name
                    ),
                    None,
                );
            }
            Command::Resume => {
                if self.record.state == Some(WatchState::Paused) {
                    tracing::info!(watch = %self.name(), "watch resumed by operator");
                    self.record.state = Some(WatchState::Idle);
                    self.save_record();
                }
            }
            Command::Deploy(t) => self.on_deployment(t).await,
        }
    }

    /// A deployment was announced, delivered or discovered.
    async fn on_deployment(&mut self, t: Trigger) {
        let store = &self.shared.store;
        if let Some(dep) = &t.deployment_id {
            match store.deployment_known(self.name(), dep) {
                Ok(true) => {
                    tracing::debug!(watch = %self.name(), deployment = %dep, "deployment already handled; ignoring");
                    return;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(watch = %self.name(), error = %e, "cannot check deployment history")
                }
            }
            // The same deployment announced earlier without its id: attach it, do not restart.
            if let Some(obs) = self.obs.as_mut() {
                if obs.deployment_id.is_none() && obs.release == t.release {
                    obs.deployment_id = Some(dep.clone());
                    let obs = obs.clone();
                    if let Err(e) = self.shared.store.save_observation(&obs) {
                        tracing::error!(watch = %self.name(), error = %e, "cannot persist observation");
                    }
                    self.publish();
                    return;
                }
            }
        }
        if self.record.state == Some(WatchState::Paused) {
            tracing::warn!(watch = %self.name(), release = %t.release, "watch is paused; deployment recorded, not observed");
            if let Some(dep) = &t.deployment_id {
                let _ = self.shared.store.mark_deployment_seen(self.name(), dep);
            }
            self.record.current_release = Some(t.release);
            self.save_record();
            return;
        }
        if self.obs.is_some() {
            self.finish(
                VerdictKind::Superseded,
                format!("superseded by a newer deployment of {}", t.release),
                None,
            );
        }
        let deployed_at = self.deployed_at(&t).await;
        let rollback_safe = match t.rollback_safe {
            Some(s) => Some(s),
            None => match self.deployer.rollback_safe(&t.release, &self.cancel).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(watch = %self.name(), release = %t.release, error = %e, "cannot tell whether the release is safe to roll back from");
                    None
                }
            },
        };
        self.start_observation(t, deployed_at, ObservationKind::Deployment, rollback_safe);
    }

    /// When the deployment started: the trigger's time, else the deployer's record of a
    /// webhook-delivered deployment (the event time is when it *finished*), else now.
    async fn deployed_at(&self, t: &Trigger) -> DateTime<Utc> {
        if t.source == Source::Webhook {
            if let Some(dep) = &t.deployment_id {
                match self.deployer.deployment_started(dep).await {
                    Some(created) if created > DateTime::<Utc>::UNIX_EPOCH => return created,
                    _ => {
                        tracing::warn!(watch = %self.name(), deployment = %dep, "cannot read the deployment's start; using the event time")
                    }
                }
            }
        }
        t.deployed_at.unwrap_or_else(Utc::now)
    }

    pub(super) fn start_observation(
        &mut self,
        t: Trigger,
        deployed_at: DateTime<Utc>,
        kind: ObservationKind,
        rollback_safe: Option<bool>,
    ) {
        // A deployment learned late (after downtime, a slow webhook) still gets a full window
        // of samples; one from the future (clock skew) starts now.
        let now = Utc::now();
        let deployed_at = deployed_at.min(now);
        let judging_from = (deployed_at + to_chrono(self.cfg.warmup)).max(now);
        let tracker = Tracker::new(
            self.cfg
                .checks
                .iter()
                .map(|c| (c.name.as_str(), c.rules.as_slice(), c.failure_limit)),
            self.cfg.error_limit,
        );
        let obs = ObservationRecord {
            id: new_id("obs"),
            watch: self.cfg.name.clone(),
            release: t.release.clone(),
            version: t.version.clone(),
            deployment_id: t.deployment_id.clone(),
            kind,
            source: t.source,
            deployed_at,
            judging_from,
            window_ends: judging_from + to_chrono(self.cfg.window),
            rollback_safe,
            tracker,
        };
        tracing::info!(
            watch = %self.name(), release = %obs.release, deployment = ?obs.deployment_id,
            source = t.source.as_str(), kind = ?kind, window_ends = %obs.window_ends,
            "observing deployment"
        );
        if let Err(e) = self.shared.store.save_observation(&obs) {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist observation");
        }
        self.shared.metrics.observation_started(
            self.name(),
            t.source.as_str(),
            Utc::now().timestamp() as f64,
        );
        self.next_round = Some(instant_at(judging_from));
        self.record.current_release = Some(t.release);
        if self.record.state != Some(WatchState::Paused) {
            self.record.state = Some(WatchState::Idle);
        }
        self.record.attention = None;
        self.obs = Some(obs);
        self.save_record();
    }

    /// One sample round: baselines if still missing, all checks concurrently, then a decision.
    async fn round(&mut self) {
        let Some(mut obs) = self.obs.take() else {
            self.next_round = None;
            return;
        };
        let http = self.shared.http.clone();
        let cfg = self.cfg.clone();
        let collectors = &self.collectors;
        let baselines =
            futures_util::future::join_all(cfg.checks.iter().enumerate().map(|(i, c)| {
                let http = http.clone();
                let need = obs.tracker.checks[i].baseline.is_none()
                    && c.rules.iter().any(|r| r.needs_baseline());
                let deployed_at = obs.deployed_at;
                let collector = collectors.get(i).and_then(Option::as_ref);
                async move {
                    if need {
                        Some(checks::baseline(&http, &c.probe, deployed_at, collector).await)
                    } else {
                        None
                    }
                }
            }))
            .await;
        let mut baseline_errors = vec![None; cfg.checks.len()];
        for (i, b) in baselines.into_iter().enumerate() {
            match b {
                Some(Ok(v)) => {
                    obs.tracker.checks[i].baseline = v;
                    self.shared
                        .metrics
                        .check_baseline(&cfg.name, &cfg.checks[i].name, v);
                }
                Some(Err(e)) => baseline_errors[i] = Some(format!("baseline unavailable: {e}")),
                None => {}
            }
        }
        let since = obs.deployed_at;
        let readings =
            futures_util::future::join_all(cfg.checks.iter().enumerate().map(|(i, c)| {
                checks::sample(
                    &http,
                    &c.probe,
                    collectors.get(i).and_then(Option::as_ref),
                    since,
                )
            }))
            .await;
        let now = Utc::now();
        for (i, reading) in readings.into_iter().enumerate() {
            let check = &cfg.checks[i];
            let (value, outcome) = match reading {
                Ok(r) => {
                    let outcome = judge_sample(&check.rules, r, obs.tracker.checks[i].baseline);
                    let outcome = match (outcome, &baseline_errors[i]) {
                        (Outcome::Error { .. }, Some(reason)) => Outcome::Error {
                            reason: reason.clone(),
                        },
                        (o, _) => o,
                    };
                    (Some(r.as_f64()), outcome)
                }
                Err(e) => (
                    None,
                    Outcome::Error {
                        reason: e.to_string(),
                    },
                ),
            };
            self.shared
                .metrics
                .check_sample(&cfg.name, &check.name, &outcome, value);
            if let Outcome::Error { reason } = &outcome {
                tracing::debug!(watch = %cfg.name, check = %check.name, %reason, "check error");
            }
            obs.tracker.record(
                i,
                Sample {
                    at: now,
                    value,
                    outcome,
                },
            );
        }
        obs.tracker.end_round();
        let decision = obs.tracker.decide(now >= obs.window_ends);
        self.obs = Some(obs);
        match decision {
            Decision::Continue => {
                if let Some(obs) = &self.obs {
                    if let Err(e) = self.shared.store.save_observation(obs) {
                        tracing::error!(watch = %self.name(), error = %e, "cannot persist observation");
                    }
                }
                self.next_round = self.next_round.map(|t| {
                    let next = t + cfg.interval;
                    next.max(Instant::now())
                });
                self.publish();
            }
            Decision::Verified => self.on_verified(),
            Decision::Inconclusive { reason } => {
                tracing::warn!(watch = %self.name(), %reason, "verdict inconclusive: checks could not judge the release; no action taken");
                let release = self
                    .obs
                    .as_ref()
                    .map(|o| o.release.clone())
                    .unwrap_or_default();
                self.finish(
                    VerdictKind::Inconclusive,
                    reason.clone(),
                    Some("none: inconclusive verdicts never trigger a deployment".into()),
                );
                let ev = self
                    .record
                    .last_verdict
                    .as_ref()
                    .and_then(|v| self.shared.store.evidence(&v.observation_id).ok().flatten());
                self.alert(
                    AlertKind::Inconclusive,
                    &release,
                    &format!("release {release} could not be judged (blind): {reason}"),
                    ev,
                );
            }
            Decision::Condemned { reason } => self.on_condemned(reason).await,
        }
    }

    /// Closes the current observation with a verdict and returns it.
    pub(super) fn finish(
        &mut self,
        kind: VerdictKind,
        summary: String,
        action: Option<String>,
    ) -> Option<Verdict> {
        let obs = self.obs.take()?;
        self.next_round = None;
        let verdict = Verdict {
            verdict: kind,
            release: obs.release.clone(),
            version: obs.version.clone(),
            deployment_id: obs.deployment_id.clone(),
            observation_id: obs.id.clone(),
            decided_at: Utc::now(),
            summary,
            checks: obs.tracker.checks.clone(),
            action,
        };
        if let Err(e) = self.shared.store.finish_observation(&obs.id, &verdict) {
            tracing::error!(watch = %self.name(), error = %e, "cannot persist verdict");
        }
        if kind != VerdictKind::Condemned {
            // Condemned verdicts get their evidence (with the action) from the decision.
            let mut ev = self.evidence_for(&obs);
            ev.verdict = Some(crate::evidence::VerdictFacts {
                verdict: kind,
                decided_at: verdict.decided_at,
                summary: verdict.summary.clone(),
            });
            ev.note(format!("{}: {}", kind.as_str(), verdict.summary));
            self.save_evidence(&ev);
        }
        let secs = (verdict.decided_at - obs.deployed_at).num_milliseconds() as f64 / 1000.0;
        self.shared.metrics.verdict(self.name(), kind, secs);
        self.record.last_verdict = Some(verdict.clone());
        self.save_record();
        Some(verdict)
    }

    /// Closes a condemned observation that needs a human: logged loudly, counted, and the watch
    /// marked failed with the reason in `attention`.
    pub(super) fn escalate(
        &mut self,
        reason: String,
        msg: String,
        outcome: Option<RollbackOutcome>,
    ) {
        tracing::error!(watch = %self.name(), "{msg}");
        if let Some(o) = outcome {
            self.shared.metrics.rollback(self.name(), o);
        }
        self.record.state = Some(WatchState::Failed);
        self.record.attention = Some(msg.clone());
        self.finish(VerdictKind::Condemned, reason, Some(msg));
    }

    fn on_verified(&mut self) {
        let Some(obs) = &self.obs else { return };
        let release = obs.release.clone();
        let version = obs.version.clone();
        tracing::info!(watch = %self.name(), %release, "release verified good");
        match self.shared.store.unquarantine(self.name(), &release) {
            Ok(true) => {
                tracing::info!(watch = %self.name(), %release, "quarantine lifted: the release has now passed a full window")
            }
            Ok(false) => {}
            Err(e) => tracing::error!(watch = %self.name(), error = %e, "cannot update quarantine"),
        }
        self.record.last_good_release = Some(release.clone());
        self.record.last_good_version = version;
        self.record.state = Some(WatchState::Idle);
        self.finish(
            VerdictKind::Verified,
            format!("{release} passed its window without reaching any failure limit"),
            Some("none: release kept and recorded as last good".into()),
        );
    }
}

/// The status view of a deploy intent.
pub(super) fn rollback_view(r: &RollbackRecord) -> RollbackView {
    RollbackView {
        condemned_release: r.condemned_release.clone(),
        target_release: r.target_release.clone(),
        state: serde_json::to_value(r.state)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        deployment_id: r.deployment_id.clone(),
        task_id: r.task_id.clone(),
        detail: r.detail.clone(),
    }
}
