//! Deterministic simulation of one watch: the real lifecycle core ([`crate::engine::lifecycle`])
//! and the real Octopus protocol ([`crate::deployer::octopus::protocol`]) against a simulated
//! clock and a simulated Octopus that answers late, commits after the client's timeout, loses
//! responses, fails with 5xx or 429, refuses, fails tasks, and takes deployments from "a
//! person" at any moment. The process crashes (all in-memory state dropped, restart from what
//! was committed) at random effect boundaries, including in the middle of a create.
//!
//! One seed is one full run; a failing seed is a bug report and replays with
//! `BACKSTOP_SIM_SEED=<seed> cargo test --lib sim:: -- --nocapture`. `BACKSTOP_SIM_SEEDS=N`
//! sets how many seeds the test runs (default 10,000).
//!
//! Failed deployments (a person's task that fails, or backstop's own retry's) are delivered as
//! `DeploymentFailed` webhooks, under every `on_deploy_failure` policy.
//!
//! What it does not cover: the I/O shells themselves (HTTP, SQLite: the e2e tests do), the
//! probes' look-back (readings here are instantaneous), Argo CD, webhook and command deployers,
//! commands (hooks included) and pause.

mod invariants;
mod octopus;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::config::WatchConfig;
use crate::deployer::octopus::protocol::{self, Call, Next, Settings};
use crate::deployer::{DeployerError, ExecOutcome};
use crate::engine::lifecycle::{
    step, CheckResult, Effect, Event, Learned, RoundResult, Unmeasured,
};
use crate::judge::Reading;
use crate::model::{DeployIntent, IntentState, Source, WatchRecord};
use octopus::{CreateFault, SimOctopus};

fn secs(s: i64) -> chrono::Duration {
    chrono::Duration::seconds(s)
}

fn ms(m: i64) -> chrono::Duration {
    chrono::Duration::milliseconds(m)
}

/// A planned deployment by a person.
#[derive(Debug, Clone)]
struct Planned {
    at: DateTime<Utc>,
    release: String,
    task_secs: i64,
    task_ok: bool,
}

/// One simulated run.
struct Sim {
    rng: fastrand::Rng,
    now: DateTime<Utc>,
    cfg: WatchConfig,
    s: Settings,
    server: SimOctopus,
    good: BTreeMap<String, bool>,
    plan: Vec<Planned>,
    /// Trigger deliveries due: (time, deployment id).
    deliveries: Vec<(DateTime<Utc>, String)>,
    /// Triggers accepted and not yet handled (durable), and the one being handled.
    inbox: Vec<String>,
    inbox_current: Option<String>,
    /// What was committed: the record, the latest intent save, the handled deployments.
    persisted: WatchRecord,
    persisted_intent: Option<DeployIntent>,
    known: BTreeSet<String>,
    record: WatchRecord,
    next_round: Option<DateTime<Utc>>,
    crashed: bool,
    crash_p: f64,
    crashes: u32,
    /// How long the process may stay down after a crash (a person may deploy meanwhile).
    max_downtime: i64,
    /// Total time spent down, which stretches the bound on an intent's duration.
    downtime: Duration,
    /// Chance that a webhook's deployment cannot be read (its creation time unknown).
    unknown_created_p: f64,
    obs_seq: u64,
    /// Every intent as last seen, and when it left pending/created.
    intents: BTreeMap<String, (DeployIntent, Option<DateTime<Utc>>)>,
    trace: Vec<String>,
    violations: Vec<String>,
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = fastrand::Rng::with_seed(seed);
        // Every `on_deploy_failure` policy: failed deployments lead to retries and rollbacks
        // that go through the same exactly-once protocol.
        static CONFIGS: std::sync::OnceLock<Vec<WatchConfig>> = std::sync::OnceLock::new();
        let configs = CONFIGS.get_or_init(|| {
            [
                "",
                "on_deploy_failure = \"rollback\"\n",
                "on_deploy_failure = \"retry\"\n",
                "on_deploy_failure = \"retry\"\non_deploy_failure_then = \"rollback\"\n",
                "on_deploy_failure = \"notify\"\n",
            ]
            .iter()
            .map(|p| crate::engine::lifecycle::test_config(&format!("max_actions = 100\n{p}")))
            .collect()
        });
        let cfg = configs[rng.usize(0..configs.len())].clone();
        let s = Settings {
            timeout: Duration::from_secs(5),
            settle: Duration::from_secs(40),
            search_every: Duration::from_secs(5),
            max_retries: 1 + rng.u32(0..4),
            task_poll: Duration::from_secs(2),
            task_timeout: Duration::from_secs(120),
        };
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut good = BTreeMap::new();
        let mut plan = Vec::new();
        let mut at = start;
        for n in 0..rng.usize(2..8) {
            let release = format!("R{n}");
            good.insert(release.clone(), n == 0 || rng.f64() < 0.6);
            plan.push(Planned {
                at,
                release,
                task_secs: rng.i64(1..30),
                task_ok: n == 0 || rng.f64() < 0.9,
            });
            at += secs(rng.i64(5..400));
        }
        let crash_p = [0.0, 0.02, 0.1][rng.usize(0..3)];
        let max_downtime = [0, 0, 60, 900][rng.usize(0..4)];
        let unknown_created_p = [0.0, 0.3][rng.usize(0..2)];
        let skew = secs([0, 0, 30, -30, 290, -290][rng.usize(0..6)]);
        Sim {
            rng,
            now: start,
            cfg,
            s,
            server: SimOctopus {
                skew,
                ..SimOctopus::default()
            },
            good,
            plan,
            deliveries: Vec::new(),
            inbox: Vec::new(),
            inbox_current: None,
            persisted: WatchRecord::default(),
            persisted_intent: None,
            known: BTreeSet::new(),
            record: WatchRecord::default(),
            next_round: None,
            crashed: false,
            crash_p,
            crashes: 0,
            max_downtime,
            downtime: Duration::ZERO,
            unknown_created_p,
            obs_seq: 0,
            intents: BTreeMap::new(),
            trace: Vec::new(),
            violations: Vec::new(),
        }
    }

    fn log(&mut self, s: String) {
        self.trace
            .push(format!("{} {s}", self.now.format("%H:%M:%S%.3f")));
    }

    /// Moves the clock, applying the persons' deployments that happen meanwhile.
    fn advance_to(&mut self, t: DateTime<Utc>) {
        while let Some(p) = self.plan.first().filter(|p| p.at <= t).cloned() {
            self.plan.remove(0);
            self.now = self.now.max(p.at);
            let id = self.server.add(
                &p.release,
                p.at,
                p.at,
                Some("by hand".into()),
                (p.task_secs, p.task_ok),
                true,
            );
            self.log(format!(
                "person deploys {} as {id} (task ok: {})",
                p.release, p.task_ok
            ));
            {
                // Learned when its task ends (DeploymentSucceeded or DeploymentFailed),
                // sometimes late, sometimes twice.
                let done = p.at + secs(p.task_secs);
                self.deliveries
                    .push((done + ms(self.rng.i64(0..10_000)), id.clone()));
                if self.rng.f64() < 0.2 {
                    self.deliveries
                        .push((done + ms(self.rng.i64(0..60_000)), id));
                }
            }
        }
        self.now = self.now.max(t);
    }

    fn maybe_crash(&mut self, at: &str) -> bool {
        if !self.crashed && self.rng.f64() < self.crash_p {
            self.log(format!("CRASH {at}"));
            self.crashed = true;
        }
        self.crashed
    }

    fn commit(&mut self, next: &WatchRecord, fx: &[Effect]) {
        if let Some(dep) = self.inbox_current.take() {
            self.inbox.retain(|d| *d != dep);
        }
        self.persisted = next.clone();
        self.persisted_intent = next.intent.clone();
        for e in fx {
            match e {
                Effect::Seen(d) => {
                    self.known.insert(d.clone());
                }
                // As the store: a finished observation's row keeps its deployment known (one
                // opened and closed in one transition, a failed deployment rolled back at once).
                Effect::Finished(f) => {
                    if let Some(d) = &f.0.deployment_id {
                        self.known.insert(d.clone());
                    }
                }
                _ => {}
            }
        }
        if let Some(d) = next
            .observation
            .as_ref()
            .and_then(|o| o.deployment_id.clone())
        {
            self.known.insert(d);
        }
        if let Some(i) = &next.intent {
            self.save_intent(i);
        }
    }

    fn save_intent(&mut self, i: &DeployIntent) {
        self.persisted_intent = Some(i.clone());
        if let Some(d) = &i.deployment_id {
            self.known.insert(d.clone());
        }
        let entry = self
            .intents
            .entry(i.id.clone())
            .or_insert((i.clone(), None));
        entry.0 = i.clone();
        if i.state.is_done() && entry.1.is_none() {
            entry.1 = Some(self.now);
        }
    }

    /// Handles the inbox oldest first, as the actor does; an entry leaves it with the commit
    /// of its transition.
    fn drain_inbox(&mut self) {
        while let Some(dep) = self.inbox.first().cloned() {
            match self.learned(&dep) {
                Some(ev) => {
                    self.inbox_current = Some(dep);
                    self.deliver(ev);
                }
                None => {
                    self.inbox.remove(0);
                }
            }
        }
    }

    /// Feeds an event, then restarts as often as the run crashes (draining the inbox after
    /// each restart, as the actor does).
    fn deliver(&mut self, ev: Event) {
        self.handle(ev);
        self.inbox_current = None;
        while self.crashed {
            self.crashed = false;
            self.crashes += 1;
            if self.max_downtime > 0 {
                let down = secs(self.rng.i64(0..self.max_downtime));
                self.downtime += down.to_std().unwrap_or_default();
                let until = self.now + down;
                self.advance_to(until);
            }
            self.record = self.persisted.clone();
            self.record.intent = self.persisted_intent.clone();
            self.next_round = None;
            self.log("restart".into());
            self.handle(Event::Recovered);
            self.inbox_current = None;
            if !self.crashed {
                self.drain_inbox();
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        let mut queue = vec![ev];
        while !queue.is_empty() {
            let ev = queue.remove(0);
            if self.maybe_crash("before a step") {
                return;
            }
            let (next, fx) = step(&self.cfg, &self.record, ev, self.now);
            self.commit(&next, &fx);
            self.record = next;
            self.check_step();
            for e in fx {
                if self.maybe_crash("between effects") {
                    return;
                }
                match e {
                    Effect::Schedule(t) => self.next_round = Some(t),
                    Effect::Unschedule => self.next_round = None,
                    Effect::GatherCandidates => {
                        let list = self.server.successful_releases(self.now);
                        queue.push(Event::Candidates(Ok(list)));
                    }
                    Effect::Execute => {
                        let Some(i) = self.record.intent.clone() else {
                            continue;
                        };
                        match self.execute(i) {
                            Some(ev) => queue.push(ev),
                            None => return,
                        }
                    }
                    Effect::Log(_, text) => self.log(text),
                    _ => {}
                }
            }
        }
    }

    /// The Octopus shell's loop against the simulated server. `None` when the process crashed.
    fn execute(&mut self, mut i: DeployIntent) -> Option<Event> {
        protocol::resume(&mut i, &self.s);
        self.save_intent(&i);
        loop {
            if self.maybe_crash("in the deploy protocol") {
                return None;
            }
            let now = self.now;
            match protocol::next(&i, &self.s, now) {
                Next::Done(outcome) => {
                    match &outcome {
                        ExecOutcome::Succeeded => i.state = IntentState::Succeeded,
                        ExecOutcome::Failed(_) => i.state = IntentState::Failed,
                        ExecOutcome::Unknown(_) => i.state = IntentState::Unknown,
                        _ => {}
                    }
                    // As in the real shell: the ended state is durable only with the commit of
                    // the Deployed event (or as the last progress save before it).
                    self.log(format!("intent {} done: {outcome:?}", i.id));
                    return Some(Event::Deployed {
                        intent: Box::new(i),
                        outcome,
                    });
                }
                Next::Wait(t) => self.advance_to(t),
                Next::Call(Call::Search { since }) => {
                    let d = ms(self.rng.i64(5..500));
                    self.advance_to(now + d);
                    let r = if self.rng.f64() < 0.1 {
                        Err(DeployerError::Server {
                            status: 503,
                            message: "busy".into(),
                            retry_after: None,
                        })
                    } else {
                        // As the shell does: the task state of deployments that would supersede.
                        let mut list = self.server.list(since, self.now);
                        protocol::resolve_condemned(&mut i, &list, now);
                        for d in list.iter_mut().filter(|d| protocol::supersedes(&i, d)) {
                            d.task_state = d
                                .task_id
                                .as_ref()
                                .and_then(|t| self.server.task(t, self.now).ok())
                                .map(|t| t.state);
                        }
                        Ok(list)
                    };
                    if let Ok(list) = &r {
                        let ids: Vec<&str> = list.iter().map(|d| d.id.as_str()).collect();
                        self.log(format!("search since {since}: {ids:?}"));
                    }
                    protocol::on_search(&mut i, &self.s, r, now);
                }
                Next::Call(Call::Create) => {
                    protocol::on_create_started(&mut i, now);
                    self.save_intent(&i);
                    let r = self.create(&i);
                    if self.crashed {
                        return None;
                    }
                    protocol::on_create(&mut i, &self.s, r, self.now);
                }
                Next::Call(Call::ReadDeployment(id)) => {
                    let r = self.server.get(&id, now);
                    protocol::on_deployment(&mut i, &self.s, r, now);
                }
                Next::Call(Call::ReadTask(id)) => {
                    let r = if self.rng.f64() < 0.1 {
                        Err(DeployerError::Timeout)
                    } else {
                        self.server.task(&id, now)
                    };
                    protocol::on_task(&mut i, &self.s, r, now);
                }
            }
            self.save_intent(&i);
        }
    }

    /// One create request with a random fault; may crash the process after sending.
    fn create(&mut self, i: &DeployIntent) -> Result<crate::deployer::Deployment, DeployerError> {
        let timeout = ms(self.s.timeout.as_millis() as i64);
        let settle = self.s.settle.as_secs() as i64;
        let fault = match self.rng.u32(0..20) {
            0..=8 => CreateFault::Ok,
            9 => CreateFault::LateAnswer,
            10 => CreateFault::SlowCommit(self.rng.i64(1..settle)),
            11 => CreateFault::LostResponse,
            12 | 13 => CreateFault::Unavailable,
            14 | 15 => CreateFault::RateLimited(self.rng.u64(0..5)),
            16 | 17 => CreateFault::Refused,
            _ if self.rng.f64() < 0.3 => CreateFault::Rejected,
            _ => CreateFault::Ok,
        };
        let task = (self.rng.i64(1..40), self.rng.f64() < 0.9);
        let now = self.now;
        let commit = |server: &mut SimOctopus, visible: DateTime<Utc>| {
            server.add(
                &i.target_release,
                now,
                visible,
                Some(i.comments.clone()),
                task,
                false,
            )
        };
        self.log(format!("create {} ({fault:?})", i.target_release));
        let result = match fault {
            CreateFault::Ok => {
                let id = commit(&mut self.server, now);
                let d = ms(self.rng.i64(5..800));
                self.advance_to(now + d);
                self.server.get(&id, self.now)
            }
            CreateFault::LateAnswer => {
                commit(&mut self.server, now);
                self.advance_to(now + timeout);
                Err(DeployerError::Timeout)
            }
            CreateFault::SlowCommit(d) => {
                commit(&mut self.server, now + secs(d));
                self.advance_to(now + timeout);
                Err(DeployerError::Timeout)
            }
            CreateFault::LostResponse => {
                commit(&mut self.server, now);
                let d = ms(self.rng.i64(5..800));
                self.advance_to(now + d);
                Err(DeployerError::Unreachable("connection reset".into()))
            }
            CreateFault::Unavailable => Err(DeployerError::Server {
                status: 503,
                message: "unavailable".into(),
                retry_after: None,
            }),
            CreateFault::RateLimited(s) => Err(DeployerError::Server {
                status: 429,
                message: "slow down".into(),
                retry_after: Some(s),
            }),
            CreateFault::Refused => Err(DeployerError::Refused("connection refused".into())),
            CreateFault::Rejected => Err(DeployerError::Rejected {
                status: 400,
                message: "no".into(),
            }),
        };
        // The request was sent; the process may die before the answer is recorded.
        self.maybe_crash("during a create");
        result
    }

    fn round(&mut self, scheduled: DateTime<Utc>) -> Event {
        let healthy = self
            .server
            .serving(self.now)
            .is_some_and(|r| self.good.get(r) == Some(&true));
        // Now and then backstop itself runs late and the probe times out: not the app's fault.
        let late = self.rng.f64() < 0.05;
        let reading = if late {
            Err(Unmeasured {
                reason: "timed out after 1s".into(),
                app_down: true,
                timed_out: true,
                empty: false,
            })
        } else {
            Ok(Reading::Status(if healthy { 200 } else { 503 }))
        };
        Event::Round(RoundResult {
            scheduled,
            checks: vec![
                CheckResult {
                    name: "health".into(),
                    baseline: None,
                    before: None,
                    reading,
                    lag: if late {
                        Duration::from_secs(2)
                    } else {
                        Duration::ZERO
                    },
                    traffic: None,
                    compare: None,
                    control: None,
                },
                CheckResult {
                    name: "errors".into(),
                    baseline: None,
                    before: None,
                    reading: Ok(Reading::Value(0.0)),
                    lag: std::time::Duration::ZERO,
                    traffic: None,
                    compare: None,
                    control: None,
                },
            ],
        })
    }

    fn learned(&mut self, dep: &str) -> Option<Event> {
        let d = self.server.get(dep, self.now).ok()?;
        self.obs_seq += 1;
        // Sometimes the deployment cannot be read: only the webhook's event time (when it
        // finished, on the server's clock) is known.
        let (deployed_at, created) = if self.rng.f64() < self.unknown_created_p {
            let done = self
                .server
                .deployments
                .iter()
                .find(|x| x.id == d.id)
                .map(|x| x.task_done);
            (done.unwrap_or(self.now) + self.server.skew, None)
        } else {
            (d.created, Some(d.created))
        };
        Some(Event::Deployment(Learned {
            release: d.release_id,
            version: None,
            deployment_id: Some(d.id.clone()),
            deployed_at,
            created,
            source: Source::Webhook,
            rollback_safe: None,
            failure: self
                .server
                .deployments
                .iter()
                .find(|x| x.id == d.id && !x.task_ok)
                .map(|x| crate::model::DeployFailure {
                    task: Some(format!("ServerTasks-{}", x.id)),
                    state: Some("Failed".into()),
                    error: Some("a step failed".into()),
                    ..Default::default()
                }),
            known: self.known.contains(&d.id),
            observation_id: format!("obs-{}", self.obs_seq),
        }))
    }

    fn run(&mut self) {
        let end = self.now + secs(4 * 3600);
        loop {
            let next_plan = self.plan.first().map(|p| p.at);
            let next_delivery = self.deliveries.iter().map(|d| d.0).min();
            let next = [self.next_round, next_plan, next_delivery]
                .into_iter()
                .flatten()
                .min();
            let Some(t) = next.filter(|t| *t <= end) else {
                break;
            };
            self.advance_to(t);
            if self.next_round == Some(t) {
                self.next_round = None;
                let ev = self.round(t);
                self.deliver(ev);
            } else if let Some(pos) = self.deliveries.iter().position(|d| d.0 <= self.now) {
                // The API commits the trigger to the inbox before answering: it is durable.
                let (_, dep) = self.deliveries.remove(pos);
                self.inbox.push(dep);
                self.drain_inbox();
            }
        }
        self.check_end();
    }
}

/// Runs one seed; the violations, or the panic, as text.
fn run_seed(seed: u64) -> Result<(u32, Vec<IntentState>), (String, Vec<String>)> {
    let r = std::panic::catch_unwind(|| {
        let mut sim = Sim::new(seed);
        sim.run();
        let ends = sim.intents.values().map(|(i, _)| i.state).collect();
        (sim.violations.clone(), sim.trace.clone(), sim.crashes, ends)
    });
    match r {
        Ok((v, _, crashes, ends)) if v.is_empty() => Ok((crashes, ends)),
        Ok((v, trace, _, _)) => Err((v.join("; "), trace)),
        Err(p) => Err((
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
            vec![],
        )),
    }
}

#[test]
fn simulation_keeps_every_invariant() {
    if let Some(seed) = std::env::var("BACKSTOP_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let mut sim = Sim::new(seed);
        sim.run();
        for line in &sim.trace {
            println!("{line}");
        }
        assert!(
            sim.violations.is_empty(),
            "seed {seed}: {:?}",
            sim.violations
        );
        return;
    }
    let seeds: u64 = std::env::var("BACKSTOP_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let (mut crashes, mut failed) = (0u64, Vec::new());
    let mut ends: BTreeMap<&'static str, u64> = BTreeMap::new();
    for seed in 0..seeds {
        match run_seed(seed) {
            Ok((c, states)) => {
                crashes += u64::from(c);
                for s in states {
                    *ends.entry(s.as_str()).or_default() += 1;
                }
            }
            Err((why, _)) => failed.push(format!("seed {seed}: {why}")),
        }
    }
    let summary = format!(
        "simulation: {seeds} seeds, deploy intents ended {ends:?}, {crashes} crashes, {} failing seeds{}",
        failed.len(),
        failed.first().map(|f| format!(" (first: {f}; replay: BACKSTOP_SIM_SEED=<seed> cargo test --lib sim:: -- --nocapture)")).unwrap_or_default()
    );
    println!("{summary}");
    let _ = std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/sim-summary.txt"),
        format!("{summary}\n"),
    );
    assert!(failed.is_empty(), "{summary}\n{}", failed.join("\n"));
}
