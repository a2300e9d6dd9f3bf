//! The dashboard: a read-only web UI on the API's own listener.
//!
//! `GET /` (overview), `GET /ui/watches/{name}` (a watch's timeline) and `GET /ui/verdicts/{id}`
//! (a decision's evidence, each check charted against its limits) are rendered on the server
//! with maud, so they work without JavaScript; one small script (`/ui/live.js`) refreshes them
//! live by polling `/v1/status` (every page of it). The CSS and script are compiled into the
//! binary. With `Accept: application/json` each page answers the document it shows
//! (`/v1/status`, paginated the same way, `/v1/watches/{name}`, `/v1/verdicts/{id}`). Nothing here writes: the pages need no token,
//! exactly like `GET /v1/status`.
//!
//! - [`scale`]: axis maths (pure); [`chart`]: one check's SVG chart (pure);
//!   [`series`]: evidence to charts; [`layout`], [`overview`], [`watch`], [`verdict`]: pages.

pub mod chart;
mod layout;
mod overview;
pub mod scale;
pub mod series;
mod verdict;
mod watch;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;

use crate::api::{ApiError, ApiState, StatusQuery};

const STYLE: &str = include_str!("assets/style.css");
const SCRIPT: &str = include_str!("assets/live.js");

/// How many past deployments the watch page shows.
const WATCH_HISTORY: usize = 30;

/// The dashboard's routes, merged into the API's router when `[server] ui` is on.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(overview_page))
        .route("/ui/watches/{name}", get(watch_page))
        .route("/ui/verdicts/{id}", get(verdict_page))
        .route(
            "/ui/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE)),
        )
        .route(
            "/ui/live.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
}

/// Whether the client asked for JSON rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("application/json") && !accept.contains("text/html")
}

/// A page with headers that keep it fresh and contained: no inline script or style runs, no
/// framing, no referrer to other sites.
fn html(page: Markup) -> Response {
    let mut r = (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response();
    let h = r.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

async fn overview_page(
    State(s): State<ApiState>,
    headers: HeaderMap,
    q: Result<Query<StatusQuery>, QueryRejection>,
) -> Response {
    if wants_json(&headers) {
        return crate::api::status(State(s), q).await.into_response();
    }
    html(overview::page(&s.status.snapshot(), chrono::Utc::now()))
}

async fn watch_page(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    if wants_json(&headers) {
        return crate::api::watch_status(State(s), Ok(Path(name)))
            .await
            .into_response();
    }
    off_the_runtime(move || watch_html(&s, name)).await
}

/// Runs a page's store reads and rendering on the blocking pool: a page parses stored
/// evidence documents (thousands of samples each), which must not hold up the async workers
/// that run the watches' rounds.
async fn off_the_runtime(
    page: impl FnOnce() -> Result<Response, ApiError> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(page).await {
        Ok(r) => r.unwrap_or_else(html_error),
        Err(e) => {
            tracing::error!(error = %e, "dashboard page failed");
            html_error(ApiError::Internal)
        }
    }
}

fn watch_html(s: &ApiState, name: String) -> Result<Response, ApiError> {
    let status = s
        .status
        .get(&name)
        .ok_or(ApiError::NotFound(format!("no watch named {name:?}")))?;
    let history = s
        .store
        .history(Some(&name), WATCH_HISTORY)
        .map_err(internal)?;
    let mut evidence = Vec::with_capacity(history.len());
    for h in &history {
        // Timelines only: the series is not joined in.
        evidence.push(
            s.store
                .evidence_body(&h.id)
                .map_err(internal)?
                .map(|mut ev| {
                    ev.redact_urls();
                    ev
                }),
        );
    }
    let notifications = s
        .store
        .notifications(&name, WATCH_HISTORY)
        .map_err(internal)?;
    Ok(html(watch::page(
        &status,
        &history,
        &evidence,
        &notifications,
        chrono::Utc::now(),
    )))
}

async fn verdict_page(
    State(s): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if wants_json(&headers) {
        return crate::api::verdict(State(s), Ok(Path(id)))
            .await
            .into_response();
    }
    off_the_runtime(move || verdict_html(&s, id)).await
}

fn verdict_html(s: &ApiState, id: String) -> Result<Response, ApiError> {
    let mut ev = s
        .store
        .evidence(&id)
        .map_err(internal)?
        .ok_or(ApiError::NotFound(format!("no verdict with id {id:?}")))?;
    ev.redact_urls();
    Ok(html(verdict::page(&ev)))
}

/// An API error as a page, with the same status and message.
fn html_error(e: ApiError) -> Response {
    let message = e.to_string();
    let status = e.into_response().status();
    let mut r = html(layout::error(status.as_u16(), &message));
    *r.status_mut() = status;
    r
}

/// A path segment, percent-encoded (names and ids are plain today; links must not break if
/// they are not).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The watch page of `name`.
pub(crate) fn watch_href(name: &str) -> String {
    format!("/ui/watches/{}", segment(name))
}

/// The verdict page of observation `id`.
pub(crate) fn verdict_href(id: &str) -> String {
    format!("/ui/verdicts/{}", segment(id))
}

fn internal(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "dashboard cannot read the store");
    ApiError::Internal
}

#[cfg(test)]
#[path = "tests.rs"]
pub(crate) mod tests;
