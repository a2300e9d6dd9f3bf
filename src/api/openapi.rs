//! The API's OpenAPI 3 document, derived from the handlers' `#[utoipa::path]` annotations and
//! the `ToSchema` types they send and accept, so it cannot drift from the code.
//!
//! Served at `GET /v1/openapi.json` and committed as `config/openapi.json`; a test fails when
//! the committed copy is stale (`BACKSTOP_BLESS=1 cargo test --lib openapi` rewrites it).

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::bodies;

/// Name the document gives the Octopus webhook header. The real name is configured per
/// deployer (`webhook_header`); this is a placeholder.
pub const WEBHOOK_HEADER_PLACEHOLDER: &str = "X-Backstop-Webhook-Secret";

/// The document. Paths are listed here once; their details live on the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "backstop",
        description = "backstop's HTTP API: watch status, evidence and history (read-only, no \
            authentication), deployment announcements and operator controls (bearer token), \
            and Octopus subscription webhooks (a configured header and secret). Every error \
            answers JSON `{\"error\": \"...\"}`. Request headers are capped (64 headers, 16 KiB: \
            431), bodies at 64 KiB (413), JSON nesting at 128 levels (400)."
    ),
    paths(
        super::healthz,
        super::metrics,
        super::status,
        super::watch_status,
        super::pause,
        super::resume,
        super::announce,
        super::verdict,
        super::history,
        super::hooks::octopus,
        serve,
    ),
    components(schemas(bodies::ErrorBody)),
    modifiers(&Security, &HeaderCaps),
    tags(
        (name = "status", description = "What each watch is doing now"),
        (name = "evidence", description = "Verdicts and past deployments"),
        (name = "control", description = "Changes: authenticated"),
        (name = "operations", description = "Health, metrics and this document"),
    )
)]
pub struct ApiDoc;

/// Adds the two security schemes the handlers name.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The API token (server.token_file, token_env or token_credential). \
                         Without one configured, every authenticated request is refused.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "octopus_webhook",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                WEBHOOK_HEADER_PLACEHOLDER,
                "The header and secret configured on an octopus deployer (webhook_header, \
                 webhook_secret): the header's name is whatever is configured there, this name \
                 is a placeholder.",
            ))),
        );
    }
}

/// Adds the 431 of [`super::limits`] to every operation: it is answered before any handler, so
/// no handler's annotation names it.
struct HeaderCaps;

impl Modify for HeaderCaps {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = doc.components.get_or_insert_with(Default::default);
        components.responses.insert(
            "HeadersTooLarge".into(),
            RefOr::T(
                ResponseBuilder::new()
                    .description(format!(
                        "More than {} request headers, or more than {} bytes of them",
                        super::limits::MAX_HEADERS,
                        super::limits::MAX_HEADER_BYTES
                    ))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            ),
        );
        for item in doc.paths.paths.values_mut() {
            for op in [&mut item.get, &mut item.post].into_iter().flatten() {
                op.responses.responses.insert(
                    "431".into(),
                    RefOr::Ref(Ref::from_response_name("HeadersTooLarge")),
                );
            }
        }
    }
}

/// The document as served and committed: pretty, keys in a stable order.
pub fn document() -> String {
    let mut text = ApiDoc::openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    text.push('\n');
    text
}

/// `GET /v1/openapi.json`: this document, built once (it never changes while the process runs).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "operations", responses(
    (status = 200, description = "The OpenAPI 3 document of this API", body = Object,
        content_type = "application/json")))]
pub(super) async fn serve() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = DOCUMENT.get_or_init(document).as_str();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}

#[cfg(test)]
#[path = "openapi_tests.rs"]
mod tests;
