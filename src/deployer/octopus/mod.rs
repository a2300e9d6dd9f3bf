//! Octopus Deploy REST client: deployments, releases' redeploys and server tasks.
//!
//! Paths are space-scoped (`/api/{space}/...`); the API key goes in `X-Octopus-ApiKey` and
//! nowhere else (never in URLs, so it cannot leak through a logged request). Error bodies
//! `{ErrorMessage, Errors}` become the message of a [`DeployerError`]. Answers are read up to
//! [`MAX_BODY`]: a task's details carry its log, and a server is not trusted to keep that small.

use std::fmt;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

pub mod details;
mod execute;
pub mod protocol;

use super::{DeployerError, Deployment, Task, TaskState};
use crate::config::OctopusConfig;
use crate::metrics::Metrics;
use crate::model::DeployFailure;

/// Largest answer read from Octopus. Listings are a page of deployments (tens of KiB); a task's
/// details with `verbose=false` and [`DETAILS_TAIL`] lines per activity stay far below too.
pub const MAX_BODY: usize = 8 << 20;

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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Collection {
    items: Vec<DeploymentResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeploymentResource {
    id: String,
    release_id: String,
    #[serde(default)]
    project_id: Option<String>,
    environment_id: String,
    #[serde(default)]
    task_id: Option<String>,
    #[serde(default)]
    created: Option<DateTime<chrono::FixedOffset>>,
    #[serde(default)]
    comments: Option<String>,
}

impl From<DeploymentResource> for Deployment {
    fn from(d: DeploymentResource) -> Self {
        Deployment {
            id: d.id,
            release_id: d.release_id,
            project_id: d.project_id.unwrap_or_default(),
            environment_id: d.environment_id,
            task_id: d.task_id,
            created: d
                .created
                .map(|c| c.with_timezone(&Utc))
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            comments: d.comments,
            task_state: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TaskResource {
    id: String,
    state: String,
    #[serde(default)]
    is_completed: Option<bool>,
    #[serde(default)]
    finished_successfully: Option<bool>,
    #[serde(default)]
    has_pending_interruptions: Option<bool>,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    errors: Option<Vec<String>>,
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

/// "ErrorMessage: error1; error2", or the start of a non-JSON body.
fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if e.error_message.is_some() => {
            let mut text = e.error_message.unwrap_or_default();
            let details = e.errors.unwrap_or_default();
            if !details.is_empty() {
                text.push_str(": ");
                text.push_str(&details.join("; "));
            }
            text
        }
        _ => String::from_utf8_lossy(body).chars().take(200).collect(),
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
    ) -> Result<Value, DeployerError> {
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
    ) -> Result<Value, DeployerError> {
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
        let mut resp = req.send().await.map_err(DeployerError::from_reqwest)?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        // The request was answered: a failure reading the body is not "refused".
        let mut bytes = Vec::new();
        while let Some(chunk) =
            resp.chunk()
                .await
                .map_err(|e| match DeployerError::from_reqwest(e) {
                    DeployerError::Refused(m) => DeployerError::Unreachable(m),
                    other => other,
                })?
        {
            if bytes.len() + chunk.len() > MAX_BODY {
                return Err(DeployerError::Malformed(format!(
                    "answer larger than {} MiB",
                    MAX_BODY >> 20
                )));
            }
            bytes.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| DeployerError::Malformed(e.to_string()));
        }
        Err(DeployerError::from_status(
            status,
            error_text(&bytes),
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
        let c: Collection =
            serde_json::from_value(v).map_err(|e| DeployerError::Malformed(e.to_string()))?;
        let mut items: Vec<Deployment> = c.items.into_iter().map(Deployment::from).collect();
        // Octopus lists newest first; sort anyway so a server that does not cannot mislead us.
        items.sort_by_key(|d| std::cmp::Reverse(d.created));
        Ok(items)
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
        serde_json::from_value::<DeploymentResource>(v)
            .map(Deployment::from)
            .map_err(|e| DeployerError::Malformed(e.to_string()))
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
        serde_json::from_value::<DeploymentResource>(v)
            .map(Deployment::from)
            .map_err(|e| DeployerError::Malformed(e.to_string()))
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
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Release {
            #[serde(default)]
            version: Option<String>,
            #[serde(default)]
            release_notes: Option<String>,
        }
        let url = self.url(&format!("releases/{}", id_segment(id)?));
        let v = self
            .request("get_release", Method::GET, url, &[], None)
            .await?;
        let r: Release =
            serde_json::from_value(v).map_err(|e| DeployerError::Malformed(e.to_string()))?;
        Ok(ReleaseInfo {
            version: r.version,
            notes: r.release_notes,
        })
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
        Ok(details::failure(&v))
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
        let t: TaskResource =
            serde_json::from_value(v).map_err(|e| DeployerError::Malformed(e.to_string()))?;
        let state = TaskState::parse(&t.state);
        Ok(Task {
            id: t.id,
            is_completed: t.is_completed.unwrap_or(!matches!(
                state,
                TaskState::Queued | TaskState::Executing | TaskState::Cancelling
            )),
            finished_successfully: t
                .finished_successfully
                .unwrap_or(state == TaskState::Success),
            has_pending_interruptions: t.has_pending_interruptions.unwrap_or(false),
            error_message: t.error_message.filter(|m| !m.is_empty()),
            state,
        })
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

    #[test]
    fn error_text_joins_message_and_errors() {
        let body = br#"{"ErrorMessage":"There was a problem","Errors":["a","b"],"Details":null}"#;
        assert_eq!(error_text(body), "There was a problem: a; b");
        assert_eq!(error_text(b"plain"), "plain");
    }

    #[test]
    fn deployment_resource_parses_octopus_timestamps() {
        let v = json!({
            "Id": "Deployments-1", "ReleaseId": "Releases-1", "ProjectId": "Projects-1",
            "EnvironmentId": "Environments-1", "TaskId": "ServerTasks-1",
            "Created": "2023-09-19T21:35:08.563+02:00", "Comments": null
        });
        let d: Deployment = serde_json::from_value::<DeploymentResource>(v)
            .unwrap()
            .into();
        assert_eq!(d.created.to_rfc3339(), "2023-09-19T19:35:08.563+00:00");
        assert_eq!(d.comments, None);
    }
}
