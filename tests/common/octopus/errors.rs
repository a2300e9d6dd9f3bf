//! Octopus's `Error` body (every Swagger property, unused ones null) and the refusals built on
//! it: not found and rejected requests.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why a request was refused: status, `ErrorMessage` and `Errors`.
pub(super) type Rejection = (StatusCode, &'static str, Vec<String>);

pub(super) fn not_found(detail: &str) -> Response {
    octopus_error(
        StatusCode::NOT_FOUND,
        "The resource you requested was not found.",
        &[detail],
    )
}

pub(super) fn reject((status, message, errors): Rejection) -> Response {
    let errors: Vec<&str> = errors.iter().map(String::as_str).collect();
    octopus_error(status, message, &errors)
}

/// The `Error` body of the Swagger document: every property, unused ones null.
pub(super) fn octopus_error(status: StatusCode, message: &str, errors: &[&str]) -> Response {
    let body = json!({
        "ErrorMessage": message, "Errors": errors, "FullException": null, "HelpLink": null,
        "HelpText": null, "ParsedHelpLinks": [], "Details": null,
    });
    (status, Json(body)).into_response()
}
