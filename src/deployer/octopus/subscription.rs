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
    pub payload: Payload,
}

/// `Payload`: the event it carries. (With [`Envelope`], the shape the API's document
/// describes; [`decode`] walks the same keys.)
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct Payload {
    pub event: Event,
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
///
/// Read as a JSON document first and walked by key, not decoded straight into [`Envelope`]:
/// serde reads a struct from an array too (fields by position), so `[{"Event": {...}}]` was
/// accepted as a payload (found by fuzzing, `fuzz/regressions/octopus_webhook/`). Octopus
/// sends objects; anything else is refused, naming what is not one.
pub fn decode(body: &[u8]) -> Result<Event, serde_json::Error> {
    use serde::de::Error;
    let doc: serde_json::Value = serde_json::from_slice(body)?;
    let object = |v: Option<&serde_json::Value>, path: &str, field: &str| match v {
        Some(v) if v.is_object() => Ok(v.clone()),
        Some(_) => Err(serde_json::Error::custom(format!(
            "{path} is not an object"
        ))),
        None => Err(serde_json::Error::custom(format!(
            "missing field `{field}`"
        ))),
    };
    if !doc.is_object() {
        return Err(serde_json::Error::custom("the payload is not an object"));
    }
    let payload = object(doc.get("Payload"), "Payload", "Payload")?;
    let event = object(payload.get("Event"), "Payload.Event", "Event")?;
    serde_json::from_value(event)
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
        // The document is read whole first: the limit holds in fields backstop ignores too.
        let links = format!(
            r#"{{"Payload": {{"Event": {{"Id": "E", "Category": "x", "Links": {deep}}}}}}}"#
        );
        assert!(decode(links.as_bytes()).is_err());
    }

    #[test]
    fn only_objects_are_payloads() {
        // Found by fuzzing: serde reads a struct from an array, fields by position.
        let e = decode(br#"[ {"Event":{"Id":"E", "Category" :"x"}} ]"#).unwrap_err();
        assert!(e.to_string().contains("not an object"), "{e}");
        let e = decode(br#"{"Payload": [{"Id":"E", "Category":"x"}]}"#).unwrap_err();
        assert!(e.to_string().contains("Payload is not an object"), "{e}");
        let e = decode(br#"{"Payload": {"Event": ["E", "x"]}}"#).unwrap_err();
        assert!(
            e.to_string().contains("Payload.Event is not an object"),
            "{e}"
        );
    }
}
