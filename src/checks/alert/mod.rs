//! `kind = "alert"`: the alerts a Prometheus (`GET /api/v1/alerts`) or an Alertmanager
//! (`GET /api/v2/alerts`) reports, matched and classified against the deployment by the pure
//! [`crate::judge::alerts::classify`]. The answer is parsed in [`parse`].
//!
//! The server is telemetry: unreachable, slow or answering garbage is an error, never a
//! failure. Its answer is bounded ([`limits::ALERTS`]): a server is not trusted to keep it small.

pub mod parse;

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::ProbeError;
use crate::config::{AlertProbe, AlertSource};
use crate::judge::alerts::classify;
use crate::judge::Reading;
use crate::limits;

/// Fetches the server's alerts and classifies those matching the check against `since`.
pub async fn sample(
    client: &reqwest::Client,
    probe: &AlertProbe,
    since: DateTime<Utc>,
) -> Result<Reading, ProbeError> {
    let body = fetch(client, probe).await?;
    let alerts = match probe.source {
        AlertSource::Prometheus => parse::prometheus(&body)?,
        AlertSource::Alertmanager => parse::alertmanager(&body)?,
    };
    Ok(Reading::Alerts(classify(
        &alerts,
        &probe.labels,
        since,
        probe.include_silenced,
    )))
}

/// The request of each API. Alertmanager is asked for the matching alerts only (its `filter`
/// matchers), muted ones included so the evidence can say they were seen and ignored; the
/// labels are matched again on our side all the same.
fn request(client: &reqwest::Client, probe: &AlertProbe) -> reqwest::RequestBuilder {
    match probe.source {
        AlertSource::Prometheus => client.get(format!("{}/api/v1/alerts", probe.url)),
        AlertSource::Alertmanager => {
            let mut params: Vec<(&str, String)> =
                ["active", "silenced", "inhibited", "unprocessed"]
                    .into_iter()
                    .map(|k| (k, "true".to_string()))
                    .collect();
            params.extend(
                probe
                    .labels
                    .iter()
                    .map(|(k, v)| ("filter", format!("{k}=\"{}\"", escape(v)))),
            );
            client
                .get(format!("{}/api/v2/alerts", probe.url))
                .query(&params)
        }
    }
}

/// A label value inside an Alertmanager matcher's double quotes.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The answer's body, bounded; a non-2xx status is an error with the start of its body.
async fn fetch(client: &reqwest::Client, probe: &AlertProbe) -> Result<Vec<u8>, ProbeError> {
    let timeout: Duration = probe.timeout;
    let resp = request(client, probe)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ProbeError::from_reqwest(e, timeout))?;
    let status = resp.status();
    let body = limits::read(resp, limits::ALERTS)
        .await
        .map_err(|e| ProbeError::from_read(e, timeout))?;
    if !status.is_success() {
        return Err(ProbeError::Answer {
            server: probe.source.as_str(),
            status: status.as_u16(),
            message: String::from_utf8_lossy(&body).chars().take(200).collect(),
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matcher_values_are_escaped() {
        assert_eq!(super::escape(r#"a"b\c"#), r#"a\"b\\c"#);
    }
}
