//! Deployment tools backstop reads deployments from and rolls back through.
//!
//! A closed set ([`Deployer`]), one variant per `kind`, dispatched with `match`; the types here
//! are the tool-neutral view the engine works with. Each kind owns its exactly-once strategy in
//! `execute`: Octopus searches its deployments for the intent's marker before every create;
//! Argo CD checks the application's operation state; a webhook sends the intent's idempotency
//! key with every attempt; a command is never run twice for one intent.

pub mod argocd;
pub mod command;
pub mod octopus;
pub mod retry;
pub mod webhook;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::config::{CallSettings, DeployerConfig};
use crate::metrics::Metrics;
use crate::model::{DeployFailure, DeployIntent};

/// A deployment as the engine needs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployment {
    pub id: String,
    pub release_id: String,
    pub project_id: String,
    pub environment_id: String,
    pub task_id: Option<String>,
    pub created: DateTime<Utc>,
    pub comments: Option<String>,
    /// The state of its task, when the caller looked it up (the marker search does for
    /// deployments that might supersede an intent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_state: Option<TaskState>,
}

/// State of a deployment's server task. Closed set from the Octopus API, plus `Other` so an
/// unknown future state is reported rather than rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TaskState {
    Queued,
    Executing,
    Cancelling,
    Success,
    Failed,
    Canceled,
    TimedOut,
    Other(String),
}

impl TaskState {
    pub fn parse(s: &str) -> Self {
        match s {
            "Queued" => TaskState::Queued,
            "Executing" => TaskState::Executing,
            "Cancelling" => TaskState::Cancelling,
            "Success" => TaskState::Success,
            "Failed" => TaskState::Failed,
            "Canceled" => TaskState::Canceled,
            "TimedOut" => TaskState::TimedOut,
            other => TaskState::Other(other.to_string()),
        }
    }

    /// The states a finished deployment's task ends in: success and the three failures. The
    /// other states are not final (Cancelling ends Canceled).
    pub const FINISHED: [TaskState; 4] = [
        TaskState::Success,
        TaskState::Failed,
        TaskState::TimedOut,
        TaskState::Canceled,
    ];

    /// The name Octopus uses (a `TaskState` value, or what an unknown one was called).
    pub fn as_str(&self) -> &str {
        match self {
            TaskState::Queued => "Queued",
            TaskState::Executing => "Executing",
            TaskState::Cancelling => "Cancelling",
            TaskState::Success => "Success",
            TaskState::Failed => "Failed",
            TaskState::Canceled => "Canceled",
            TaskState::TimedOut => "TimedOut",
            TaskState::Other(s) => s,
        }
    }

    /// Whether the deployment ended without succeeding: a step failed, the task timed out (in
    /// the queue) or was canceled.
    pub fn is_failure(&self) -> bool {
        matches!(
            self,
            TaskState::Failed | TaskState::TimedOut | TaskState::Canceled
        )
    }

    /// Whether the task can still end in success (so a rollback that exists is not repeated).
    pub fn is_alive_or_success(&self) -> bool {
        matches!(
            self,
            TaskState::Queued | TaskState::Executing | TaskState::Success
        )
    }
}

/// A deployment's task.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    pub id: String,
    pub state: TaskState,
    pub is_completed: bool,
    pub finished_successfully: bool,
    /// Waiting for a human (manual intervention, guided failure).
    pub has_pending_interruptions: bool,
    pub error_message: Option<String>,
}

/// Why a deployer call failed. [`DeployerError::is_retryable`] decides the retry policy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DeployerError {
    #[error("unauthorized (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("rejected (HTTP {status}): {message}")]
    Rejected { status: u16, message: String },
    #[error("server error (HTTP {status}): {message}")]
    Server {
        status: u16,
        message: String,
        /// Seconds from a `Retry-After` header.
        retry_after: Option<u64>,
    },
    #[error("timed out")]
    Timeout,
    /// The request may have been sent (connection lost or reset after sending).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The connection could not be made: the request was never sent.
    #[error("unreachable (connection refused before sending): {0}")]
    Refused(String),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("cancelled by shutdown")]
    Cancelled,
}

impl DeployerError {
    /// 5xx, 429, timeouts and connection failures are worth retrying; 4xx answers are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DeployerError::Server { .. }
                | DeployerError::Timeout
                | DeployerError::Unreachable(_)
                | DeployerError::Refused(_)
        )
    }

    /// Whether a failed create certainly made nothing: the request was never sent, or the
    /// server said so (408 request timeout, 429 too many requests). Any other failure of a
    /// sent request may have been committed by the server.
    pub fn is_definitely_not_applied(&self) -> bool {
        match self {
            DeployerError::Refused(_) => true,
            DeployerError::Server { status, .. } => matches!(status, 408 | 429),
            _ => false,
        }
    }

    /// Maps a transport error: refused before sending, timed out, or lost after sending.
    pub fn from_reqwest(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            DeployerError::Timeout
        } else if e.is_connect() {
            DeployerError::Refused(e.without_url().to_string())
        } else {
            DeployerError::Unreachable(e.without_url().to_string())
        }
    }

    /// Classifies a failed capped read of an answer ([`crate::limits::read`]): one over its
    /// cap is malformed; a transport failure while reading is never "refused", because the
    /// request was answered.
    pub fn from_read(e: crate::limits::ReadError) -> Self {
        match e {
            crate::limits::ReadError::Transport(e) => match Self::from_reqwest(e) {
                DeployerError::Refused(m) => DeployerError::Unreachable(m),
                other => other,
            },
            too_large => DeployerError::Malformed(too_large.to_string()),
        }
    }

    /// Classifies a non-success HTTP answer; shared by every HTTP deployer so they retry alike.
    pub fn from_status(
        status: reqwest::StatusCode,
        message: String,
        retry_after: Option<u64>,
    ) -> Self {
        use reqwest::StatusCode;
        let code = status.as_u16();
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DeployerError::Unauthorized {
                status: code,
                message,
            },
            StatusCode::NOT_FOUND => DeployerError::NotFound(message),
            s if s == StatusCode::TOO_MANY_REQUESTS
                || s == StatusCode::REQUEST_TIMEOUT
                || s.is_server_error() =>
            {
                DeployerError::Server {
                    status: code,
                    message,
                    retry_after,
                }
            }
            _ => DeployerError::Rejected {
                status: code,
                message,
            },
        }
    }

    /// A server-requested delay before the next attempt.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            DeployerError::Server { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A configured deployment tool.
#[derive(Debug, Clone)]
pub enum Deployer {
    Octopus(octopus::OctopusClient),
    Webhook(webhook::WebhookDeployer),
    Command(command::CommandDeployer),
    ArgoCd(argocd::ArgoCdClient),
}

/// The watch-specific coordinates of a deployment.
#[derive(Debug, Clone, PartialEq)]
pub struct Target<'a> {
    pub watch: &'a str,
    /// Octopus project id.
    pub project: &'a str,
    /// Octopus environment id.
    pub environment: &'a str,
    /// Argo CD application name.
    pub application: Option<&'a str>,
}

/// How an executed intent ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecOutcome {
    /// The deployment finished successfully.
    Succeeded,
    /// It could not be made or it failed; the text says why, for humans.
    Failed(String),
    /// A deploy call may have landed but could not be confirmed: a human must look.
    Unknown(String),
    /// A newer deployment backstop did not make replaced the condemned one; nothing deployed.
    Superseded(crate::model::NewerDeployment),
    /// Shutdown interrupted it; the persisted intent resumes after a restart.
    Cancelled,
}

/// Why a deploy call was not made: its attempt could not be recorded first (a state database
/// fault, or this node no longer holds the watch's lease). Unrecorded, a crash during the call
/// could never be known as one, so nothing is sent.
pub const NOT_RECORDED: &str =
    "cannot record the deploy call in the state database (or this node lost the watch's lease); nothing was sent";

/// What [`Deployer::execute`] needs from the engine.
pub struct Exec<'a> {
    pub cancel: &'a CancellationToken,
    /// Persists the intent after every change (state, ids, call count) *before* the next step,
    /// and marks liveness for the watchdog. Called before each deploy call too; `false` when
    /// it could not be persisted, and then no deploy call may follow.
    pub progress: &'a mut (dyn FnMut(&mut DeployIntent) -> bool + Send + Sync),
}

impl<'a> Exec<'a> {
    /// Sleeps `d` unless shutdown comes first; false on shutdown.
    pub fn sleep(&self, d: Duration) -> impl std::future::Future<Output = bool> + Send + 'a {
        let cancel: &'a CancellationToken = self.cancel;
        async move {
            tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep(d) => true,
            }
        }
    }
}

impl Deployer {
    /// Builds the client for a deployer config.
    pub fn new(
        name: &str,
        config: &DeployerConfig,
        http: reqwest::Client,
        metrics: Metrics,
    ) -> Self {
        match config {
            DeployerConfig::Octopus(c) => {
                Deployer::Octopus(octopus::OctopusClient::new(name, c.clone(), http, metrics))
            }
            DeployerConfig::Webhook(c) => Deployer::Webhook(webhook::WebhookDeployer::new(
                name,
                c.clone(),
                http,
                metrics,
            )),
            DeployerConfig::Command(c) => {
                Deployer::Command(command::CommandDeployer::new(name, c.clone(), metrics))
            }
            DeployerConfig::ArgoCd(c) => {
                Deployer::ArgoCd(argocd::ArgoCdClient::new(name, c.clone(), http, metrics))
            }
        }
    }

    /// The deployer's name in the config.
    pub fn name(&self) -> &str {
        match self {
            Deployer::Octopus(c) => c.name(),
            Deployer::Webhook(c) => c.name(),
            Deployer::Command(c) => c.name(),
            Deployer::ArgoCd(c) => c.name(),
        }
    }

    /// Timing and retry settings.
    pub fn calls(&self) -> &CallSettings {
        match self {
            Deployer::Octopus(c) => &c.config().calls,
            Deployer::Webhook(c) => &c.config().calls,
            Deployer::Command(c) => &c.config().calls,
            Deployer::ArgoCd(c) => &c.config().calls,
        }
    }

    /// Releases that were deployed successfully before, newest first: the rollback candidates
    /// when backstop has verified none itself. Deployers without history give none.
    pub async fn previous_releases(
        &self,
        target: &Target<'_>,
        cancel: &CancellationToken,
    ) -> Result<Vec<String>, DeployerError> {
        match self {
            Deployer::Octopus(c) => retry::with_retry(c.config().calls.max_retries, cancel, || {
                c.deployments(target.project, target.environment, Some("Success"), 30)
            })
            .await
            .map(|ds| ds.into_iter().map(|d| d.release_id).collect()),
            Deployer::ArgoCd(c) => c.previous_revisions(target, cancel).await,
            Deployer::Webhook(_) | Deployer::Command(_) => Ok(Vec::new()),
        }
    }

    /// Whether a release is marked as not safe to roll back from (Octopus: the marker in its
    /// release notes). `Ok(None)`: this deployer cannot tell.
    pub async fn rollback_safe(
        &self,
        release: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<bool>, DeployerError> {
        match self {
            Deployer::Octopus(c) => c.rollback_safe(release, cancel).await.map(Some),
            _ => Ok(None),
        }
    }

    /// Deploys the intent's target exactly once: resumes a persisted intent where it stopped,
    /// and never repeats a call that may have landed unless the deployer can prove it did not.
    pub async fn execute(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        exec: Exec<'_>,
    ) -> ExecOutcome {
        match self {
            Deployer::Octopus(c) => c.execute(target, rec, exec).await,
            Deployer::Webhook(c) => c.execute(target, rec, exec).await,
            Deployer::Command(c) => c.execute(target, rec, exec).await,
            Deployer::ArgoCd(c) => c.execute(target, rec, exec).await,
        }
    }

    /// Finished deployments, newest first, each with the state its task ended in
    /// ([`TaskState::FINISHED`]), for discovery polling (Octopus only): the newest `take` of
    /// each state. A deployment still queued or running is not listed until it finishes.
    ///
    /// One listing per state, four in all: `GET /api/{space}/deployments` filters by one
    /// `taskState` (a single TaskState value, not a list: octopus-api.md "Deployments",
    /// octopus-openapi-facts.md `indexDeployments_Spaces`). Each listing stands alone, so a
    /// poll costs four small requests whatever happens in the environment; one unfiltered
    /// listing would instead need a task lookup per unknown deployment, and again on every poll
    /// while it runs. The listings run concurrently, and any failure fails the poll (a partial
    /// view could trigger an older deployment before a newer one).
    pub async fn finished_deployments(
        &self,
        project: &str,
        environment: &str,
        take: usize,
    ) -> Result<Vec<Deployment>, DeployerError> {
        let Deployer::Octopus(c) = self else {
            return Ok(Vec::new());
        };
        let listings = TaskState::FINISHED.map(|state| async move {
            let found = c
                .deployments(project, environment, Some(state.as_str()), take)
                .await?;
            Ok::<_, DeployerError>(found.into_iter().map(move |mut d| {
                d.task_state = Some(state.clone());
                d
            }))
        });
        let mut all: Vec<Deployment> = futures_util::future::try_join_all(listings)
            .await?
            .into_iter()
            .flatten()
            .collect();
        all.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        // A task ends once, but a rerun or a listing taken mid-change could show it twice.
        let mut seen = std::collections::HashSet::new();
        all.retain(|d| seen.insert(d.id.clone()));
        Ok(all)
    }

    /// The deployer's own account of a failed deployment, laid over what the caller already
    /// knew (`known`, whose fields stand where the deployer says nothing; see
    /// [`DeployFailure::or_known`]). An error means the deployer could not be read: the caller
    /// keeps `known` and says why in `details_unavailable`.
    ///
    /// What each deployer can tell:
    /// - Octopus: the task's state and error message, the step and the machine that failed
    ///   and the end of their log, from `GET /api/{space}/tasks/{id}/details`
    ///   ([`octopus::details`]). The task is `known.task`, else the task of `deployment`;
    ///   with neither, `known` is all there is.
    /// - Argo CD: the application's last sync operation (`status.operationState`), if it was
    ///   a sync to `release` and ended `Failed` or `Error`: the phase as the state, its message
    ///   as the error, the first resource that failed to sync as the step and every failed
    ///   resource's message as the log. Argo CD has no machines and keeps no log of its own;
    ///   an older operation or one of another revision says nothing about this release.
    /// - Webhook and command deployers: nothing. backstop only calls them to roll back; they
    ///   keep no record of the deployments backstop is told about, so `known` is returned.
    pub async fn failure_details(
        &self,
        target: &Target<'_>,
        release: &str,
        deployment: Option<&str>,
        known: DeployFailure,
        cancel: &CancellationToken,
    ) -> Result<DeployFailure, DeployerError> {
        let found = match self {
            Deployer::Octopus(c) => {
                c.failure_details(known.task.as_deref(), deployment, cancel)
                    .await?
            }
            Deployer::ArgoCd(c) => c.failure_details(target, release, cancel).await?,
            Deployer::Webhook(_) | Deployer::Command(_) => None,
        };
        Ok(match found {
            Some(f) => f.or_known(known),
            None => known,
        })
    }

    /// A link a human can open for a deployment made by this deployer; shown in evidence and
    /// notifications, so credentials in the configured URL are masked.
    pub fn link(&self, target: &Target<'_>, deployment_id: &str) -> Option<String> {
        let link = match self {
            Deployer::Octopus(c) => Some(format!(
                "{}/app#/{}/deployments/{deployment_id}",
                c.config().url,
                c.config().space
            )),
            Deployer::ArgoCd(c) => target
                .application
                .map(|app| format!("{}/applications/{app}", c.config().url)),
            Deployer::Webhook(_) | Deployer::Command(_) => None,
        };
        link.map(|l| crate::secret::redact_url(&l))
    }

    /// The deployer's newest deployment of `release` to the watch's environment (Octopus), to
    /// match an announcement that carries no deployment id.
    pub async fn newest_deployment_of(
        &self,
        target: &Target<'_>,
        release: &str,
    ) -> Option<Deployment> {
        match self {
            Deployer::Octopus(c) => c
                .deployments(target.project, target.environment, None, 30)
                .await
                .ok()?
                .into_iter()
                .find(|d| d.release_id == release),
            _ => None,
        }
    }

    /// When a deployment started, if the deployer can say (Octopus deployments by id).
    pub async fn deployment_info(&self, id: &str) -> Option<Deployment> {
        match self {
            Deployer::Octopus(c) => c
                .deployment(id)
                .await
                .ok()
                .filter(|d| d.created > DateTime::<Utc>::UNIX_EPOCH),
            _ => None,
        }
    }
}

/// Fills `{{name}}` placeholders in one pass (a value that itself contains `{{...}}` is not
/// filled again). With `json`, values are escaped for a JSON string context. Unknown names are
/// left as they are (config validation rejects them).
pub fn fill(template: &str, values: &[(&str, &str)], json: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        match values.iter().find(|(n, _)| *n == name) {
            Some((_, value)) if json => {
                let quoted = serde_json::to_string(value).unwrap_or_default();
                out.push_str(&quoted[1..quoted.len() - 1]);
            }
            Some((_, value)) => out.push_str(value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// The placeholder values of an intent, shared by webhook and command deployers.
pub fn placeholders<'a>(
    target: &'a Target<'_>,
    rec: &'a DeployIntent,
) -> Vec<(&'static str, &'a str)> {
    vec![
        ("watch", target.watch),
        ("release", rec.target_release.as_str()),
        ("version", rec.target_version.as_deref().unwrap_or("")),
        ("target_release", rec.target_release.as_str()),
        (
            "target_version",
            rec.target_version.as_deref().unwrap_or(""),
        ),
        ("condemned_release", rec.condemned_release.as_str()),
        ("action", rec.kind.as_str()),
        ("idempotency_key", rec.marker.as_str()),
        ("environment", target.environment),
        ("deployment_id", rec.deployment_id.as_deref().unwrap_or("")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_escapes_json_values() {
        let t = r#"{"release": "{{release}}", "watch": "{{watch}}"}"#;
        let out = fill(t, &[("release", "R\"1"), ("watch", "w")], true);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["release"], "R\"1");
        assert_eq!(fill("/x/{{watch}}", &[("watch", "a b")], false), "/x/a b");
        // One pass: a value holding a placeholder is not filled again.
        let out = fill("{{a}}-{{b}}", &[("a", "{{b}}"), ("b", "B")], false);
        assert_eq!(out, "{{b}}-B");
        assert_eq!(
            fill("{{unknown}} {{a", &[("a", "x")], false),
            "{{unknown}} {{a"
        );
    }

    #[test]
    fn links_and_debug_hide_url_credentials() {
        let calls = CallSettings {
            timeout: Duration::from_secs(1),
            task_poll: Duration::from_secs(1),
            task_timeout: Duration::from_secs(1),
            max_retries: 1,
            settle: Duration::from_secs(1),
        };
        let octopus = DeployerConfig::Octopus(crate::config::OctopusConfig {
            url: "https://ci:s3cr3t@octopus.example".into(),
            space: "Spaces-1".into(),
            api_key: crate::secret::Secret::new("API-KEY"),
            webhook_header: None,
            webhook_secret: None,
            no_rollback_marker: "x".into(),
            calls: calls.clone(),
        });
        let argo = DeployerConfig::ArgoCd(crate::config::ArgoCdConfig {
            url: "https://s3cr3t@argocd.example".into(),
            token: crate::secret::Secret::new("tok"),
            calls,
        });
        let target = Target {
            watch: "w",
            project: "Projects-1",
            environment: "Environments-1",
            application: Some("shop"),
        };
        let http = reqwest::Client::new();
        let octopus = Deployer::new("o", &octopus, http.clone(), Metrics::new());
        let argo = Deployer::new("a", &argo, http, Metrics::new());
        assert_eq!(
            octopus.link(&target, "Deployments-1").unwrap(),
            "https://***@octopus.example/app#/Spaces-1/deployments/Deployments-1"
        );
        assert_eq!(
            argo.link(&target, "1").unwrap(),
            "https://***@argocd.example/applications/shop"
        );
        for d in [octopus, argo] {
            assert!(!format!("{d:?}").contains("s3cr3t"), "{d:?}");
        }
    }
}
