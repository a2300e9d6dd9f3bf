//! The actor of one watch: the thin shell around [`super::lifecycle`].
//!
//! It turns commands, timers and effect results into events, steps the lifecycle, commits the
//! new record with the transition's durable effects in one transaction, and only then runs the
//! effects that leave the process. It never decides anything itself.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::lifecycle::{self, Effect, Event, Level};
use super::{Command, Shared};
use crate::checks;
use crate::config::WatchConfig;
use crate::deployer::Deployer;
use crate::model::{DeployIntent, WatchRecord};
use crate::status::{ObservationView, RollbackView, WatchStatus};
use crate::store::Commit;

pub(super) struct WatchActor {
    pub(super) cfg: Arc<WatchConfig>,
    pub(super) deployer: Deployer,
    pub(super) shared: Shared,
    pub(super) cancel: CancellationToken,
    /// The lifecycle's state, as last committed.
    pub(super) record: WatchRecord,
    /// Liveness for the watchdog; beaten during every step, rested while waiting.
    pub(super) pulse: Arc<super::Pulse>,
    /// When the next sample round is due: (monotonic instant, scheduled wall time).
    next_round: Option<(Instant, DateTime<Utc>)>,
    /// Per check name, the scrape collector of `kind = "scrape"` checks (started in `run`).
    pub(super) collectors: Vec<(String, Option<checks::scrape::Collector>)>,
    /// The inbox row the event being handled came from: deleted by the commit that handles it.
    inbox_seq: Option<i64>,
    /// In a fleet, the lease epoch this actor was started under: it acts and commits only
    /// while this node still holds the watch under that epoch. `None` on a single node.
    pub(super) epoch: Option<i64>,
    /// Routine transitions stepped since the record was last written (see
    /// [`lifecycle::persist`]): the stored record is at most this many rounds behind.
    unsaved: u32,
    /// A commit failed since the last one that succeeded: it may still have landed (its answer
    /// lost), so the stored watch row may differ from `record`, and the next write is a whole
    /// one, never a routine checkpoint (which leaves the watch row as it is).
    unsure: bool,
    /// The answer of the last routine checkpoint, not awaited when it was handed to the writer
    /// (see `handle`): settled before the next write, which is a whole one if it failed.
    pending: Option<PendingWrite>,
    /// The evidence document of the open observation as last committed, without its series:
    /// what the next transition's patch merges into. The actor is the document's only writer,
    /// so this saves reading it back from the store (a blocking call on a worker thread) at
    /// every commit. `None` while idle, so an idle watch keeps no document.
    pub(super) evidence_doc: Option<Box<crate::evidence::Evidence>>,
}

/// How often the actor looks for inbox triggers and outbox notifications it has not handled
/// (a nudge lost to a full queue, a delivery that failed).
const HOUSEKEEPING: Duration = Duration::from_secs(30);

/// Where in [`HOUSEKEEPING`]'s period the watch named `name` does its housekeeping: fixed per
/// name (so a restart keeps it), spread evenly over the period across names.
fn spread(name: &str) -> Duration {
    use std::hash::{Hash, Hasher};
    // SipHash with fixed keys: the same offset in every process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut h);
    let period = HOUSEKEEPING.as_millis() as u64;
    Duration::from_millis(h.finish() % period.max(1))
}

/// The writer's answer to a routine checkpoint, awaited later.
type PendingWrite = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(), crate::store::StoreError>> + Send + Sync>,
>;

/// The monotonic instant at which a wall-clock time arrives (now if it has passed).
fn instant_at(at: DateTime<Utc>) -> Instant {
    let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    let now = Instant::now();
    now.checked_add(wait)
        .unwrap_or_else(|| now + crate::config::MAX_DURATION)
}

impl WatchActor {
    pub(super) fn new(
        cfg: Arc<WatchConfig>,
        deployer: Deployer,
        shared: Shared,
        cancel: CancellationToken,
        pulse: Arc<super::Pulse>,
    ) -> Self {
        let epoch = shared.leases.get(&cfg.name).map(|h| h.epoch);
        WatchActor {
            deployer,
            shared,
            cancel,
            pulse,
            record: WatchRecord::default(),
            next_round: None,
            collectors: Vec::new(),
            inbox_seq: None,
            epoch,
            unsaved: 0,
            unsure: false,
            pending: None,
            evidence_doc: None,
            cfg,
        }
    }

    /// Whether this actor may still act for its watch: always on a single node; in a fleet,
    /// while this node holds the lease it was started under and has renewed it lately.
    pub(super) fn may_act(&self) -> bool {
        self.shared.leases.may_act_as(&self.cfg.name, self.epoch)
    }

    pub(super) fn name(&self) -> &str {
        &self.cfg.name
    }

    /// The actor loop. Returns on cancellation; everything it needs later is in the store.
    /// The actor is boxed: a future keeps its by-value arguments twice (as given, and as
    /// moved into its body), and a watch's task lives as long as the watch.
    pub(super) async fn run(mut self: Box<Self>, rx: mpsc::Receiver<Command>) {
        let checks: Vec<(&str, &[crate::judge::Rule])> = self
            .cfg
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.rules.as_slice()))
            .collect();
        self.shared
            .metrics
            .register_watch(&self.cfg.name, &self.cfg.deployer, &checks);
        // Scrape checks collect from now on (continuing from their stored history), so a
        // deployment finds history to compare with.
        let collectors = Box::pin(checks::scrape::start(
            &self.cfg,
            &self.shared.http,
            &self.shared.store,
            &self.shared.tasks,
            &self.cancel,
        ))
        .await;
        self.collectors = self
            .cfg
            .checks
            .iter()
            .map(|c| c.name.clone())
            .zip(collectors.list.iter().cloned())
            .collect();
        self.serve(rx).await;
        Box::pin(self.checkpoint()).await;
        // The next actor of this watch (after a reload) starts once this one has returned: it
        // must find the history its collectors saved last.
        collectors.stop().await;
        tracing::debug!(watch = %self.name(), "watch actor stopped");
    }

    /// Everything the actor does between starting its collectors and stopping them. Its
    /// future is the watch's memory while idle (it lives as long as the watch runs): every
    /// branch that does real work (a round, a command, a deploy) is boxed, allocated only
    /// while it runs, so the idle future holds little more than its timers.
    async fn serve(&mut self, mut rx: mpsc::Receiver<Command>) {
        if self.cancel.is_cancelled() {
            // Replaced or removed before it started: the next actor (if any) resumes.
            return;
        }
        self.pulse.beat();
        // Nothing is handled before the state is read: acting on an empty record would forget
        // the quarantine and abandon an unfinished intent. Commands wait in the channel and
        // triggers in the inbox meanwhile.
        loop {
            // The read's result is gone before the wait: a record held across it would be
            // part of this future (and of every idle watch's memory).
            // Boxed, like every rarely taken branch of this future (an idle actor's size); the
            // result is matched in place, never a local that would live across the wait.
            let name = self.name().to_string();
            let e = match Box::pin(self.shared.store.blocking(move |s| s.load_watch(&name))).await {
                Ok(r) => {
                    self.record = r;
                    break;
                }
                Err(e) => e,
            };
            tracing::error!(watch = %self.name(), error = %e, "cannot read state; retrying before handling anything");
            drop(e);
            self.pulse.rest();
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            self.pulse.beat();
        }
        Box::pin(self.redeliver()).await;
        if let Some(o) = &self.record.observation {
            self.shared
                .metrics
                .observation_resumed(self.name(), o.deployed_at.timestamp() as f64);
        }
        Box::pin(self.handle(Event::Recovered)).await;
        Box::pin(self.drain_inbox()).await;
        self.publish();
        // Each watch's housekeeping at its own offset in the period: started together, every
        // actor ticked in the same instant, and thousands of store reads at once starved the
        // rounds of CPU (the collapse 30 s into the scale benchmark, bench/RESULTS.md).
        let mut housekeeping =
            tokio::time::interval_at(Instant::now() + spread(self.name()), HOUSEKEEPING);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.pulse.rest();
            let next = self.next_round;
            let waiting_since = Instant::now();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                _ = housekeeping.tick() => {
                    self.pulse.beat();
                    Box::pin(self.redeliver()).await;
                    Box::pin(self.drain_inbox()).await;
                }
                cmd = rx.recv() => match cmd {
                    Some(c) => {
                        self.pulse.beat();
                        Box::pin(self.on_command(c)).await;
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(next.map(|n| n.0).unwrap_or_else(Instant::now)), if next.is_some() => {
                    self.pulse.beat();
                    let scheduled = next.map(|n| n.1).unwrap_or_else(Utc::now);
                    // Scheduler lag only: a round due while the actor was busy elsewhere
                    // starts late, but its timer did not fire late.
                    let due = next.map_or(waiting_since, |n| n.0).max(waiting_since);
                    let timer_lag = Instant::now().saturating_duration_since(due);
                    self.next_round = None;
                    Box::pin(async {
                        let round = self.round(scheduled, timer_lag).await;
                        self.handle(Event::Round(round)).await;
                    })
                    .await;
                }
            }
        }
        self.pulse.rest();
    }

    async fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Inbox => self.drain_inbox().await,
            Command::Deploy(t) => {
                let learned = self.learn(*t).await;
                self.handle(Event::Deployment(learned)).await;
            }
        }
    }

    /// Handles the triggers committed to this watch's inbox, oldest first; each row is deleted
    /// by the commit of its transition. Stops at a failed commit (the row stays for later).
    async fn drain_inbox(&mut self) {
        let name = self.name().to_string();
        let items = match self.shared.store.blocking(move |s| s.inbox(&name)).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(watch = %self.name(), error = %e, "cannot read the inbox");
                return;
            }
        };
        for (seq, item) in items {
            if self.cancel.is_cancelled() {
                return;
            }
            self.pulse.beat();
            let event = match item {
                super::Inbound::Deploy(trigger) => {
                    let learned = self.learn(*trigger).await;
                    self.pulse.beat();
                    Event::Deployment(learned)
                }
                super::Inbound::Control { control } => match control {
                    super::Control::Pause => Event::Pause,
                    super::Control::Resume => Event::Resume,
                },
            };
            self.inbox_seq = Some(seq);
            self.handle(event).await;
            if self.inbox_seq.take().is_some() {
                return; // not committed: try again later
            }
        }
    }

    /// Steps the lifecycle with `event` and every event its effects produce.
    pub(super) async fn handle(&mut self, event: Event) {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = Utc::now();
            // The core is pure and tested not to panic; if it ever does, one event is lost,
            // not the watch (and an inbox trigger that caused it is dropped, not replayed
            // into a crash loop).
            let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                lifecycle::step(&self.cfg, &self.record, event, now)
            }));
            let (next, effects) = match stepped {
                Ok(r) => r,
                Err(_) => {
                    tracing::error!(watch = %self.name(), "BUG: the lifecycle panicked; the event is dropped");
                    if let Some(seq) = self.inbox_seq.take() {
                        let done = self.shared.store.submit(
                            self.name(),
                            &Commit {
                                inbox_done: Some(seq),
                                epoch: self.epoch,
                                ..Commit::default()
                            },
                        );
                        let _ = done.await;
                    }
                    break;
                }
            };
            // A transition that changes nothing stored is not written (an idle watch starting).
            if self.inbox_seq.is_none()
                && lifecycle::persist::unchanged(&self.record, &next, &effects)
            {
                self.advance(next, effects, Vec::new(), &mut queue, now)
                    .await;
                continue;
            }
            // A round of checks that all keep passing is written only every few rounds: a
            // crash loses at most that many rounds of pass counts, never a run, a verdict or
            // an intent (lifecycle::persist says exactly what may wait).
            // A routine checkpoint that failed is noticed at the next round, not 18 later.
            self.poll_pending();
            let routine = self.inbox_seq.is_none()
                && !self.unsure
                && lifecycle::persist::routine(&self.record, &next, &effects);
            if routine && self.unsaved + 1 < lifecycle::persist::CHECKPOINT_ROUNDS && self.may_act()
            {
                self.unsaved += 1;
                self.advance(next, effects, Vec::new(), &mut queue, now)
                    .await;
                continue;
            }
            // The last routine checkpoint's answer first: if it failed, this write is whole.
            self.settle().await;
            let routine = routine && !self.unsure;
            let (evidence, outbox) = self.durable_parts(&next, &effects).await;
            let inbox_done = self.inbox_seq.take();
            let mut commit = Commit {
                inbox_done,
                record: Some(&next),
                finished: effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Finished(f) => Some((**f).clone()),
                        _ => None,
                    })
                    .collect(),
                evidence,
                outbox: outbox.clone(),
                seen: effects
                    .iter()
                    .filter_map(|e| match e {
                        Effect::Seen(d) => Some(d.clone()),
                        _ => None,
                    })
                    .collect(),
                durable: next.intent != self.record.intent
                    || next.command != self.record.command
                    || !outbox.is_empty(),
                routine,
                epoch: self.epoch,
            };
            // A routine checkpoint gates nothing (no intent, command, notification or state
            // change rides on it), so the round does not wait for the disk: it is handed to
            // the writer (which keeps this watch's writes in order) and its answer settled
            // before the next write. Awaited, a thousand checkpoints falling due in the same
            // second held a thousand watches' next rounds behind the writer's fsyncs.
            if routine && self.may_act() {
                self.pending = Some(Box::pin(self.shared.store.submit(self.name(), &commit)));
                self.unsaved = 0;
                let docs = std::mem::take(&mut commit.evidence);
                self.remember_evidence(docs, &next);
                self.advance(next, effects, outbox, &mut queue, now).await;
                continue;
            }
            // In a fleet, nothing is committed once this actor's tenure may have ended (the
            // lease lapsed by this node's clock, or was lost): the next owner resumes from the
            // last commit. The store's fence refuses it too; this also covers an actor of an
            // earlier tenure of this node.
            let mut committed = if self.may_act() {
                self.shared.store.submit(self.name(), &commit).await
            } else {
                Err(crate::store::StoreError::Fenced {
                    watch: self.name().to_string(),
                })
            };
            for pause in [100, 1000] {
                let fenced = matches!(committed, Err(crate::store::StoreError::Fenced { .. }));
                if committed.is_ok() || fenced || self.cancel.is_cancelled() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(pause)).await;
                committed = self.shared.store.submit(self.name(), &commit).await;
            }
            if let Err(e) = committed {
                // Nothing that leaves the process runs without its durable record: keep the
                // last committed state and try again at the next round.
                tracing::error!(watch = %self.name(), error = %e, "cannot persist a transition; it is not acted on");
                self.inbox_seq = inbox_done;
                // A failed commit may still have landed (its answer lost with the
                // connection): the stored evidence is read again rather than trusted, and
                // the next write is a whole one.
                self.evidence_doc = None;
                self.unsure = true;
                if self.record.observation.is_some() {
                    let at = Utc::now()
                        + chrono::Duration::from_std(self.cfg.interval).unwrap_or_default();
                    self.next_round = Some((instant_at(at), at));
                }
                break;
            }
            self.unsaved = 0;
            self.unsure = false;
            let docs = std::mem::take(&mut commit.evidence);
            self.remember_evidence(docs, &next);
            self.advance(next, effects, outbox, &mut queue, now).await;
        }
    }

    /// Writes the routine rounds not written yet (on the way out: a shutdown, a reload, a
    /// handover), so a clean stop loses nothing; in a fleet only under this actor's lease.
    async fn checkpoint(&mut self) {
        self.settle().await;
        if self.unsaved == 0 || !self.may_act() {
            return;
        }
        let patch = self.record.observation.as_ref().map(|o| {
            Effect::Evidence(Box::new(lifecycle::EvidencePatch {
                observation_id: o.id.clone(),
                observation: Some(o.clone()),
                ..Default::default()
            }))
        });
        let (evidence, _) = self.durable_parts(&self.record, patch.as_slice()).await;
        let commit = Commit {
            record: Some(&self.record),
            evidence,
            // Only routine rounds are unsaved; after a failed commit, a whole write.
            routine: !self.unsure,
            epoch: self.epoch,
            ..Commit::default()
        };
        let written = self.shared.store.submit(self.name(), &commit).await;
        let docs = commit.evidence;
        match written {
            Ok(()) => {
                self.unsaved = 0;
                self.unsure = false;
                let record = std::mem::take(&mut self.record);
                self.remember_evidence(docs, &record);
                self.record = record;
            }
            Err(e) => {
                tracing::warn!(watch = %self.name(), error = %e, rounds = self.unsaved, "cannot write the last routine rounds; a restart resumes from the checkpoint before them")
            }
        }
    }

    /// Awaits the answer of the last routine checkpoint, if any. One that failed (or may not
    /// have landed) makes the next write a whole one and the evidence be read back.
    async fn settle(&mut self) {
        if let Some(answer) = self.pending.take() {
            let result = answer.await;
            self.answered(result);
        }
    }

    /// [`Self::settle`] without waiting: takes the answer if it has come.
    fn poll_pending(&mut self) {
        let Some(answer) = self.pending.as_mut() else {
            return;
        };
        if let Some(result) = futures_util::FutureExt::now_or_never(answer.as_mut()) {
            self.pending = None;
            self.answered(result);
        }
    }

    /// A routine checkpoint's answer. A failure makes the next write a whole one, due at the
    /// next round (its rounds count as unsaved again: a clean stop writes them too), and the
    /// evidence be read back.
    fn answered(&mut self, result: Result<(), crate::store::StoreError>) {
        if let Err(e) = result {
            tracing::warn!(watch = %self.name(), error = %e, "a routine checkpoint was not written; the next write is a whole one");
            self.evidence_doc = None;
            self.unsure = true;
            self.unsaved = self.unsaved.max(lifecycle::persist::CHECKPOINT_ROUNDS);
        }
    }

    /// Keeps the open observation's evidence document as just committed (see
    /// `evidence_doc`); drops it once the watch has no open observation.
    fn remember_evidence(&mut self, docs: Vec<crate::evidence::Evidence>, next: &WatchRecord) {
        let Some(open) = next.observation.as_ref().map(|o| o.id.as_str()) else {
            self.evidence_doc = None;
            return;
        };
        if let Some(mut doc) = docs.into_iter().rev().find(|d| d.id == open) {
            for c in doc.checks.iter_mut() {
                c.series = Vec::new();
            }
            self.evidence_doc = Some(Box::new(doc));
        } else if self.evidence_doc.as_ref().is_some_and(|d| d.id != open) {
            self.evidence_doc = None;
        }
    }

    /// After a transition was written (or may wait, being routine): it becomes the actor's
    /// state, and its effects run. `now` is the time the transition was stepped at: the
    /// samples of its round carry it, which is how `sample_metrics` finds them (a fresh
    /// `Utc::now()` here counted no sample at all).
    async fn advance(
        &mut self,
        next: WatchRecord,
        effects: Vec<Effect>,
        outbox: Vec<crate::store::OutboxItem>,
        queue: &mut VecDeque<Event>,
        now: DateTime<Utc>,
    ) {
        self.record = next;
        // Scrape collectors follow the sampling cadence: each fast round judges a fresh
        // scrape.
        let fast = lifecycle::samples_fast(&self.cfg, &self.record, now);
        for c in self.collectors.iter().filter_map(|(_, c)| c.as_ref()) {
            c.set_fast(fast);
        }
        self.sample_metrics(&effects, now);
        self.publish();
        for item in outbox {
            self.deliver(item);
        }
        for effect in effects {
            if let Some(ev) = self.run_effect(effect).await {
                queue.push_back(ev);
            }
        }
        self.publish();
    }

    /// Runs one effect; some answer with an event.
    async fn run_effect(&mut self, effect: Effect) -> Option<Event> {
        match effect {
            Effect::Schedule(at) => {
                self.next_round = Some((instant_at(at), at));
                None
            }
            Effect::Unschedule => {
                self.next_round = None;
                None
            }
            Effect::GatherCandidates => Some(Event::Candidates(self.candidates().await)),
            Effect::Execute => {
                let intent = self.record.intent.clone()?;
                Some(self.execute(intent).await)
            }
            Effect::RunCommand(purpose) => {
                Some(Event::CommandDone(self.run_command(purpose).await))
            }
            Effect::Metric(m) => {
                self.metric(m);
                None
            }
            Effect::Log(level, text) => {
                match level {
                    Level::Info => tracing::info!(watch = %self.name(), "{text}"),
                    Level::Warn => tracing::warn!(watch = %self.name(), "{text}"),
                    Level::Error => tracing::error!(watch = %self.name(), "{text}"),
                }
                None
            }
            // Durable in the commit already.
            Effect::Notify(_) | Effect::Evidence(_) | Effect::Finished(_) | Effect::Seen(_) => None,
        }
    }

    /// Publishes the current status and state metric.
    pub(super) fn publish(&self) {
        let state = self.record.reported_state();
        self.shared.metrics.set_state(self.name(), state);
        self.shared.status.set(status_of(
            &self.cfg,
            &self.record,
            self.shared.leases.node(),
        ));
    }
}

/// A watch's status entry from its record (also how a fleet node shows the watches other
/// nodes run, from their records in the database).
pub fn status_of(cfg: &WatchConfig, record: &WatchRecord, owner: Option<String>) -> WatchStatus {
    let o = record
        .observation
        .as_ref()
        .filter(|o| o.condemned.is_none());
    WatchStatus {
        name: cfg.name.clone(),
        state: record.reported_state(),
        current_release: record.current_release.clone(),
        last_good_release: record.last_good_release.clone(),
        observation: o.map(|o| ObservationView {
            id: o.id.clone(),
            release: o.release.clone(),
            version: o.version.clone(),
            deployment_id: o.deployment_id.clone(),
            kind: o.kind,
            source: o.source,
            deployed_at: o.deployed_at,
            judging_from: o.judging_from,
            window_ends: o.window_ends,
            rounds: o.tracker.rounds,
            planned_rounds: lifecycle::planned_rounds(cfg, o),
            checks: o.tracker.checks.clone(),
            outcome: crate::model::DeployOutcome::of(&o.failure),
            failure: o.failure.clone(),
        }),
        last_verdict: record.last_verdict.clone(),
        rollback: record.intent.as_ref().map(rollback_view),
        attention: record.attention.clone(),
        owner,
    }
}

/// The status view of a deploy intent.
pub(super) fn rollback_view(r: &DeployIntent) -> RollbackView {
    RollbackView {
        condemned_release: r.condemned_release.clone(),
        target_release: r.target_release.clone(),
        state: r.state,
        deployment_id: r.deployment_id.clone(),
        task_id: r.task_id.clone(),
        detail: r.detail.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn housekeeping_is_spread_over_its_period_and_fixed_per_name() {
        let mut seconds = std::collections::BTreeSet::new();
        for i in 0..1000 {
            let d = spread(&format!("w{i}"));
            assert!(d < HOUSEKEEPING, "{d:?}");
            seconds.insert(d.as_secs());
        }
        assert_eq!(
            seconds.len(),
            HOUSEKEEPING.as_secs() as usize,
            "{seconds:?}"
        );
        assert_eq!(spread("shop"), spread("shop"));
    }
}
