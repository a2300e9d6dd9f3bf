//! `POST /v1/hooks/octopus`: Octopus subscription webhooks.
//!
//! Authenticated by the header and secret configured on an octopus deployer. A
//! `DeploymentSucceeded` or `DeploymentFailed` event for a watched project and environment
//! starts an observation; a failed one carries a [`DeployFailure`] naming the event's
//! `ServerTasks-` id, so the task's details can be fetched (the event itself says only that it
//! failed; the details say how: Failed, TimedOut or Canceled). Anything else is acknowledged
//! and ignored, so Octopus does not retry it. Event ids are remembered once delivered, because
//! Octopus may deliver an event twice.
//!
//! The payload is decoded by [`subscription::decode`]; what its event means is decided by
//! [`decide`], without I/O; the handler authenticates, finds the watches and delivers.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;

use super::bodies::{ErrorBody, HookAnswer};
use super::{deliver, ApiError, ApiState};
use crate::deployer::octopus::subscription::{self, Envelope, Event};
use crate::engine::Trigger;
use crate::model::{DeployFailure, Source};

/// The event categories that start an observation. Closed set; Octopus has dozens more
/// (`GET /api/events/categories`), all ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    DeploymentSucceeded,
    DeploymentFailed,
}

impl Category {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "DeploymentSucceeded" => Some(Category::DeploymentSucceeded),
            "DeploymentFailed" => Some(Category::DeploymentFailed),
            _ => None,
        }
    }
}

/// What an event asks for.
#[derive(Debug, Clone, PartialEq)]
enum Decision {
    /// Acknowledge and do nothing, for this reason.
    Ignore(&'static str),
    /// A deployment of `project` to `environment`, for the watches on them.
    Deploy {
        project: String,
        environment: String,
        trigger: Box<Trigger>,
    },
}

/// Reads an event. Its ids are picked out of `RelatedDocumentIds` by prefix; an event of a
/// category that starts an observation must name a project, an environment and a release.
fn decide(event: &Event) -> Result<Decision, ApiError> {
    let Some(category) = Category::parse(&event.category) else {
        return Ok(Decision::Ignore(
            "category is not DeploymentSucceeded or DeploymentFailed",
        ));
    };
    let find = |prefix: &str| {
        event
            .related_document_ids
            .iter()
            .find(|id| id.starts_with(prefix))
            .cloned()
    };
    let (Some(project), Some(environment), Some(release)) =
        (find("Projects-"), find("Environments-"), find("Releases-"))
    else {
        return Err(ApiError::BadRequest(
            "RelatedDocumentIds lacks a Projects-, Environments- or Releases- id".into(),
        ));
    };
    let failure = (category == Category::DeploymentFailed).then(|| DeployFailure {
        task: find("ServerTasks-"),
        state: Some("Failed".into()),
        ..DeployFailure::default()
    });
    Ok(Decision::Deploy {
        project,
        environment,
        trigger: Box::new(Trigger {
            release,
            version: None,
            deployment_id: find("Deployments-"),
            deployed_at: event.occurred.map(|o| o.with_timezone(&Utc)),
            source: Source::Webhook,
            rollback_safe: None,
            failure,
        }),
    })
}

fn ignored(reason: &str) -> Response {
    let answer = HookAnswer::Ignored {
        accepted: true,
        reason: reason.into(),
    };
    (StatusCode::OK, Json(answer)).into_response()
}

/// `POST /v1/hooks/octopus`: an Octopus subscription webhook.
#[utoipa::path(post, path = "/v1/hooks/octopus", tag = "control", request_body = Envelope,
    security(("octopus_webhook" = [])), responses(
    (status = 200, description = "Acknowledged and ignored", body = HookAnswer),
    (status = 202, description = "The watches will observe the deployment", body = HookAnswer),
    (status = 400, description = "Invalid payload, or an event lacking its ids", body = ErrorBody),
    (status = 401, description = "Missing or wrong webhook secret", body = ErrorBody,
        headers(("WWW-Authenticate" = String))),
    (status = 404, description = "A watch was removed (by a reload) while the event was delivered",
        body = ErrorBody),
    (status = 413, description = "Body larger than 64 KiB", body = String, content_type = "text/plain"),
    (status = 503, description = "A watch's node or the store is unavailable", body = ErrorBody)))]
pub(super) async fn octopus(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let auth = s.auth();
    let deployer = auth
        .hooks
        .iter()
        .find(|(_, header, secret)| {
            headers
                .get(header.as_str())
                .is_some_and(|v| secret.matches(v.as_bytes()))
        })
        .map(|(name, _, _)| name.clone())
        .ok_or(ApiError::Unauthorized("missing or wrong webhook secret"))?;
    let event = subscription::decode(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid Octopus subscription payload: {e}")))?;
    let (project, environment, trigger) = match decide(&event)? {
        Decision::Ignore(reason) => return Ok(ignored(reason)),
        Decision::Deploy {
            project,
            environment,
            trigger,
        } => (project, environment, trigger),
    };
    let watches: Vec<String> = s
        .engine
        .watches_of(&deployer)
        .into_iter()
        .filter(|(_, p, e)| *p == project && *e == environment)
        .map(|(name, _, _)| name)
        .collect();
    if watches.is_empty() {
        return Ok(ignored("no watch for this project and environment"));
    }
    let (release, deployment) = (trigger.release.clone(), trigger.deployment_id.clone());
    let failed = trigger.failure.is_some();
    let triggers = watches
        .iter()
        .map(|w| (w.clone(), (*trigger).clone()))
        .collect();
    // The event id is marked seen in the transaction that records the triggers: answered 202,
    // the deployment survives a crash or a reload before the watch handles it; a failure
    // (5xx) records nothing, so Octopus's redelivery is handled.
    let fresh = deliver(&s, Some(&event.id), triggers).await?;
    if !fresh {
        return Ok(ignored("event already delivered"));
    }
    for watch in &watches {
        tracing::info!(%watch, %release, deployment = ?deployment, event = %event.id, failed, "deployment delivered by Octopus webhook");
    }
    let answer = HookAnswer::Observing {
        accepted: true,
        watches,
    };
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The `Event` of a subscription payload, as Octopus sends it (see octopus-api.md).
    fn event(category: &str, ids: &[&str]) -> Event {
        let payload = json!({
            "Timestamp": "2026-03-02T14:06:44.000+00:00", "EventType": "SubscriptionPayload",
            "Payload": {
                "ServerUri": "https://octopus.example", "BatchId": "5b1c", "TotalEventsInBatch": 1,
                "Subscription": {"Id": "Subscriptions-1", "Name": "backstop", "SpaceId": "Spaces-1"},
                "Event": {
                    "Id": "Events-991", "Category": category,
                    "Occurred": "2026-03-02T14:06:43.111+00:00",
                    "Message": "Deploy to Production failed for shop release 1.4.0 to Production",
                    "RelatedDocumentIds": ids, "SpaceId": "Spaces-1", "Username": "system",
                    "Links": {"Self": "/api/events/Events-991"},
                },
            },
        });
        subscription::decode(payload.to_string().as_bytes()).unwrap()
    }

    const IDS: &[&str] = &[
        "Deployments-2043",
        "Projects-21",
        "Releases-88",
        "Environments-3",
        "ServerTasks-58231",
        "Channels-1",
    ];

    fn deploy(d: Decision) -> (String, String, Trigger) {
        match d {
            Decision::Deploy {
                project,
                environment,
                trigger,
            } => (project, environment, *trigger),
            other => panic!("expected a deployment, got {other:?}"),
        }
    }

    #[test]
    fn a_failed_deployment_carries_its_task() {
        let (project, environment, t) = deploy(decide(&event("DeploymentFailed", IDS)).unwrap());
        assert_eq!(
            (project.as_str(), environment.as_str()),
            ("Projects-21", "Environments-3")
        );
        assert_eq!(t.release, "Releases-88");
        assert_eq!(t.deployment_id.as_deref(), Some("Deployments-2043"));
        assert_eq!(t.source, Source::Webhook);
        assert_eq!(
            t.deployed_at.map(|d| d.to_rfc3339()),
            Some("2026-03-02T14:06:43.111+00:00".into())
        );
        assert_eq!(
            t.failure,
            Some(DeployFailure {
                task: Some("ServerTasks-58231".into()),
                state: Some("Failed".into()),
                ..DeployFailure::default()
            })
        );
        // Without a task id the failure still stands.
        let no_task: Vec<&str> = IDS
            .iter()
            .copied()
            .filter(|i| !i.starts_with("ServerTasks-"))
            .collect();
        let (_, _, t) = deploy(decide(&event("DeploymentFailed", &no_task)).unwrap());
        assert_eq!(t.failure.unwrap().task, None);
    }

    #[test]
    fn a_succeeded_deployment_carries_no_failure() {
        let (_, _, t) = deploy(decide(&event("DeploymentSucceeded", IDS)).unwrap());
        assert_eq!(t.failure, None);
        assert_eq!(t.release, "Releases-88");
    }

    #[test]
    fn other_categories_are_ignored_and_incomplete_events_refused() {
        for category in [
            "DeploymentQueued",
            "DeploymentStarted",
            "DeploymentResumed",
            "deploymentfailed",
            "",
        ] {
            assert!(
                matches!(decide(&event(category, IDS)), Ok(Decision::Ignore(_))),
                "{category}"
            );
        }
        for missing in ["Projects-", "Environments-", "Releases-"] {
            let ids: Vec<&str> = IDS
                .iter()
                .copied()
                .filter(|i| !i.starts_with(missing))
                .collect();
            for category in ["DeploymentSucceeded", "DeploymentFailed"] {
                assert!(
                    matches!(decide(&event(category, &ids)), Err(ApiError::BadRequest(_))),
                    "{category} without {missing}"
                );
            }
        }
    }
}
