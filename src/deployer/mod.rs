//! Deployment tools backstop reads deployments from and rolls back through.
//!
//! A closed set ([`Deployer`]), one variant per `kind`, dispatched with `match`; the types here
//! are the tool-neutral view the engine works with.

pub mod octopus;
pub mod retry;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::DeployerConfig;
use crate::metrics::Metrics;

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
    #[error("unreachable: {0}")]
    Unreachable(String),
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
            DeployerError::Server { .. } | DeployerError::Timeout | DeployerError::Unreachable(_)
        )
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
        }
    }

    /// Successful deployments of a project to an environment, newest first.
    pub async fn successful_deployments(
        &self,
        project: &str,
        environment: &str,
        take: usize,
    ) -> Result<Vec<Deployment>, DeployerError> {
        match self {
            Deployer::Octopus(c) => {
                c.deployments(project, environment, Some("Success"), take)
                    .await
            }
        }
    }

    /// Recent deployments in any state, newest first.
    pub async fn recent_deployments(
        &self,
        project: &str,
        environment: &str,
        take: usize,
    ) -> Result<Vec<Deployment>, DeployerError> {
        match self {
            Deployer::Octopus(c) => c.deployments(project, environment, None, take).await,
        }
    }

    /// One deployment.
    pub async fn deployment(&self, id: &str) -> Result<Deployment, DeployerError> {
        match self {
            Deployer::Octopus(c) => c.deployment(id).await,
        }
    }

    /// Starts a deployment of `release` to `environment`. Not retried here: a retry of a
    /// create must first look for the deployment the failed attempt may have made.
    pub async fn create_deployment(
        &self,
        release: &str,
        environment: &str,
        comments: &str,
    ) -> Result<Deployment, DeployerError> {
        match self {
            Deployer::Octopus(c) => c.create_deployment(release, environment, comments).await,
        }
    }

    /// A server task.
    pub async fn task(&self, id: &str) -> Result<Task, DeployerError> {
        match self {
            Deployer::Octopus(c) => c.task(id).await,
        }
    }

    /// The deployer's name in the config.
    pub fn name(&self) -> &str {
        match self {
            Deployer::Octopus(c) => c.name(),
        }
    }

    /// Retry settings: attempts, task poll interval, task timeout.
    pub fn max_retries(&self) -> u32 {
        match self {
            Deployer::Octopus(c) => c.config().max_retries,
        }
    }

    pub fn task_poll(&self) -> std::time::Duration {
        match self {
            Deployer::Octopus(c) => c.config().task_poll,
        }
    }

    pub fn task_timeout(&self) -> std::time::Duration {
        match self {
            Deployer::Octopus(c) => c.config().task_timeout,
        }
    }
}
