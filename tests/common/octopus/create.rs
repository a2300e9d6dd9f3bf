//! `POST /deployments`: validates a create command like the server's model validation, stores
//! the deployment with a task that will walk Queued -> Executing -> final, and answers through
//! the next queued POST fault, if any.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use super::errors::{reject, Rejection};
use super::faults::{injected, PostFault};
use super::routes::space;
use super::state::{lock, Shared, State};

/// Refusals first, then validation, then the record, stored with its visibility under the lock
/// before any wait: what a client that hangs up does not see still happens.
pub(super) async fn create_deployment(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    let (fault, created) = {
        let mut st = lock(&s);
        if let Some(PostFault::Fail {
            status,
            retry_after,
        }) = st.post_faults.front().cloned()
        {
            st.post_faults.pop_front();
            let mut resp = injected(status);
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return resp;
        }
        let (release, environment, fields) = match parse_create(&st, &body) {
            Ok(parsed) => parsed,
            Err(rejection) => return reject(rejection),
        };
        let fault = st.post_faults.pop_front();
        let project = st.release(&release).expect("validated").project.clone();
        let id = st.insert(
            &space(&p),
            &project,
            &environment,
            &release,
            Utc::now(),
            ("backstop", "Users-2"),
            fields,
        );
        let (final_state, failure) = st.pick_end(&release);
        let task = st.task_mut(&id).expect("just inserted");
        task.pending = VecDeque::from(["Executing", final_state]);
        task.failure = failure;
        st.created_via_post.push(id.clone());
        st.deployment_mut(&id).expect("just inserted").visible_from =
            arrived + PostFault::hidden_for(fault.as_ref());
        (
            fault,
            st.render_deployment(st.deployment(&id).expect("just inserted")),
        )
    };
    PostFault::answer(fault, created).await
}

/// Validates a create command like the server's model validation; returns release, environment, fields.
fn parse_create(
    st: &State,
    body: &[u8],
) -> Result<(String, String, Map<String, Value>), Rejection> {
    let bad = |errors: Vec<String>| {
        (
            StatusCode::BAD_REQUEST,
            "There was a problem with your request.",
            errors,
        )
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err((
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "No Deployment resource provided",
            vec![],
        ));
    }
    let Ok(Value::Object(cmd)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad(vec![
            "The request body is not a valid JSON object.".into()
        ]));
    };
    let text = |k: &str| {
        cmd.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    let (release, environment) = (text("ReleaseId"), text("EnvironmentId"));
    let mut errors = vec![];
    if release.is_none() {
        errors.push("Please specify the release to deploy.".to_owned());
    }
    if environment.is_none() {
        errors.push("Please provide a target environment to deploy to.".to_owned());
    }
    if let Some(r) = release.as_deref().filter(|r| st.release(r).is_none()) {
        errors.push(format!("The release '{r}' could not be found."));
    }
    let mut fields = defaults();
    for (key, default) in fields.iter_mut() {
        match cmd.get(key) {
            None | Some(Value::Null) => {}
            Some(v) if same_shape(v, default, key) => *default = v.clone(),
            Some(v) => errors.push(format!("The value {v} is not valid for {key}.")),
        }
    }
    if errors.is_empty() {
        Ok((
            release.expect("checked"),
            environment.expect("checked"),
            fields,
        ))
    } else {
        Err(bad(errors))
    }
}

/// The writeable properties of a create command, with the values the server defaults them to.
pub(super) fn defaults() -> Map<String, Value> {
    let v = json!({
        "TenantId": null, "Comments": null, "FormValues": {}, "QueueTime": null, "QueueTimeExpiry": null,
        "ForcePackageRedeployment": false, "ForcePackageDownload": false, "UseGuidedFailure": false,
        "FailTargetDiscovery": false, "Priority": "LifecycleDefault",
        "SkipActions": [], "SpecificMachineIds": [], "ExcludedMachineIds": [],
        "SpecificTargetTagIds": [], "ExcludedTargetTagIds": [],
    });
    v.as_object().expect("object literal").clone()
}

/// Whether a posted value fits the property whose default is `default`.
fn same_shape(v: &Value, default: &Value, key: &str) -> bool {
    match default {
        Value::Bool(_) => v.is_boolean(),
        Value::Array(_) => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Value::Object(_) => v
            .as_object()
            .is_some_and(|o| o.values().all(Value::is_string)),
        _ if key.starts_with("QueueTime") => v
            .as_str()
            .is_some_and(|s| DateTime::parse_from_rfc3339(s).is_ok()),
        _ if key == "Priority" => matches!(v.as_str(), Some("On" | "Off" | "LifecycleDefault")),
        _ => v.is_string(),
    }
}
