//! The Octopus API's answers, decoded: bytes in, backstop's records or an error naming the
//! problem out. Pure and total (no input panics), so the client's I/O stays a thin shell and
//! each decoder can be fuzzed on its own.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::{details, ReleaseInfo};
use crate::deployer::{DeployerError, Deployment, Task, TaskState};
use crate::model::DeployFailure;

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

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Release {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    release_notes: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    errors: Option<Vec<String>>,
}

fn json<'a, T: Deserialize<'a>>(what: &str, body: &'a [u8]) -> Result<T, DeployerError> {
    serde_json::from_slice(body).map_err(|e| DeployerError::Malformed(format!("{what}: {e}")))
}

/// `GET /deployments`: a page of deployments, newest first (sorted here, so a server that
/// does not cannot mislead us).
pub fn deployments(body: &[u8]) -> Result<Vec<Deployment>, DeployerError> {
    let c: Collection = json("deployment list", body)?;
    let mut items: Vec<Deployment> = c.items.into_iter().map(Deployment::from).collect();
    items.sort_by_key(|d| std::cmp::Reverse(d.created));
    Ok(items)
}

/// `GET /deployments/{id}`, and the answer to `POST /deployments`.
pub fn deployment(body: &[u8]) -> Result<Deployment, DeployerError> {
    json::<DeploymentResource>("deployment", body).map(Deployment::from)
}

/// `GET /releases/{id}`: a release's version and notes.
pub fn release(body: &[u8]) -> Result<ReleaseInfo, DeployerError> {
    let r: Release = json("release", body)?;
    Ok(ReleaseInfo {
        version: r.version,
        notes: r.release_notes,
    })
}

/// `GET /tasks/{id}`: a server task, its flags completed from its state when absent.
pub fn task(body: &[u8]) -> Result<Task, DeployerError> {
    let t: TaskResource = json("task", body)?;
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

/// `GET /tasks/{id}/details`: Octopus's account of how a task ended, read by
/// [`details::failure`]. Any JSON document is an account (what is missing is left out); only
/// a body that is not JSON is an error.
pub fn task_details(body: &[u8]) -> Result<DeployFailure, DeployerError> {
    let doc: serde_json::Value = json("task details", body)?;
    Ok(details::failure(&doc))
}

/// Longest error text kept from a server's answer (Octopus's and Argo CD's).
pub const MAX_ERROR_TEXT: usize = 1024;

/// An error answer `{ErrorMessage, Errors}` as "ErrorMessage: error1; error2" (one line, at
/// most [`MAX_ERROR_TEXT`]), or the start of a body that is not one.
pub fn error_text(body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if e.error_message.is_some() => {
            let mut text = e.error_message.unwrap_or_default();
            let details = e.errors.unwrap_or_default();
            if !details.is_empty() {
                text.push_str(": ");
                text.push_str(&details.join("; "));
            }
            // It reaches logs, the intent's detail and the status API: one bounded line.
            crate::text::truncate(&crate::text::clean_line(&text), MAX_ERROR_TEXT)
        }
        _ => crate::text::clean_line(
            &String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn malformed(r: Result<impl std::fmt::Debug, DeployerError>) -> String {
        match r {
            Err(DeployerError::Malformed(m)) => m,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn error_text_joins_message_and_errors() {
        let body = br#"{"ErrorMessage":"There was a problem","Errors":["a","b"],"Details":null}"#;
        assert_eq!(error_text(body), "There was a problem: a; b");
        assert_eq!(error_text(b"plain"), "plain");
        assert_eq!(error_text(&[0xff; 300]).chars().count(), 200);
    }

    #[test]
    fn deployments_parse_octopus_timestamps_and_sort_newest_first() {
        let body = br#"{"Items": [
            {"Id": "Deployments-1", "ReleaseId": "Releases-1", "EnvironmentId": "Environments-1",
             "Created": "2023-09-19T21:35:08.563+02:00", "Comments": null},
            {"Id": "Deployments-2", "ReleaseId": "Releases-2", "EnvironmentId": "Environments-1",
             "ProjectId": "Projects-1", "TaskId": "ServerTasks-1",
             "Created": "2023-09-20T10:00:00+00:00"}
        ]}"#;
        let list = deployments(body).unwrap();
        assert_eq!(list[0].id, "Deployments-2");
        assert_eq!(
            list[1].created.to_rfc3339(),
            "2023-09-19T19:35:08.563+00:00"
        );
        assert_eq!(list[1].comments, None);
        assert_eq!(list[1].project_id, "");
    }

    #[test]
    fn tasks_complete_their_flags_from_the_state() {
        let t = task(br#"{"Id": "ServerTasks-1", "State": "Failed", "ErrorMessage": ""}"#).unwrap();
        assert!(t.is_completed && !t.finished_successfully && t.error_message.is_none());
        let t = task(br#"{"Id": "ServerTasks-1", "State": "Executing"}"#).unwrap();
        assert!(!t.is_completed);
        let r = release(br#"{"Version": "1.2.3", "ReleaseNotes": null}"#).unwrap();
        assert_eq!(r.version.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn malformed_answers_are_errors_naming_the_resource() {
        assert!(malformed(deployments(b"")).starts_with("deployment list: EOF"));
        assert!(malformed(deployments(br#"{"Items": [{"Id": "D-1""#)).contains("EOF"));
        assert!(malformed(deployments(br#"{"Items": {}}"#)).contains("invalid type"));
        assert!(malformed(deployment(br#"{"Id": 7}"#)).starts_with("deployment: invalid type"));
        assert!(
            malformed(deployment(br#"{"Id": "D-1", "ReleaseId": "R-1"}"#))
                .contains("missing field")
        );
        let bad_time = br#"{"Id":"D","ReleaseId":"R","EnvironmentId":"E","Created":"yesterday"}"#;
        assert!(malformed(deployment(bad_time)).starts_with("deployment: "));
        let huge_time = br#"{"Id":"D","ReleaseId":"R","EnvironmentId":"E","Created":"+999999999-01-01T00:00:00Z"}"#;
        assert!(deployment(huge_time).is_err());
        assert!(malformed(task(br#"{"Id": "T", "State": 1e999}"#)).starts_with("task: "));
        assert!(malformed(task(
            br#"{"Id": "T", "State": "Failed", "IsCompleted": "yes"}"#
        ))
        .contains("invalid type"));
        assert!(malformed(release(b"[1, 2")).starts_with("release: "));
        assert!(malformed(task_details(b"\xff\xfe")).starts_with("task details: "));
        assert!(
            task_details(b"[]").is_ok(),
            "any JSON is an account, perhaps empty"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        // Read into a document: serde_json's recursion limit (128) stops it.
        assert!(malformed(task_details(deep.as_bytes())).contains("recursion limit"));
        let details = format!(r#"{{"ActivityLogs": {deep}}}"#);
        assert!(malformed(task_details(details.as_bytes())).contains("recursion limit"));
        for decoded in [
            deployments(deep.as_bytes()).map(drop),
            deployment(deep.as_bytes()).map(drop),
            task(deep.as_bytes()).map(drop),
            release(deep.as_bytes()).map(drop),
        ] {
            malformed(decoded);
        }
        // A field backstop does not read is skipped without recursing: no limit is needed.
        let extra = format!(r#"{{"Items": [], "Links": {deep}}}"#);
        assert!(deployments(extra.as_bytes()).unwrap().is_empty());
        assert_eq!(error_text(deep.as_bytes()).len(), 200);
    }
}
