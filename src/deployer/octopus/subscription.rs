//! The payload of an Octopus subscription webhook (`POST /v1/hooks/octopus`), decoded: the
//! one event it carries. Pure and total, so the API handler stays I/O and the decoder can be
//! fuzzed; what the event means is decided by the handler.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

/// An Octopus subscription payload; only the fields backstop reads are described, the rest
/// (`Timestamp`, `ServerUri`, `Subscription`, ...) are accepted and ignored.
// Public for the API's OpenAPI document.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    payload: Payload,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
struct Payload {
    event: Event,
}

/// `Payload.Event`: the parts backstop reads.
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    /// `Events-N`; remembered once delivered, so a redelivery is ignored.
    pub id: String,
    /// `DeploymentSucceeded` and `DeploymentFailed` start an observation; anything else is
    /// acknowledged and ignored.
    pub category: String,
    /// With those two categories: must name a `Projects-`, an `Environments-` and a
    /// `Releases-` id; `Deployments-` and `ServerTasks-` ids are used when present.
    #[serde(default)]
    pub related_document_ids: Vec<String>,
    #[serde(default)]
    pub occurred: Option<DateTime<FixedOffset>>,
}

/// The event of a subscription payload; an error says what is missing or mistyped, and where.
pub fn decode(body: &[u8]) -> Result<Event, serde_json::Error> {
    serde_json::from_slice::<Envelope>(body).map(|e| e.payload.event)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_is_read_from_a_payload() {
        let body = br#"{"Timestamp": "2026-03-02T14:06:44.000+00:00", "Payload": {
            "ServerUri": "https://octopus.example", "Event": {
                "Id": "Events-991", "Category": "DeploymentFailed",
                "Occurred": "2026-03-02T14:06:43.111+00:00",
                "RelatedDocumentIds": ["Projects-21", "ServerTasks-58231"],
                "Links": {"Self": "/api/events/Events-991"}}}}"#;
        let e = decode(body).unwrap();
        assert_eq!(e.id, "Events-991");
        assert_eq!(e.related_document_ids.len(), 2);
        assert_eq!(e.occurred.unwrap().timestamp(), 1_772_460_403);
    }

    #[test]
    fn malformed_payloads_are_errors_naming_the_problem() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "EOF"),
            (br#"{"Payload": {"Event": {"Id": "Events-1""#, "EOF"),
            (br#"{"Payload": {}}"#, "missing field `Event`"),
            (br#"{"Payload": {"Event": {"Id": 1, "Category": "x"}}}"#, "invalid type"),
            (
                br#"{"Payload": {"Event": {"Id": "E", "Category": "x", "RelatedDocumentIds": "P-1"}}}"#,
                "invalid type",
            ),
            (
                br#"{"Payload": {"Event": {"Id": "E", "Category": "x", "Occurred": "2026-13-01"}}}"#,
                "",
            ),
            (
                br#"{"Payload": {"Event": {"Id": "E", "Category": "x", "Occurred": 1e999}}}"#,
                "",
            ),
            (b"\xff\xfe", "expected value"),
        ];
        for (body, says) in cases {
            let e = decode(body).expect_err(&String::from_utf8_lossy(body));
            assert!(e.to_string().contains(says), "{e}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(decode(deep.as_bytes()).is_err());
        let ids = format!(
            r#"{{"Payload": {{"Event": {{"Id": "E", "Category": "x", "RelatedDocumentIds": {deep}}}}}}}"#
        );
        assert!(decode(ids.as_bytes()).is_err());
        // A field backstop does not read is skipped without recursing: no limit is needed.
        let links = format!(
            r#"{{"Payload": {{"Event": {{"Id": "E", "Category": "x", "Links": {deep}}}}}}}"#
        );
        assert_eq!(decode(links.as_bytes()).unwrap().id, "E");
    }
}
