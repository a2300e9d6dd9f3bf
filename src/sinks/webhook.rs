//! `kind = "webhook"`: the whole alert, evidence included, as one JSON document, for receivers
//! that want every fact (ticketing, chat-ops bots, audit logs).

use std::collections::BTreeMap;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::delivery::DeliveryError;
use super::Alert;
use crate::secret::Secret;

/// `{"id", "kind", "watch", "release", "summary", "at", "evidence"}`; `evidence` is the full
/// [`crate::evidence::Evidence`] document, or `null` when the decision has none.
pub(super) fn payload(alert: &Alert) -> serde_json::Value {
    serde_json::to_value(alert).unwrap_or_else(|e| {
        // Evidence is plain data; serialising it cannot fail short of a bug. Still deliver
        // what is known rather than nothing.
        tracing::error!(error = %e, "cannot serialise alert evidence");
        serde_json::json!({
            "id": alert.id,
            "kind": alert.kind,
            "watch": alert.watch,
            "release": alert.release,
            "summary": alert.summary,
            "at": alert.at,
            "evidence": null,
        })
    })
}

/// The configured headers, then the secret ones (marked sensitive so that no `Debug` of the
/// request shows them). Errors name the header, never its value.
pub(super) fn headers(
    plain: &BTreeMap<String, String>,
    secret: &BTreeMap<String, Secret>,
) -> Result<HeaderMap, DeliveryError> {
    let mut map = HeaderMap::new();
    let all = plain
        .iter()
        .map(|(k, v)| (k, v.as_str(), false))
        .chain(secret.iter().map(|(k, v)| (k, v.expose(), true)));
    for (name, value, sensitive) in all {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| DeliveryError::Invalid(format!("{name:?} is not a valid header name")))?;
        let mut value = HeaderValue::from_str(value).map_err(|_| {
            DeliveryError::Invalid(format!("the value of header {name:?} is not valid in HTTP"))
        })?;
        value.set_sensitive(sensitive);
        map.insert(header, value);
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::testing;
    use crate::sinks::AlertKind;

    #[test]
    fn payload_is_the_whole_alert() {
        let alert = testing::alert(AlertKind::RolledBack);
        let p = payload(&alert);
        assert_eq!(p["kind"], "rolled_back");
        assert_eq!(p["watch"], "shop");
        assert_eq!(p["release"], "Releases-2");
        assert_eq!(p["summary"], alert.summary);
        assert_eq!(p["at"], "2024-05-01T12:00:00Z");
        assert_eq!(p["evidence"]["id"], "obs-42");
        assert_eq!(p["evidence"]["checks"][0]["name"], "health");
        assert_eq!(p["evidence"]["action"]["target_release"], "Releases-1");
        let back: crate::evidence::Evidence =
            serde_json::from_value(p["evidence"].clone()).unwrap();
        assert_eq!(Some(back), alert.evidence);
    }

    #[test]
    fn headers_carry_secrets_marked_sensitive() {
        let plain = BTreeMap::from([("X-Team".to_string(), "payments".to_string())]);
        let secret = BTreeMap::from([("Authorization".to_string(), Secret::new("Bearer s3cr3t"))]);
        let h = headers(&plain, &secret).unwrap();
        assert_eq!(h["x-team"], "payments");
        assert_eq!(h["authorization"], "Bearer s3cr3t");
        assert!(h["authorization"].is_sensitive());
        assert!(!format!("{h:?}").contains("s3cr3t"));
    }

    #[test]
    fn bad_header_values_are_reported_without_the_value() {
        let secret = BTreeMap::from([("X-Key".to_string(), Secret::new("line\nbreak-secret"))]);
        let e = headers(&BTreeMap::new(), &secret).unwrap_err();
        assert!(!e.is_retryable());
        assert!(e.to_string().contains("X-Key"), "{e}");
        assert!(!e.to_string().contains("break-secret"), "{e}");
    }
}
