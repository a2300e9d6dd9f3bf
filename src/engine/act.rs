//! The I/O of the lifecycle's effects: learning about a deployment, asking the deployer for
//! candidates, carrying out an intent, running a command, recording metrics.

use chrono::Utc;

use super::lifecycle::{Effect, Event, Learned, Metric};
use super::watch::WatchActor;
use super::{new_id, Trigger};
use crate::command::CommandResult;
use crate::deployer::{Exec, ExecOutcome, Target};
use crate::model::{CommandPurpose, DeployFailure, DeployIntent, Source};

/// How long learning a failed deployment waits for its task's details: the policy (a rollback,
/// say) must not wait long on a slow deployer for the log tail.
const DETAILS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl WatchActor {
    /// The deployer coordinates of this watch.
    pub(super) fn target(&self) -> Target<'_> {
        Target {
            watch: &self.cfg.name,
            project: &self.cfg.project,
            environment: &self.cfg.environment,
            application: self.cfg.application.as_deref(),
        }
    }

    /// What can be found out about an announced, delivered or polled deployment: whether it
    /// is already handled, its deployer-side id and creation time (an announcement without an
    /// id is matched to the deployer's newest deployment of that release), and whether it is
    /// safe to roll back from.
    pub(super) async fn learn(&self, t: Trigger) -> Learned {
        let mut deployment_id = t.deployment_id.clone();
        let found = match &deployment_id {
            Some(dep) => self.deployer.deployment_info(dep).await,
            None => {
                let d = self
                    .deployer
                    .newest_deployment_of(&self.target(), &t.release)
                    .await;
                if let Some(d) = &d {
                    tracing::info!(watch = %self.name(), release = %t.release, deployment = %d.id, "announcement without a deployment id matched to the deployer's newest deployment of the release");
                    deployment_id = Some(d.id.clone());
                }
                d
            }
        };
        let created = found.as_ref().map(|d| d.created);
        // A deployment carrying the marker of one of this watch's intents was made by this
        // watch (a late or duplicate create): never observed as someone else's. Another
        // watch's rollback is a deployment like any other.
        let markers: Vec<String> = found.as_ref().map_or_else(Vec::new, |d| {
            crate::deployer::octopus::protocol::marker_ids(d.comments.as_deref().unwrap_or(""))
                .into_iter()
                .map(String::from)
                .collect()
        });
        let ours = !markers.is_empty() && {
            let name = self.name().to_string();
            self.shared
                .store
                .blocking(move |s| {
                    Ok(markers
                        .iter()
                        .any(|id| s.has_intent(&name, id).unwrap_or(false)))
                })
                .await
                .unwrap_or(false)
        };
        if ours {
            tracing::warn!(watch = %self.name(), deployment = ?deployment_id, "the deployment was made by backstop; recorded, not observed as a new deployment");
        }
        let known = ours
            || match &deployment_id {
                Some(dep) => {
                    let (name, dep) = (self.name().to_string(), dep.clone());
                    self.shared
                    .store
                    .blocking(move |s| s.deployment_known(&name, &dep))
                    .await
                    .unwrap_or_else(|e| {
                        tracing::error!(watch = %self.name(), error = %e, "cannot check deployment history");
                        false
                    })
                }
                None => false,
            };
        // A webhook's event time is when the deployment *finished*; its start is when the
        // deployer created it.
        let deployed_at = match (t.source, created) {
            (Source::Webhook, Some(c)) => c,
            _ => t.deployed_at.unwrap_or_else(Utc::now),
        };
        let rollback_safe = match t.rollback_safe {
            Some(s) => Some(s),
            None if known => None,
            None => match self.deployer.rollback_safe(&t.release, &self.cancel).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(watch = %self.name(), release = %t.release, error = %e, "cannot tell whether the release is safe to roll back from");
                    None
                }
            },
        };
        let failure = match t.failure {
            // Known deployments too: a deployment observed since it was announced may fail
            // later (a smoke-test step after the cut-over). backstop's own are its intent's.
            Some(f) if !ours => Some(
                self.failure_details(f, &t.release, deployment_id.as_deref())
                    .await,
            ),
            other => other,
        };
        // Announced as failed, but the deployer's own task says it succeeded: the deployer
        // knows, and a good release is not treated as a failed deployment.
        let failure = failure.filter(|f| {
            let succeeded = f.state.as_deref() == Some("Success");
            if succeeded {
                tracing::warn!(watch = %self.name(), release = %t.release, deployment = ?deployment_id, "announced as failed, but the deployer's task succeeded: observed as a successful deployment");
            }
            !succeeded
        });
        Learned {
            release: t.release,
            version: t.version,
            deployment_id,
            deployed_at,
            created,
            source: t.source,
            rollback_safe,
            failure,
            known,
            observation_id: new_id("obs"),
        }
    }

    /// The deployer's own account of a failed deployment (error, failed step and machine, log
    /// tail), added to what its source said. Failing to read it loses nothing: the failure
    /// stands, with the reason the details are missing.
    pub(super) async fn failure_details(
        &self,
        known: DeployFailure,
        release: &str,
        deployment: Option<&str>,
    ) -> DeployFailure {
        let fallback = known.clone();
        let target = self.target();
        let read = self
            .deployer
            .failure_details(&target, release, deployment, known, &self.cancel);
        match tokio::time::timeout(DETAILS_TIMEOUT, read).await {
            Ok(Ok(f)) => f,
            Ok(Err(e)) => {
                tracing::warn!(watch = %self.name(), %release, deployment = ?deployment, error = %e, "cannot read the failed deployment's details");
                DeployFailure {
                    details_unavailable: Some(e.to_string()),
                    ..fallback
                }
            }
            Err(_) => DeployFailure {
                details_unavailable: Some(format!(
                    "the deployer did not answer within {}",
                    humantime::format_duration(DETAILS_TIMEOUT)
                )),
                ..fallback
            },
        }
    }

    pub(super) async fn candidates(&self) -> Result<Vec<String>, String> {
        self.deployer
            .previous_releases(&self.target(), &self.cancel)
            .await
            .map_err(|e| e.to_string())
    }

    /// Carries out an intent through the deployer, persisting its progress before each call.
    pub(super) async fn execute(&mut self, mut intent: DeployIntent) -> Event {
        let store = self.shared.store.clone();
        let pulse = self.pulse.clone();
        let board = self.shared.status.clone();
        let name = self.cfg.name.clone();
        let (leases, epoch) = (self.shared.leases.clone(), self.epoch);
        let mut progress = move |r: &mut DeployIntent| {
            pulse.beat();
            // Fenced: the lease lapsed (a freeze, a lost database) or was lost; the next owner
            // resolves this intent from its last saved progress. Asked before the save and
            // again after it, since the save may wait on the database: a deploy call follows
            // a `true` at once, with no wait in between.
            let may_act = || {
                let ok = leases.may_act_as(&name, epoch);
                if !ok {
                    tracing::warn!(watch = %name, "this node no longer holds the watch's lease; no further deploy call is made");
                }
                ok
            };
            if !may_act() {
                return false;
            }
            r.rev += 1;
            let saved = match store.in_place(|s| s.save_intent(r)) {
                Ok(()) => may_act(),
                Err(e) => {
                    tracing::error!(error = %e, "cannot persist deploy progress");
                    false
                }
            };
            board.update(&name, |w| w.rollback = Some(super::watch::rollback_view(r)));
            saved
        };
        let target = Target {
            watch: &self.cfg.name,
            project: &self.cfg.project,
            environment: &self.cfg.environment,
            application: self.cfg.application.as_deref(),
        };
        let outcome = self
            .deployer
            .execute(
                &target,
                &mut intent,
                Exec {
                    cancel: &self.cancel,
                    progress: &mut progress,
                },
            )
            .await;
        // The outcome is the intent's state too, whatever the deployer kind.
        match &outcome {
            ExecOutcome::Succeeded => intent.state = crate::model::IntentState::Succeeded,
            ExecOutcome::Failed(m) => {
                intent.state = crate::model::IntentState::Failed;
                intent.detail = Some(m.clone());
            }
            ExecOutcome::Unknown(m) => {
                intent.state = crate::model::IntentState::Unknown;
                intent.detail = Some(m.clone());
            }
            ExecOutcome::Superseded(n) => {
                intent.state = crate::model::IntentState::Superseded;
                intent.superseded_by = Some(n.clone());
            }
            ExecOutcome::Cancelled => {}
        }
        // The deployment ran and failed: people want the deployer's account of why.
        if let (ExecOutcome::Failed(_), Some(f)) = (&outcome, intent.failure.take()) {
            let release = intent.target_release.clone();
            let deployment = intent.deployment_id.clone();
            intent.failure = Some(
                self.failure_details(f, &release, deployment.as_deref())
                    .await,
            );
        }
        Event::Deployed {
            intent: Box::new(intent),
            outcome,
        }
    }

    /// Runs `[watch.command]` with the evidence in a file.
    pub(super) async fn run_command(&mut self, purpose: CommandPurpose) -> CommandResult {
        let program = match purpose {
            CommandPurpose::DeployFailed => self
                .cfg
                .hooks
                .deploy_failed
                .as_ref()
                .map(|h| (h.argv.clone(), h.timeout)),
            _ => self
                .cfg
                .command
                .as_ref()
                .map(|h| (h.argv.clone(), h.timeout)),
        };
        let Some((argv, timeout)) = program else {
            return CommandResult::not_configured();
        };
        let (obs_id, release, version) =
            match (purpose, &self.record.observation, &self.record.intent) {
                (CommandPurpose::OnFailure | CommandPurpose::DeployFailed, Some(o), _) => {
                    (o.id.clone(), o.release.clone(), o.version.clone())
                }
                (_, _, Some(i)) => (i.observation_id.clone(), i.condemned_release.clone(), None),
                _ => (String::new(), String::new(), None),
            };
        let id = obs_id.clone();
        let ev = self
            .shared
            .store
            .blocking(move |s| s.evidence(&id))
            .await
            .ok()
            .flatten();
        let dir = self.shared.evidence_dir.clone();
        let path = dir.join(format!("{obs_id}.json"));
        let _ = std::fs::create_dir_all(&dir);
        if let Err(e) = std::fs::write(&path, serde_json::to_vec_pretty(&ev).unwrap_or_default()) {
            tracing::warn!(watch = %self.name(), error = %e, "cannot write the evidence file for the command");
        }
        let failed = purpose == CommandPurpose::DeployFailed;
        let verdict = ev
            .as_ref()
            .and_then(|e| e.verdict.as_ref())
            .map(|v| v.verdict.as_str())
            .unwrap_or(if failed { "deploy_failed" } else { "condemned" });
        let intent = self.record.intent.as_ref().filter(|_| {
            !matches!(
                purpose,
                CommandPurpose::OnFailure | CommandPurpose::DeployFailed
            )
        });
        let mut env = vec![
            ("BACKSTOP_WATCH".to_string(), self.cfg.name.clone()),
            ("BACKSTOP_RELEASE".to_string(), release),
            ("BACKSTOP_VERSION".to_string(), version.unwrap_or_default()),
            (
                "BACKSTOP_TARGET_RELEASE".to_string(),
                intent.map(|i| i.target_release.clone()).unwrap_or_default(),
            ),
            ("BACKSTOP_VERDICT".to_string(), verdict.to_string()),
            (
                "BACKSTOP_EVIDENCE_FILE".to_string(),
                path.display().to_string(),
            ),
            (
                "BACKSTOP_ACTION".to_string(),
                intent
                    .map(|i| i.kind.as_str())
                    .unwrap_or(if failed { "deploy_failed" } else { "command" })
                    .to_string(),
            ),
        ];
        if let (true, Some(o)) = (failed, &self.record.observation) {
            let f = o.failure.clone().unwrap_or_default();
            env.extend([
                (
                    "BACKSTOP_DEPLOYMENT".to_string(),
                    o.deployment_id.clone().unwrap_or_default(),
                ),
                (
                    "BACKSTOP_TASK".to_string(),
                    f.task.clone().unwrap_or_default(),
                ),
                ("BACKSTOP_ERROR".to_string(), f.summary()),
            ]);
        }
        self.pulse.beat();
        // Last, right before the program starts: the evidence read and file write above may
        // have waited (a frozen node wakes up here).
        if !self.may_act() {
            tracing::warn!(watch = %self.name(), "this node no longer holds the watch's lease; the command is not run");
            return CommandResult::not_run("this node no longer holds the watch's lease");
        }
        let result = crate::command::run(&argv, &env, timeout).await;
        self.pulse.beat();
        tracing::info!(watch = %self.name(), ?purpose, argv = ?argv, result = %result.describe(), "ran the watch command");
        result
    }

    pub(super) fn metric(&self, m: Metric) {
        let metrics = &self.shared.metrics;
        match m {
            Metric::Verdict { kind, seconds } => metrics.verdict(self.name(), kind, seconds),
            Metric::Action(chosen) => metrics.action(chosen.as_str()),
            Metric::Rollback(outcome) => metrics.rollback(outcome),
            Metric::ObservationStarted { source, failed } => metrics.observation_started(
                self.name(),
                source.as_str(),
                failed,
                Utc::now().timestamp() as f64,
            ),
            Metric::DuplicateDeployments(n) => metrics.duplicate_deployments(n),
        }
    }

    /// The per-check sample metrics of a round just judged.
    pub(super) fn sample_metrics(&self, effects: &[Effect], now: chrono::DateTime<Utc>) {
        let finished = effects.iter().find_map(|e| match e {
            Effect::Finished(f) => Some(&f.0),
            _ => None,
        });
        let Some(obs) = self.record.observation.as_ref().or(finished) else {
            return;
        };
        for c in &obs.tracker.checks {
            if let Some(s) = c.samples.back().filter(|s| s.at == now) {
                self.shared
                    .metrics
                    .check_sample(self.name(), &c.name, &s.outcome, s.value);
            }
            if c.baseline.is_some() {
                self.shared
                    .metrics
                    .check_baseline(self.name(), &c.name, c.baseline);
            }
        }
    }
}
