//! Octopus Deploy REST client: deployments, releases' redeploys and server tasks.
//!
//! Paths are space-scoped (`/api/{space}/...`); the API key goes in `X-Octopus-ApiKey` and
//! nowhere else (never in URLs, so it cannot leak through a logged request). Error bodies
//! `{ErrorMessage, Errors}` become the message of a [`DeployerError`]. Answers are read up to
//! [`limits::OCTOPUS`]: a task's details carry its log, and a server is not trusted to keep
//! that small. What an answer says is read by the pure decoders of [`decode`].

use std::fmt;

use reqwest::Method;
use serde_json::{json, Value};

pub mod decode;
pub mod details;
mod execute;
pub mod protocol;
pub mod subscription;

use super::{DeployerError, Deployment, Task};
use crate::config::OctopusConfig;
use crate::limits;
use crate::metrics::Metrics;
use crate::model::DeployFailure;

/// Log lines per activity asked for with a task's details (`tail`): enough for the lines
/// [`details`] keeps, while a task with thousands of lines per target stays a small answer.
pub const DETAILS_TAIL: usize = 50;

/// What backstop reads of a release.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleaseInfo {
    pub version: Option<String>,
    pub notes: Option<String>,
}

/// A client for one `[deployers.NAME]` of kind octopus.
#[derive(Clone)]
pub struct OctopusClient {
    name: String,
    config: OctopusConfig,
    http: reqwest::Client,
    metrics: Metrics,
}

impl fmt::Debug for OctopusClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OctopusClient")
            .field("name", &self.name)
            .field("url", &crate::secret::redact_url(&self.config.url))
            .field("space", &self.config.space)
            .finish_non_exhaustive()
    }
}

/// `id` as one path segment. An id from outside (a webhook's `ServerTasks-` id) could otherwise
/// carry `/` or `..` and send the API key to another endpoint; Octopus ids are letters, digits
/// and dashes.
fn id_segment(id: &str) -> Result<&str, DeployerError> {
    let ok = !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(id)
    } else {
        Err(DeployerError::NotFound(format!(
            "{:?} is not an Octopus id",
            crate::text::truncate(id, 60)
        )))
    }
}

impl OctopusClient {
    pub fn new(name: &str, config: OctopusConfig, http: reqwest::Client, metrics: Metrics) -> Self {
        OctopusClient {
            name: name.to_string(),
            config,
            http,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &OctopusConfig {
        &self.config
    }

    fn url(&self, path: &str) -> String {
        format!("{}/api/{}/{path}", self.config.url, self.config.space)
    }

    /// One request; every failure is counted in the deployer error metric by operation.
    async fn request(
        &self,
        operation: &str,
        method: Method,
        url: String,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Vec<u8>, DeployerError> {
        let result = self.request_inner(method, url, query, body).await;
        if let Err(e) = &result {
            self.metrics.deployer_error(&self.name, operation);
            tracing::debug!(deployer = %self.name, operation, error = %e, "octopus call failed");
        }
        result
    }

    async fn request_inner(
        &self,
        method: Method,
        url: String,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> Result<Vec<u8>, DeployerError> {
        let mut req = self
            .http
            .request(method, url)
            .query(query)
            .header("X-Octopus-ApiKey", self.config.api_key.expose())
            .header("Accept", "application/json")
            .timeout(self.config.calls.timeout);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(DeployerError::from_reqwest)?;
        let status = resp.status();
        let retry_after = crate::retry_after::seconds(resp.headers(), chrono::Utc::now());
        let bytes = limits::read(resp, limits::OCTOPUS)
            .await
            .map_err(DeployerError::from_read)?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(DeployerError::from_status(
            status,
            decode::error_text(&bytes),
            retry_after,
        ))
    }

    /// Deployments of a project to an environment, newest first, optionally by task state.
    pub async fn deployments(
        &self,
        project: &str,
        environment: &str,
        task_state: Option<&str>,
        take: usize,
    ) -> Result<Vec<Deployment>, DeployerError> {
        self.deployments_page(project, environment, task_state, 0, take)
            .await
    }

    /// One page of [`Self::deployments`], `skip` items in.
    pub async fn deployments_page(
        &self,
        project: &str,
        environment: &str,
        task_state: Option<&str>,
        skip: usize,
        take: usize,
    ) -> Result<Vec<Deployment>, DeployerError> {
        let mut query = vec![
            ("projects", project.to_string()),
            ("environments", environment.to_string()),
            ("skip", skip.to_string()),
            ("take", take.to_string()),
        ];
        if let Some(s) = task_state {
            query.push(("taskState", s.to_string()));
        }
        let v = self
            .request(
                "list_deployments",
                Method::GET,
                self.url("deployments"),
                &query,
                None,
            )
            .await?;
        decode::deployments(&v)
    }

    /// One deployment by id.
    pub async fn deployment(&self, id: &str) -> Result<Deployment, DeployerError> {
        let v = self
            .request(
                "get_deployment",
                Method::GET,
                // An id from outside (a webhook, an announcement) never becomes a path.
                self.url(&format!("deployments/{}", id_segment(id)?)),
                &[],
                None,
            )
            .await?;
        decode::deployment(&v)
    }

    /// `POST /api/{space}/deployments`: deploys `release` to `environment`.
    pub async fn create_deployment(
        &self,
        release: &str,
        environment: &str,
        comments: &str,
    ) -> Result<Deployment, DeployerError> {
        let body = json!({
            "ReleaseId": release,
            "EnvironmentId": environment,
            "Comments": comments,
        });
        let v = self
            .request(
                "create_deployment",
                Method::POST,
                self.url("deployments"),
                &[],
                Some(body),
            )
            .await?;
        decode::deployment(&v)
    }

    /// Whether a release may be rolled back from: false when its notes carry the marker.
    pub async fn rollback_safe(
        &self,
        release: &str,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<bool, DeployerError> {
        let r = super::retry::with_retry(self.config.calls.max_retries, cancel, || {
            self.release(release)
        })
        .await?;
        Ok(!r
            .notes
            .unwrap_or_default()
            .contains(&self.config.no_rollback_marker))
    }

    /// `GET /api/{space}/releases/{id}`: a release's version and notes.
    pub async fn release(&self, id: &str) -> Result<ReleaseInfo, DeployerError> {
        let url = self.url(&format!("releases/{}", id_segment(id)?));
        let v = self
            .request("get_release", Method::GET, url, &[], None)
            .await?;
        decode::release(&v)
    }

    /// `GET /api/{space}/tasks/{id}/details?verbose=false&tail=N`: Octopus's account of how a
    /// task ended, read by [`details::failure`] (the task's state and error, the step and
    /// machine that failed, the end of their log). Verbose lines are left out by the server,
    /// and each activity's log is cut to its last [`DETAILS_TAIL`] lines.
    pub async fn task_details(&self, id: &str) -> Result<DeployFailure, DeployerError> {
        let path = format!("tasks/{}/details", id_segment(id)?);
        let query = [
            ("verbose", "false".to_string()),
            ("tail", DETAILS_TAIL.to_string()),
        ];
        let v = self
            .request(
                "get_task_details",
                Method::GET,
                self.url(&path),
                &query,
                None,
            )
            .await?;
        decode::task_details(&v)
    }

    /// What Octopus says about a failed deployment: the details of `task`, or, without one, of
    /// the task of `deployment`; retried like other reads until shutdown. `Ok(None)`: neither
    /// was given, or the deployment has no task.
    pub async fn failure_details(
        &self,
        task: Option<&str>,
        deployment: Option<&str>,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Result<Option<DeployFailure>, DeployerError> {
        let retries = self.config.calls.max_retries;
        let task = match (task, deployment) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => {
                let d = super::retry::with_retry(retries, cancel, || self.deployment(d)).await?;
                match d.task_id {
                    Some(t) => t,
                    None => return Ok(None),
                }
            }
            (None, None) => return Ok(None),
        };
        super::retry::with_retry(retries, cancel, || self.task_details(&task))
            .await
            .map(Some)
    }

    /// `GET /api/{space}/tasks/{id}`.
    pub async fn task(&self, id: &str) -> Result<Task, DeployerError> {
        let v = self
            .request(
                "get_task",
                Method::GET,
                self.url(&format!("tasks/{}", id_segment(id)?)),
                &[],
                None,
            )
            .await?;
        decode::task(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_go_into_paths() {
        assert_eq!(
            id_segment("ServerTasks-58231").unwrap(),
            "ServerTasks-58231"
        );
        for bad in [
            "",
            "ServerTasks-1/../../users",
            "ServerTasks-1?x=1",
            "a b",
            "..",
            "é",
        ] {
            assert!(
                matches!(id_segment(bad), Err(DeployerError::NotFound(_))),
                "{bad:?}"
            );
        }
    }
}
