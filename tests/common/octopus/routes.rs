//! The fake's router: the authentication gate in front of every route, and the read-only
//! handlers (list and get deployments, get tasks, their details and releases). Every route also
//! exists without the space segment, as on a real server.

use std::collections::HashMap;
use std::time::Instant;

use axum::extract::{Path, Query, Request, State as AxState};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;

use super::create::create_deployment;
use super::details::LogQuery;
use super::errors::{not_found, octopus_error, reject};
use super::faults::injected;
use super::list_query::ListQuery;
use super::model::Deployment;
use super::state::{lock, Shared};
use super::SPACE;

const API_KEY_HEADER: &str = "X-Octopus-ApiKey";

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route(
            "/api/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route(
            "/api/{space}/deployments",
            get(list_deployments).post(create_deployment),
        )
        .route("/api/deployments/{id}", get(get_deployment))
        .route("/api/{space}/deployments/{id}", get(get_deployment))
        .route("/api/tasks/{id}", get(get_task))
        .route("/api/{space}/tasks/{id}", get(get_task))
        .route("/api/tasks/{id}/details", get(get_task_details))
        .route("/api/{space}/tasks/{id}/details", get(get_task_details))
        .route("/api/releases/{id}", get(get_release))
        .route("/api/{space}/releases/{id}", get(get_release))
        .fallback(|| async { not_found("The resource you requested was not found.") })
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .with_state(state)
}

/// Authenticates every request, counts POST /deployments attempts (and every write) and
/// applies GET faults.
async fn gate(AxState(s): AxState<Shared>, req: Request, next: Next) -> Response {
    let segments: Vec<&str> = req.uri().path().trim_end_matches('/').split('/').collect();
    let is_create = req.method() == Method::POST
        && matches!(
            segments[..],
            ["", "api", "deployments"] | ["", "api", _, "deployments"]
        );
    let fault = {
        let mut st = lock(&s);
        st.post_attempts += usize::from(is_create);
        st.write_attempts += usize::from(!matches!(*req.method(), Method::GET | Method::HEAD));
        let key = req
            .headers()
            .get(API_KEY_HEADER)
            .and_then(|v| v.to_str().ok());
        if key != Some(st.api_key.as_str()) {
            let why = if key.is_none() {
                "No API key was provided in the X-Octopus-ApiKey header."
            } else {
                "The API key you provided was not valid."
            };
            return octopus_error(StatusCode::UNAUTHORIZED, "You must be logged in to perform this action. Please provide a valid API key or log in again.", &[why]);
        }
        if req.method() == Method::GET {
            st.get_faults.pop_front()
        } else {
            None
        }
    };
    match fault {
        Some(status) => injected(status),
        None => next.run(req).await,
    }
}

/// The space named in the path; unscoped routes mean the default space.
pub(super) fn space(p: &HashMap<String, String>) -> String {
    p.get("space").cloned().unwrap_or_else(|| SPACE.into())
}

/// Newest first (by `Created`, then by id), visible and filtered, one page.
async fn list_deployments(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let lq = match ListQuery::parse(&q) {
        Ok(lq) => lq,
        Err(rejection) => return reject(rejection),
    };
    let (st, now) = (lock(&s), Instant::now());
    let mut matching: Vec<&Deployment> = st
        .deployments
        .iter()
        .filter(|d| d.is_visible(now) && lq.matches(&st, d))
        .collect();
    matching.sort_by_key(|d| std::cmp::Reverse((d.created, d.seq)));
    let page = matching.iter().skip(lq.skip).take(lq.take);
    let items = page.map(|d| st.render_deployment(d)).collect();
    Json(lq.collection(&space(&p), matching.len(), items)).into_response()
}

async fn get_deployment(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    let st = lock(&s);
    match st.visible_deployment(&p["id"], Instant::now()) {
        Some(d) => Json(st.render_deployment(d)).into_response(),
        None => not_found(&format!("Deployment {} not found", p["id"])),
    }
}

async fn get_release(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
) -> Response {
    match lock(&s).release(&p["id"]) {
        Some(r) => Json(r.render()).into_response(),
        None => not_found(&format!("Release {} not found", p["id"])),
    }
}

/// Serves the task, then (from the second GET on) moves it one step along its progression.
/// The task of a deployment the API does not show yet does not exist either.
async fn get_task(AxState(s): AxState<Shared>, Path(p): Path<HashMap<String, String>>) -> Response {
    let mut st = lock(&s);
    let Some(task) = st.visible_task_mut(&p["id"], Instant::now()) else {
        return not_found(&format!("Task {} not found", p["id"]));
    };
    if !task.served {
        task.served = true;
    } else if let Some(next) = task.pending.pop_front() {
        task.transition(next, Utc::now());
    }
    Json(task.render()).into_response()
}

/// The task's details, as they stand: reading them does not move the task along.
async fn get_task_details(
    AxState(s): AxState<Shared>,
    Path(p): Path<HashMap<String, String>>,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let mut query = LogQuery::default();
    for (k, v) in &q {
        match k.as_str() {
            "verbose" => query.verbose = v.eq_ignore_ascii_case("true"),
            "tail" => match v.parse() {
                Ok(n) => query.tail = Some(n),
                Err(_) => {
                    let error = format!("The value '{v}' is not valid for tail.");
                    return reject((
                        StatusCode::BAD_REQUEST,
                        "There was a problem with your request.",
                        vec![error],
                    ));
                }
            },
            _ => {}
        }
    }
    let mut st = lock(&s);
    match st.visible_task_mut(&p["id"], Instant::now()) {
        Some(task) => Json(task.render_details(query)).into_response(),
        None => not_found(&format!("Task {} not found", p["id"])),
    }
}
