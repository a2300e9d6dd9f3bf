//! The two alert APIs' answers, parsed into [`Alert`]s. Pure: bytes in, alerts or a
//! [`ProbeError`] out. A server's bad answer is an error (telemetry), never an empty list: an
//! alert check must not pass on a response it could not read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::checks::ProbeError;
use crate::judge::alerts::{Alert, AlertState};

/// Prometheus `GET /api/v1/alerts`: `{"status": "success", "data": {"alerts": [...]}}`.
#[derive(Deserialize)]
struct PromEnvelope {
    status: String,
    #[serde(default)]
    data: Option<PromData>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct PromData {
    alerts: Vec<PromAlert>,
}

#[derive(Deserialize)]
struct PromAlert {
    labels: BTreeMap<String, String>,
    state: String,
    #[serde(rename = "activeAt")]
    active_at: Option<DateTime<Utc>>,
}

/// Parses a Prometheus alerts answer.
pub fn prometheus(body: &[u8]) -> Result<Vec<Alert>, ProbeError> {
    let env: PromEnvelope = serde_json::from_slice(body).map_err(|e| malformed("prometheus", e))?;
    if env.status != "success" {
        return Err(ProbeError::Api {
            error_type: env.error_type.unwrap_or_else(|| env.status.clone()),
            message: env.error.unwrap_or_default(),
        });
    }
    let data = env
        .data
        .ok_or_else(|| ProbeError::Malformed("prometheus alerts: success without data".into()))?;
    data.alerts
        .into_iter()
        .filter_map(|a| {
            let state = match a.state.as_str() {
                "firing" => AlertState::Firing,
                "pending" => AlertState::Pending,
                // Resolved alerts are kept a while by Prometheus ("inactive"): not active.
                "inactive" => return None,
                other => {
                    return Some(Err(ProbeError::Malformed(format!(
                        "prometheus alert state {other:?}"
                    ))))
                }
            };
            Some(
                a.active_at
                    .ok_or_else(|| {
                        ProbeError::Malformed("prometheus alert without activeAt".into())
                    })
                    .map(|active_at| Alert {
                        labels: a.labels,
                        state,
                        active_at,
                    }),
            )
        })
        .collect()
}

/// Alertmanager `GET /api/v2/alerts`: a JSON array of gettable alerts.
#[derive(Deserialize)]
struct AmAlert {
    labels: BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    starts_at: DateTime<Utc>,
    status: AmStatus,
}

#[derive(Deserialize)]
struct AmStatus {
    state: String,
    #[serde(default, rename = "silencedBy")]
    silenced_by: Vec<String>,
}

/// Parses an Alertmanager alerts answer.
pub fn alertmanager(body: &[u8]) -> Result<Vec<Alert>, ProbeError> {
    let alerts: Vec<AmAlert> =
        serde_json::from_slice(body).map_err(|e| malformed("alertmanager", e))?;
    alerts
        .into_iter()
        .map(|a| {
            let state = match a.status.state.as_str() {
                // Unprocessed: received, not yet through the pipeline; it fires all the same.
                "active" | "unprocessed" => AlertState::Firing,
                "suppressed" if !a.status.silenced_by.is_empty() => AlertState::Silenced,
                "suppressed" => AlertState::Inhibited,
                other => {
                    return Err(ProbeError::Malformed(format!(
                        "alertmanager alert state {other:?}"
                    )))
                }
            };
            Ok(Alert {
                labels: a.labels,
                state,
                active_at: a.starts_at,
            })
        })
        .collect()
}

fn malformed(server: &str, e: serde_json::Error) -> ProbeError {
    ProbeError::Malformed(format!("{server} alerts: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_alerts_parse_and_inactive_ones_are_dropped() {
        let body = br#"{"status":"success","data":{"alerts":[
            {"labels":{"alertname":"ShopErrorRate","service":"shop"},"annotations":{},
             "state":"firing","activeAt":"2024-05-01T12:03:10.123456789+02:00","value":"1e+00"},
            {"labels":{"alertname":"Slow"},"annotations":{},"state":"pending",
             "activeAt":"2024-05-01T10:00:00Z","value":"3"},
            {"labels":{"alertname":"Gone"},"state":"inactive","activeAt":"2024-05-01T10:00:00Z"}
        ]}}"#;
        let alerts = prometheus(body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].state, AlertState::Firing);
        assert_eq!(
            alerts[0].active_at.to_rfc3339(),
            "2024-05-01T10:03:10.123456789+00:00"
        );
        assert_eq!(alerts[1].state, AlertState::Pending);
        assert!(prometheus(br#"{"status":"success","data":{"alerts":[]}}"#)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn alertmanager_states_map_to_firing_silenced_inhibited() {
        let body = br#"[
            {"labels":{"alertname":"A"},"annotations":{},"startsAt":"2024-05-01T12:03:10Z",
             "endsAt":"2024-05-01T12:08:10Z","updatedAt":"2024-05-01T12:03:10Z","fingerprint":"1",
             "receivers":[{"name":"x"}],
             "status":{"state":"active","silencedBy":[],"inhibitedBy":[]}},
            {"labels":{"alertname":"B"},"startsAt":"2024-05-01T12:03:10Z",
             "status":{"state":"suppressed","silencedBy":["s-1"],"inhibitedBy":[]}},
            {"labels":{"alertname":"C"},"startsAt":"2024-05-01T12:03:10Z",
             "status":{"state":"suppressed","silencedBy":[],"inhibitedBy":["f-2"]}},
            {"labels":{"alertname":"D"},"startsAt":"2024-05-01T12:03:10Z",
             "status":{"state":"unprocessed","silencedBy":[],"inhibitedBy":[]}}
        ]"#;
        let states: Vec<AlertState> = alertmanager(body)
            .unwrap()
            .into_iter()
            .map(|a| a.state)
            .collect();
        assert_eq!(
            states,
            [
                AlertState::Firing,
                AlertState::Silenced,
                AlertState::Inhibited,
                AlertState::Firing
            ]
        );
    }

    #[test]
    fn garbage_is_an_error_never_an_empty_list() {
        for body in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"{}",
            b"null",
            br#"{"status":"success"}"#,
            br#"{"status":"success","data":{"alerts":[{"labels":{},"state":"firing"}]}}"#,
            br#"{"status":"success","data":{"alerts":[{"labels":{},"state":"odd","activeAt":"2024-05-01T10:00:00Z"}]}}"#,
            br#"{"status":"success","data":{"alerts":[{"labels":{"a":1},"state":"firing","activeAt":"2024-05-01T10:00:00Z"}]}}"#,
        ] {
            assert!(
                prometheus(body).is_err(),
                "prometheus {:?}",
                String::from_utf8_lossy(body)
            );
        }
        assert!(matches!(
            prometheus(br#"{"status":"error","errorType":"internal","error":"boom"}"#),
            Err(ProbeError::Api { .. })
        ));
        for body in [
            &b"{}"[..],
            b"[{}]",
            br#"[{"labels":{},"startsAt":"yesterday","status":{"state":"active"}}]"#,
            br#"[{"labels":{},"startsAt":"2024-05-01T10:00:00Z","status":{"state":"weird"}}]"#,
            br#"{"status":"success","data":{"alerts":[]}}"#,
        ] {
            assert!(
                alertmanager(body).is_err(),
                "alertmanager {:?}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn truncated_mistyped_and_deeply_nested_answers_are_errors() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let in_labels = format!(
            r#"[{{"labels":{{"a":{deep}}},"startsAt":"2024-05-01T10:00:00Z","status":{{"state":"active"}}}}]"#
        );
        let truncated = br#"[{"labels":{},"startsAt":"2024-05-01T10:00:00Z","status":{"#;
        let huge_time = br#"[{"labels":{},"startsAt":"+999999999-01-01T00:00:00Z","status":{"state":"active"}}]"#;
        for body in [
            deep.as_bytes(),
            in_labels.as_bytes(),
            truncated,
            huge_time,
            b"\xff",
        ] {
            assert!(
                matches!(alertmanager(body), Err(ProbeError::Malformed(_))),
                "alertmanager {:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            );
            assert!(matches!(prometheus(body), Err(ProbeError::Malformed(_))));
        }
        let prom_deep = format!(r#"{{"status":"success","data":{{"alerts":{deep}}}}}"#);
        assert!(matches!(
            prometheus(prom_deep.as_bytes()),
            Err(ProbeError::Malformed(_))
        ));
    }
}
