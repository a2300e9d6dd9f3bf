//! The domain records: what backstop knows about a watch, an observation and a deploy intent.
//!
//! These are the facts the pure lifecycle ([`crate::engine::lifecycle`]) reasons about and the
//! store persists; neither module owns them, so both can change without the other. Every closed
//! set is an enum whose snake_case names are the persisted and reported form.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::judge::observation::{Tracker, Verdict};

/// State of a watch. Closed set; the snake_case names are the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WatchState {
    /// Nothing in flight.
    Idle,
    /// A release is under observation.
    Observing,
    /// A deploy intent (rollback or retry) is being carried out.
    RollingBack,
    /// A human must act: the rollback failed, its outcome is unknown, it was itself condemned,
    /// no target was safe, or a release was condemned under `on_failure = "notify"`.
    Failed,
    /// An operator paused the watch: deployments are recorded, not observed.
    Paused,
}

impl WatchState {
    pub const ALL: [WatchState; 5] = [
        WatchState::Idle,
        WatchState::Observing,
        WatchState::RollingBack,
        WatchState::Failed,
        WatchState::Paused,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            WatchState::Idle => "idle",
            WatchState::Observing => "observing",
            WatchState::RollingBack => "rolling_back",
            WatchState::Failed => "failed",
            WatchState::Paused => "paused",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|w| w.as_str() == s)
    }
}

/// Whether an observation follows an ordinary deployment or one of backstop's own actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObservationKind {
    Deployment,
    /// Never rolled back again: a condemned rollback means a human is needed.
    Rollback,
    /// A roll-over (the same release redeployed); if condemned, the retry's `then` applies.
    Retry,
}

impl ObservationKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ObservationKind::Deployment => "deployment",
            ObservationKind::Rollback => "rollback",
            ObservationKind::Retry => "retry",
        }
    }
}

/// How backstop learned of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Announce,
    Webhook,
    Poll,
    Rollback,
    Retry,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::Announce,
        Source::Webhook,
        Source::Poll,
        Source::Rollback,
        Source::Retry,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Announce => "announce",
            Source::Webhook => "webhook",
            Source::Poll => "poll",
            Source::Rollback => "rollback",
            Source::Retry => "retry",
        }
    }
}

/// An observation in progress, persisted after every round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationRecord {
    pub id: String,
    pub watch: String,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    pub kind: ObservationKind,
    pub source: Source,
    pub deployed_at: DateTime<Utc>,
    pub judging_from: DateTime<Utc>,
    pub window_ends: DateTime<Utc>,
    /// false when the release is marked as not safe to roll back from; None when unknown.
    #[serde(default)]
    pub rollback_safe: Option<bool>,
    pub tracker: Tracker,
    /// Set once the release is condemned, while the action is being decided: a restart in
    /// between decides again instead of observing on.
    #[serde(default)]
    pub condemned: Option<String>,
    /// The deployer-side creation time of the deployment when it is known, which orders
    /// deployments: an older one never replaces this observation.
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    /// The condemned release deployed just before this one (a rollback's, or a person's
    /// deployment after a condemned release): samples reaching into it are not evidence.
    #[serde(default)]
    pub previous_condemned: Option<String>,
    /// Where ratio baselines end: the start of the condemned release before this one (so a
    /// rollback is compared with the good release's past, not with the bad release); the
    /// deployment itself otherwise.
    #[serde(default)]
    pub baseline_until: Option<DateTime<Utc>>,
    /// The deployment failed (its task's account); `None`: it succeeded. A failed
    /// deployment's release is never recorded as verified: it may not be what is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeployFailure>,
    /// Why this observation exists beyond its kind: a retry made because a deployment failed
    /// (`on_deploy_failure = "retry"`), whose own failure leads to `on_deploy_failure_then`.
    #[serde(default, skip_serializing_if = "is_default")]
    pub cause: Cause,
    /// Condemned for its failed deployment without being judged (`on_deploy_failure` is
    /// `retry`, `rollback` or `notify`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub unjudged: bool,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// Why a deploy intent, and the observation of what it deployed, were made. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The release was condemned by its checks (`on_failure`).
    #[default]
    Condemned,
    /// The release's deployment failed (`on_deploy_failure`).
    DeployFailed,
}

/// Progress of a deploy intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IntentState {
    /// Decided and persisted; the deployment may or may not exist yet.
    #[default]
    Pending,
    /// The deployer accepted the deployment; its task is being followed.
    Created,
    Succeeded,
    Failed,
    /// A create may have landed but could not be found: a human must look.
    Unknown,
    /// A newer deployment that backstop did not make replaced the condemned one: no deploy.
    Superseded,
}

impl IntentState {
    pub fn as_str(&self) -> &'static str {
        match self {
            IntentState::Pending => "pending",
            IntentState::Created => "created",
            IntentState::Succeeded => "succeeded",
            IntentState::Failed => "failed",
            IntentState::Unknown => "unknown",
            IntentState::Superseded => "superseded",
        }
    }

    /// Whether the intent is over (nothing more will be called for it).
    pub fn is_done(&self) -> bool {
        !matches!(self, IntentState::Pending | IntentState::Created)
    }
}

/// What an automatic deploy call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Deploy the last verified release.
    #[default]
    Rollback,
    /// Roll over: deploy the condemned release again.
    Retry,
}

impl ActionKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActionKind::Rollback => "rollback",
            ActionKind::Retry => "retry",
        }
    }
}

/// A deployment backstop did not make, found while carrying out an intent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewerDeployment {
    pub id: String,
    pub release: String,
    pub created: DateTime<Utc>,
}

/// A deploy intent (rollback or retry): one per condemned observation (a UNIQUE column
/// enforces it), persisted before any deploy call. It also carries the deployer protocol's
/// progress, so a restart resumes exactly where the last process stopped. `Default` is the
/// empty progress a new intent starts from: the decision sets its own fields over it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DeployIntent {
    pub id: String,
    pub observation_id: String,
    pub watch: String,
    #[serde(default)]
    pub kind: ActionKind,
    /// Deploy calls made so far for this intent (persisted before each call): a deployer that
    /// cannot look its deployments up (a command) refuses to call again after a restart.
    #[serde(default)]
    pub calls: u32,
    pub condemned_release: String,
    /// The condemned deployment and its deployer-side creation time: anything created after it
    /// that backstop did not make supersedes the intent.
    #[serde(default)]
    pub condemned_deployment: Option<String>,
    #[serde(default)]
    pub condemned_created: Option<DateTime<Utc>>,
    /// When the condemned release was deployed as backstop learned it (the search reaches back
    /// to it, so the condemned deployment is listed and its creation time read).
    #[serde(default)]
    pub condemned_deployed_at: Option<DateTime<Utc>>,
    pub target_release: String,
    pub target_version: Option<String>,
    pub environment: String,
    /// Unique text put in the deployment's Comments, used to find it after a crash.
    pub marker: String,
    pub comments: String,
    pub state: IntentState,
    pub deployment_id: Option<String>,
    /// The deployer-side creation time of the deployment made (orders it among others).
    #[serde(default)]
    pub created: Option<DateTime<Utc>>,
    pub task_id: Option<String>,
    pub detail: Option<String>,
    pub decided_at: DateTime<Utc>,
    /// Bumped by every save of the deployer's progress: a stale copy (an older revision) never
    /// overwrites a newer one.
    #[serde(default)]
    pub rev: u64,
    /// When the last create attempt started; set before the call, cleared by its outcome. Set
    /// after a restart means the attempt's outcome was lost with the process.
    #[serde(default)]
    pub attempt_started: Option<DateTime<Utc>>,
    /// When the last create with an unknown outcome was given up on: no new create before the
    /// marker search has come back empty for the settle period after it.
    #[serde(default)]
    pub ambiguous_since: Option<DateTime<Utc>>,
    /// When the marker search last came back empty (a create needs one after the last attempt,
    /// and after the settle period of an unknown one).
    #[serde(default)]
    pub searched_at: Option<DateTime<Utc>>,
    /// Earliest time of the next deployer call (backoff, Retry-After, settle searches).
    #[serde(default)]
    pub not_before: Option<DateTime<Utc>>,
    /// Errors in a row of the current phase (searches or creates), for backoff.
    #[serde(default)]
    pub errors: u32,
    /// Deployments carrying this intent's marker beyond the adopted one: a duplicate was made.
    #[serde(default)]
    pub duplicates: Vec<String>,
    /// When the condemned deployment's creation time is unknown, the deployments listed by
    /// the first search: any other that appears later was made after the decision and
    /// supersedes the intent (no clocks compared).
    #[serde(default)]
    pub listed_at_decision: Option<Vec<String>>,
    /// The deployer project searched (kept, so a reload that changes the watch cannot make
    /// the search look elsewhere).
    #[serde(default)]
    pub project: String,
    /// The deployment that superseded the intent.
    #[serde(default)]
    pub superseded_by: Option<NewerDeployment>,
    /// When the task started being followed (for `task_timeout`).
    #[serde(default)]
    pub following_since: Option<DateTime<Utc>>,
    /// Why the intent was made: a condemned release, or a failed deployment.
    #[serde(default)]
    pub cause: Cause,
    /// The deployment this intent made failed (its task ended Failed, TimedOut or Canceled),
    /// as the deployer tells it; `None` while it has not, or when the call itself failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<DeployFailure>,
}

#[cfg(test)]
impl DeployIntent {
    /// An empty pending intent, for tests to fill in.
    pub fn blank() -> Self {
        DeployIntent {
            id: "act-1".into(),
            observation_id: "obs-1".into(),
            watch: "shop".into(),
            ..DeployIntent::default()
        }
    }
}

/// Why a program configured in `[watch.command]` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandPurpose {
    /// `on_failure = "command"`: the command is the action.
    OnFailure,
    /// `when = "before"`: runs before the deploy call.
    Before,
    /// `when = "after"`: runs after the deploy ended.
    After,
    /// `[watch.hooks.deploy_failed]`: runs when a deployment failed, before the policy acts.
    DeployFailed,
}

/// A command that was started and whose result is not recorded yet. Persisted before the
/// program runs: after a crash it is never run again, and the watch says it may have run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingCommand {
    pub purpose: CommandPurpose,
    pub started: DateTime<Utc>,
    /// The observation it was started for (the deploy_failed hook acts on that one only: a
    /// result arriving after the watch moved on must not act on a newer observation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observation: Option<String>,
}

/// What was chosen about a condemned release. Closed set; names appear in evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Chosen {
    None,
    Rollback,
    Retry,
    Notify,
    Command,
    Freeze,
    Pause,
    DryRun,
}

impl Chosen {
    pub fn as_str(&self) -> &'static str {
        match self {
            Chosen::None => "none",
            Chosen::Rollback => "rollback",
            Chosen::Retry => "retry",
            Chosen::Notify => "notify",
            Chosen::Command => "command",
            Chosen::Freeze => "freeze",
            Chosen::Pause => "pause",
            Chosen::DryRun => "dry_run",
        }
    }
}

/// A deployment remembered for ordering and the irreversibility guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deployed {
    pub release: String,
    pub deployment_id: Option<String>,
    pub created: Option<DateTime<Utc>>,
    /// When it started, as backstop learned it.
    #[serde(default)]
    pub deployed_at: Option<DateTime<Utc>>,
    pub rollback_safe: Option<bool>,
}

/// What is known about a deployment that failed (its task ended Failed, TimedOut or
/// Canceled, or its announcer said `"outcome": "failed"`): the deployer's own account, bounded,
/// so that people see why without opening the deployer. Every field may be missing: a
/// webhook or an announcement may say only that it failed, and the details may not load.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeployFailure {
    /// The deployer's task (Octopus `ServerTasks-N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// How the task ended, in the deployer's words (Octopus: `Failed`, `TimedOut`, `Canceled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The task's error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The step that failed, when the deployer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The machine (deployment target) it failed on, when the deployer says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<String>,
    /// The last lines of the failed step's log, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// Why the details could not be read, when they could not (the failure itself stands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details_unavailable: Option<String>,
}

impl DeployFailure {
    /// Most lines of `log_tail`: enough for an error and what led to it, few enough for a chat
    /// message or a deployment's comment.
    pub const MAX_LOG_LINES: usize = 20;
    /// Longest line of `log_tail`, in bytes.
    pub const MAX_LOG_LINE: usize = 400;
    /// Most bytes of `log_tail` in all, its lines joined by newlines.
    pub const MAX_LOG_BYTES: usize = 4096;

    /// One line for logs, notifications and deployment comments: "step "Deploy web" failed on
    /// web-02: Exit code 1", or what of it is known.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        match (&self.step, &self.machine) {
            (Some(step), Some(m)) => s.push_str(&format!("step \"{step}\" failed on {m}")),
            (Some(step), None) => s.push_str(&format!("step \"{step}\" failed")),
            (None, Some(m)) => s.push_str(&format!("failed on {m}")),
            (None, None) => s.push_str(match self.state.as_deref() {
                Some("TimedOut") => "timed out",
                Some("Canceled") => "was canceled",
                _ => "failed",
            }),
        }
        if let Some(e) = &self.error {
            s.push_str(": ");
            s.push_str(e);
        }
        s
    }

    /// The deployer's account (`self`) completed with what the caller already knew: a field
    /// the deployer left empty keeps the caller's value (the error an announcement gave, the
    /// task a webhook named). Whether the details could be read is the deployer's to say.
    pub fn or_known(self, known: DeployFailure) -> DeployFailure {
        DeployFailure {
            task: self.task.or(known.task),
            state: self.state.or(known.state),
            error: self.error.or(known.error),
            step: self.step.or(known.step),
            machine: self.machine.or(known.machine),
            log_tail: if self.log_tail.is_empty() {
                known.log_tail
            } else {
                self.log_tail
            },
            details_unavailable: self.details_unavailable,
        }
    }
}

/// How a deployment ended, as shown in status and history. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeployOutcome {
    #[default]
    Succeeded,
    Failed,
}

impl DeployOutcome {
    pub fn of(failure: &Option<DeployFailure>) -> Self {
        if failure.is_some() {
            DeployOutcome::Failed
        } else {
            DeployOutcome::Succeeded
        }
    }
}

/// Deployments remembered per watch for the irreversibility guard.
pub const HISTORY: usize = 100;

/// Everything durable about one watch: the lifecycle's state. The observation and the intent
/// live in their own tables (history, verdicts and deduplication query them) and are joined in
/// by the store when the record is loaded.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct WatchRecord {
    pub current_release: Option<String>,
    pub last_good_release: Option<String>,
    pub last_good_version: Option<String>,
    /// Set by the lifecycle only. `None` is idle.
    pub state: Option<WatchState>,
    pub attention: Option<String>,
    pub last_verdict: Option<Verdict>,
    /// Condemned releases (release → reason): never a rollback target until verified again.
    #[serde(default)]
    pub quarantined: BTreeMap<String, String>,
    /// When automatic deploy calls were decided, for `max_actions`.
    #[serde(default)]
    pub actions: Vec<DateTime<Utc>>,
    /// Recent deployments, newest last.
    #[serde(default)]
    pub deployed: VecDeque<Deployed>,
    /// A command started and not finished (at most once).
    #[serde(default)]
    pub command: Option<PendingCommand>,
    /// The observation in progress (its own table).
    #[serde(skip)]
    pub observation: Option<ObservationRecord>,
    /// The latest deploy intent (its own table).
    #[serde(skip)]
    pub intent: Option<DeployIntent>,
}

impl WatchRecord {
    /// The state reported to users: observing whenever an observation is open.
    pub fn reported_state(&self) -> WatchState {
        match (&self.observation, self.state) {
            (Some(o), _) if o.condemned.is_none() => WatchState::Observing,
            (_, s) => s.unwrap_or(WatchState::Idle),
        }
    }

    /// The intent being carried out, if any.
    pub fn active_intent(&self) -> Option<&DeployIntent> {
        self.intent.as_ref().filter(|i| !i.state.is_done())
    }
}

macro_rules! display_as_str {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    )*};
}

display_as_str!(
    WatchState,
    ObservationKind,
    Source,
    IntentState,
    ActionKind,
    Chosen
);

/// A stretch of time, both ends included: the samples of the run that condemned a release
/// (or made it inconclusive), for the evidence's charts and `backstop explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Span {
    /// Whether `at` falls in the span.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        self.from <= at && at <= self.to
    }
}

/// The pre-deployment series behind a check's baseline: Prometheus' `query_range` over
/// `baseline_window`, or backstop's own scrapes. Evidence only (the baseline is its mean):
/// it lets a chart show the release's samples beside what came before. Points are finite
/// numbers, oldest first, serialised as `[time, value]` pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BeforeSeries {
    pub from: DateTime<Utc>,
    /// Where the baseline ends: the deployment (or, after a condemned release, where that
    /// release began).
    pub to: DateTime<Utc>,
    pub points: Vec<(DateTime<Utc>, f64)>,
}
