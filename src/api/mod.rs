//! The HTTP API: health, metrics, status (a page of summaries, or one watch's detail),
//! deployment announcements and Octopus webhooks.
//!
//! Handlers only authenticate, parse and hand a [`Command`] to the watch's actor; they never
//! judge or deploy. Bodies are capped at 64 KiB, headers by [`limits`]. Every error goes
//! through [`ApiError`], which answers JSON `{"error": "..."}` and never leaks internals.
//!
//! The contract is [`openapi::ApiDoc`], derived from the handlers and the types they send,
//! served at `GET /v1/openapi.json` and committed as `config/openapi.json`.

mod bodies;
mod error;
mod hooks;
pub mod limits;
pub mod openapi;

use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use bodies::{Announced, ControlAction, Controlled, History};
pub use error::ApiError;

use crate::config::{Config, DeployerConfig};
use crate::engine::{Control, Engine, SendError, Trigger};
use crate::metrics::Metrics;
use crate::model::Source;
use crate::secret::Secret;
use crate::status::{StatusBoard, DEFAULT_LIMIT, MAX_LIMIT};
use crate::store::Store;

/// Largest request body accepted.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Credentials the API checks; swapped as a whole on reload.
#[derive(Debug, Clone, Default)]
pub struct Auth {
    pub token: Option<Secret>,
    /// Octopus deployers that accept webhooks: (deployer name, header name, secret).
    pub hooks: Vec<(String, String, Secret)>,
}

impl Auth {
    pub fn from_config(config: &Config) -> Self {
        let hooks = config
            .deployers
            .iter()
            .filter_map(|(name, d)| match d {
                DeployerConfig::Octopus(o) => match (&o.webhook_header, &o.webhook_secret) {
                    (Some(h), Some(s)) => Some((name.clone(), h.clone(), s.clone())),
                    _ => None,
                },
                DeployerConfig::Webhook(_)
                | DeployerConfig::Command(_)
                | DeployerConfig::ArgoCd(_) => None,
            })
            .collect();
        Auth {
            token: config.server.token.clone(),
            hooks,
        }
    }
}

/// What handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub engine: Engine,
    pub status: StatusBoard,
    pub metrics: Metrics,
    pub store: Store,
    pub auth: Arc<RwLock<Auth>>,
}

impl ApiState {
    fn auth(&self) -> Auth {
        self.auth.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The API's routes, and the dashboard's when `ui` is on (same listener, same rules: its
/// pages are read-only GETs like `/v1/status`).
pub fn router(state: ApiState, ui: bool) -> Router {
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/status", get(status))
        .route("/v1/watches/{name}", get(watch_status))
        .route("/v1/watches/{name}/pause", post(pause))
        .route("/v1/watches/{name}/resume", post(resume))
        .route("/v1/deployments", post(announce))
        .route("/v1/verdicts/{id}", get(verdict))
        .route("/v1/history", get(history))
        .route("/v1/hooks/octopus", post(hooks::octopus))
        .route("/v1/openapi.json", get(openapi::serve));
    let api = if ui {
        api.merge(crate::ui::routes())
    } else {
        api
    };
    api.fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn(limits::headers))
        .with_state(state)
}

/// Any other path: this API's JSON 404 rather than an empty body.
async fn not_found() -> ApiError {
    ApiError::NotFound("no such path".into())
}

/// A path parameter, or this API's 400 (a segment that is not UTF-8 once decoded, say).
fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(v)| v)
        .map_err(|e| ApiError::BadRequest(format!("invalid path: {e}")))
}

/// `GET /healthz`: the process answers (readiness is `/v1/status`).
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Always `ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /metrics`, the Prometheus text exposition. Rendered on a blocking thread, so a scrape of thousands of watches never delays a round
/// on the async workers; scrapes arriving during a rendering share it.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses(
    (status = 200, description = "Prometheus text exposition format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8"),
    (status = 500, description = "Rendering failed", body = bodies::ErrorBody)))]
async fn metrics(State(s): State<ApiState>) -> Result<Response, ApiError> {
    let asked = std::time::Instant::now();
    let text = tokio::task::spawn_blocking(move || s.metrics.render_since(asked))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "rendering /metrics failed");
            ApiError::Internal
        })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /v1/status` query: a page of the watches sorted by name.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatusQuery {
    /// Watches per page: 1 to 5000, default 500.
    // A string, so that a bad value gets this API's error rather than the extractor's.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 5000)]
    limit: Option<String>,
    /// The `next` of the previous page: only watches named after it.
    after: Option<String>,
}

/// `GET /v1/status?limit=N&after=NAME`: one page of watch summaries, and `next` when more
/// follow.
#[utoipa::path(get, path = "/v1/status", tag = "status", params(StatusQuery), responses(
    (status = 200, description = "A page of watch summaries", body = crate::status::StatusDocument),
    (status = 400, description = "Invalid query (`limit` out of range)", body = bodies::ErrorBody)))]
pub(crate) async fn status(
    State(s): State<ApiState>,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let limit = page_limit(q.limit.as_deref())?;
    Ok(Json(s.status.page(q.after.as_deref(), limit)).into_response())
}

/// A page size from `?limit=`: a whole number from 1 to [`MAX_LIMIT`].
fn page_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = limit else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::BadRequest(format!(
            "limit must be a whole number from 1 to {MAX_LIMIT}, not {:?}",
            crate::text::truncate(raw, 40)
        ))),
    }
}

/// `GET /v1/watches/{name}`: one watch's detail, every check's track included.
#[utoipa::path(get, path = "/v1/watches/{name}", tag = "status",
    params(("name" = String, Path, description = "The watch's name")), responses(
    (status = 200, description = "The watch's detail", body = crate::status::WatchStatus),
    (status = 400, description = "Invalid path", body = bodies::ErrorBody),
    (status = 404, description = "No such watch", body = bodies::ErrorBody)))]
pub(crate) async fn watch_status(
    State(s): State<ApiState>,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let name = path_param(name)?;
    s.status
        .get(&name)
        .map(|w| Json(w).into_response())
        .ok_or(ApiError::NotFound(format!("no watch named {name:?}")))
}

/// `GET /v1/verdicts/{id}`: the evidence document of one observation.
#[utoipa::path(get, path = "/v1/verdicts/{id}", tag = "evidence",
    params(("id" = String, Path, description = "The observation id (also the verdict id)")),
    responses(
    (status = 200, description = "The evidence document", body = crate::evidence::Evidence),
    (status = 400, description = "Invalid path", body = bodies::ErrorBody),
    (status = 404, description = "No such observation", body = bodies::ErrorBody),
    (status = 500, description = "The store could not be read", body = bodies::ErrorBody)))]
pub(crate) async fn verdict(
    State(s): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_param(id)?;
    match s.store.evidence(&id) {
        Ok(Some(mut ev)) => {
            ev.redact_urls();
            Ok(Json(ev).into_response())
        }
        Ok(None) => Err(ApiError::NotFound(format!("no verdict with id {id:?}"))),
        Err(e) => {
            tracing::error!(error = %e, "cannot read evidence");
            Err(ApiError::Internal)
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct HistoryQuery {
    /// Only this watch's deployments.
    watch: Option<String>,
    /// Most entries (default 50); clamped to 1..1000.
    limit: Option<usize>,
}

/// `GET /v1/history?watch=NAME&limit=N`: past deployments and their verdicts, newest first.
#[utoipa::path(get, path = "/v1/history", tag = "evidence", params(HistoryQuery), responses(
    (status = 200, description = "Past deployments, newest first", body = History),
    (status = 400, description = "Invalid query", body = bodies::ErrorBody),
    (status = 500, description = "The store could not be read", body = bodies::ErrorBody)))]
async fn history(
    State(s): State<ApiState>,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("invalid query: {e}")))?;
    let limit = q.limit.unwrap_or(50).clamp(1, 1000);
    match s.store.history(q.watch.as_deref(), limit) {
        Ok(deployments) => Ok(Json(History { deployments }).into_response()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read history");
            Err(ApiError::Internal)
        }
    }
}

/// Checks `Authorization: Bearer <token>` in constant time.
fn bearer(s: &ApiState, headers: &HeaderMap) -> Result<(), ApiError> {
    let auth = s.auth();
    let Some(token) = auth.token else {
        return Err(ApiError::Unauthorized(
            "no API token is configured (server.token_file, server.token_env or server.token_credential)",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .ok_or(ApiError::Unauthorized("missing bearer token"))?;
    if token.matches(presented.trim().as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid bearer token"))
    }
}

/// `POST /v1/deployments` body: a deployment happened (or failed), observe it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Announcement {
    /// The watch's name, as configured.
    watch: String,
    /// The deployer's release id (must not be blank).
    #[schema(pattern = "\\S")]
    release: String,
    /// The release's version, for humans.
    #[serde(default)]
    version: Option<String>,
    /// Deployer's deployment id, when known; lets later webhooks/polls recognise it.
    #[serde(default)]
    deployment: Option<String>,
    /// When the deployment started (RFC 3339, within a year of now); the baseline window ends
    /// here. Default: now.
    #[serde(default)]
    deployed_at: Option<DateTime<Utc>>,
    /// `false` marks the release as not safe to roll back from (it migrated a database, say):
    /// backstop then never deploys an older release automatically.
    #[serde(default)]
    rollback_safe: Option<bool>,
    /// How the deployment ended: `"succeeded"` (the default, so older callers are unchanged)
    /// or `"failed"` (a step failed, the task timed out or was canceled).
    #[serde(default)]
    outcome: AnnouncedOutcome,
    /// With `"failed"`: the deployer's task, so its details can be fetched (Octopus
    /// `ServerTasks-N`; found from `deployment` when left out). Letters, digits, `-` and `_`,
    /// at most 100.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,100}$")]
    task: Option<String>,
    /// With `"failed"`: what went wrong, in the caller's words (shown with the evidence).
    #[serde(default)]
    error: Option<String>,
}

/// `outcome` of an announcement. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
enum AnnouncedOutcome {
    #[default]
    Succeeded,
    Failed,
}

/// By hand, so that a caller who sends anything else is told which field is wrong (serde's
/// own message names the variants, not the field).
impl<'de> Deserialize<'de> for AnnouncedOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v.as_str() {
            Some("succeeded") => Ok(AnnouncedOutcome::Succeeded),
            Some("failed") => Ok(AnnouncedOutcome::Failed),
            _ => Err(serde::de::Error::custom(format!(
                "outcome must be \"succeeded\" or \"failed\", not {}",
                crate::text::truncate(&v.to_string(), 40)
            ))),
        }
    }
}

/// Longest `error` kept from an announcement.
const MAX_ANNOUNCED_ERROR: usize = 4096;

/// Commits triggers to their watches' inboxes (see [`crate::engine::Engine::deliver`]).
/// On a blocking thread: the commit waits for an fsync (and for the store's connection), and
/// on the async workers that wait would hold up every watch's rounds, the more so in a burst
/// of announcements.
async fn deliver(
    s: &ApiState,
    event_id: Option<&str>,
    triggers: Vec<(String, Trigger)>,
) -> Result<bool, ApiError> {
    let (engine, event_id) = (s.engine.clone(), event_id.map(String::from));
    off_workers(move || engine.deliver(event_id.as_deref(), triggers)).await
}

/// A pause or resume, to whichever node runs the watch (a durable commit, as [`deliver`]).
async fn control(s: &ApiState, watch: &str, c: Control) -> Result<(), ApiError> {
    let (engine, watch) = (s.engine.clone(), watch.to_string());
    off_workers(move || engine.control(&watch, c)).await
}

/// Runs an engine request on the blocking pool and maps its error to the API's.
async fn off_workers<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SendError> + Send + 'static,
) -> Result<T, ApiError> {
    let result = tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "an engine request failed");
        ApiError::Internal
    })?;
    result.map_err(|e| match e {
        SendError::UnknownWatch(w) => ApiError::NotFound(format!("no watch named {w:?}")),
        SendError::Unavailable(_) | SendError::Unrecorded => ApiError::Unavailable(e.to_string()),
    })
}

/// `POST /v1/deployments`: announce a deployment; durable before the 202.
#[utoipa::path(post, path = "/v1/deployments", tag = "control", request_body = Announcement,
    security(("bearer" = [])), responses(
    (status = 202, description = "Accepted: the watch will observe the deployment", body = Announced),
    (status = 400, description = "Invalid announcement", body = bodies::ErrorBody),
    (status = 401, description = "Missing or wrong bearer token, or none configured",
        body = bodies::ErrorBody, headers(("WWW-Authenticate" = String))),
    (status = 404, description = "No such watch", body = bodies::ErrorBody),
    (status = 413, description = "Body larger than 64 KiB", body = String, content_type = "text/plain"),
    (status = 503, description = "The watch's node or the store is unavailable", body = bodies::ErrorBody)))]
async fn announce(
    State(s): State<ApiState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    bearer(&s, &headers)?;
    let a: Announcement = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("invalid announcement: {e}")))?;
    if a.release.trim().is_empty() {
        return Err(ApiError::BadRequest("release must not be empty".into()));
    }
    if let Some(at) = a.deployed_at {
        let year = chrono::Duration::days(366);
        let now = Utc::now();
        if at < now - year || at > now + year {
            return Err(ApiError::BadRequest(format!(
                "deployed_at {at} is more than a year from now; send the time the deployment started"
            )));
        }
    }
    if !s.engine.has_watch(&a.watch) {
        return Err(ApiError::NotFound(format!("no watch named {:?}", a.watch)));
    }
    let outcome = a.outcome;
    if outcome == AnnouncedOutcome::Succeeded && (a.task.is_some() || a.error.is_some()) {
        return Err(ApiError::BadRequest(
            "task and error describe a failed deployment: send them with \"outcome\": \"failed\""
                .into(),
        ));
    }
    // A task id is an id: it goes into deployer URLs and a hook's environment.
    if let Some(t) = &a.task {
        let ok = !t.is_empty()
            && t.len() <= 100
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(ApiError::BadRequest(
                "task must be a deployer task id such as \"ServerTasks-123\" (letters, digits, '-', '_'; at most 100)".into(),
            ));
        }
    }
    let failure = (outcome == AnnouncedOutcome::Failed).then(|| crate::model::DeployFailure {
        task: a.task,
        // One line, no control characters: it reaches logs, chat, the deployer's comments
        // and a hook's environment.
        error: a
            .error
            .map(|e| crate::text::clean_line(&e))
            .filter(|e| !e.is_empty())
            .map(|e| crate::text::truncate(&e, MAX_ANNOUNCED_ERROR)),
        ..Default::default()
    });
    tracing::info!(watch = %a.watch, release = %a.release, failed = failure.is_some(), "deployment announced");
    let trigger = Trigger {
        release: a.release.clone(),
        version: a.version,
        deployment_id: a.deployment,
        deployed_at: a.deployed_at,
        source: Source::Announce,
        rollback_safe: a.rollback_safe,
        failure,
    };
    // Durable before the 202: a crash or reload cannot lose an accepted announcement.
    deliver(&s, None, vec![(a.watch.clone(), trigger)]).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Announced {
            accepted: true,
            watch: a.watch,
            release: a.release,
        }),
    )
        .into_response())
}

/// `POST /v1/watches/{name}/pause`: deployments are recorded, not observed, until resumed.
#[utoipa::path(post, path = "/v1/watches/{name}/pause", tag = "control",
    params(("name" = String, Path, description = "The watch's name")),
    security(("bearer" = [])), responses(
    (status = 202, description = "Sent to the watch", body = Controlled),
    (status = 400, description = "Invalid path", body = bodies::ErrorBody),
    (status = 401, description = "Missing or wrong bearer token, or none configured",
        body = bodies::ErrorBody, headers(("WWW-Authenticate" = String))),
    (status = 404, description = "No such watch", body = bodies::ErrorBody),
    (status = 503, description = "The watch's node or the store is unavailable", body = bodies::ErrorBody)))]
async fn pause(
    State(s): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    controlled(&s, &headers, name, ControlAction::Pause).await
}

/// `POST /v1/watches/{name}/resume`: a paused watch observes deployments again.
#[utoipa::path(post, path = "/v1/watches/{name}/resume", tag = "control",
    params(("name" = String, Path, description = "The watch's name")),
    security(("bearer" = [])), responses(
    (status = 202, description = "Sent to the watch", body = Controlled),
    (status = 400, description = "Invalid path", body = bodies::ErrorBody),
    (status = 401, description = "Missing or wrong bearer token, or none configured",
        body = bodies::ErrorBody, headers(("WWW-Authenticate" = String))),
    (status = 404, description = "No such watch", body = bodies::ErrorBody),
    (status = 503, description = "The watch's node or the store is unavailable", body = bodies::ErrorBody)))]
async fn resume(
    State(s): State<ApiState>,
    headers: HeaderMap,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    controlled(&s, &headers, name, ControlAction::Resume).await
}

/// Pause or resume, authenticated first (an unauthenticated caller learns nothing, not even
/// whether the path is valid).
async fn controlled(
    s: &ApiState,
    headers: &HeaderMap,
    name: Result<Path<String>, PathRejection>,
    action: ControlAction,
) -> Result<Response, ApiError> {
    bearer(s, headers)?;
    let name = path_param(name)?;
    let c = match action {
        ControlAction::Pause => Control::Pause,
        ControlAction::Resume => Control::Resume,
    };
    control(s, &name, c).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Controlled {
            accepted: true,
            watch: name,
            action,
        }),
    )
        .into_response())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
