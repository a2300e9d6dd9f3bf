//! `POST /v1/hooks/octopus`: Octopus subscription webhooks.
//!
//! Authenticated by the header and secret configured on an octopus deployer. Only
//! `DeploymentSucceeded` events for a watched project and environment start an observation;
//! anything else is acknowledged and ignored, so Octopus does not retry it. Event ids are
//! remembered once delivered, because Octopus may deliver an event twice.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

use super::{deliver, ApiError, ApiState};
use crate::engine::Trigger;
use crate::model::Source;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    payload: Payload,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Payload {
    event: Event,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    id: String,
    category: String,
    #[serde(default)]
    related_document_ids: Vec<String>,
    #[serde(default)]
    occurred: Option<DateTime<chrono::FixedOffset>>,
}

fn ignored(reason: &str) -> Response {
    (
        StatusCode::OK,
        Json(json!({"accepted": true, "action": "ignored", "reason": reason})),
    )
        .into_response()
}

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
    let env: Envelope = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid Octopus subscription payload: {e}")))?;
    let event = env.payload.event;
    if event.category != "DeploymentSucceeded" {
        return Ok(ignored("category is not DeploymentSucceeded"));
    }
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
    let deployment = find("Deployments-");
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
    let trigger = Trigger {
        release: release.clone(),
        version: None,
        deployment_id: deployment.clone(),
        deployed_at: event.occurred.map(|o| o.with_timezone(&Utc)),
        source: Source::Webhook,
        rollback_safe: None,
        failure: None,
    };
    let triggers = watches
        .iter()
        .map(|w| (w.clone(), trigger.clone()))
        .collect();
    // The event id is marked seen in the transaction that records the triggers: answered 202,
    // the deployment survives a crash or a reload before the watch handles it; a failure
    // (5xx) records nothing, so Octopus's redelivery is handled.
    let fresh = deliver(&s, Some(&event.id), triggers)?;
    if !fresh {
        return Ok(ignored("event already delivered"));
    }
    for watch in &watches {
        tracing::info!(%watch, %release, deployment = ?deployment, event = %event.id, "deployment delivered by Octopus webhook");
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "action": "observing", "watches": watches})),
    )
        .into_response())
}
