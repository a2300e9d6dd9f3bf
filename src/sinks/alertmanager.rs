//! `kind = "alertmanager"`: each decision becomes an alert in Prometheus Alertmanager (API v2,
//! `POST /api/v2/alerts` with an array of `postableAlert`), so it is routed, grouped, silenced
//! and paged like every other alert. Each alert ends an hour after the decision and resolves
//! by itself: a decision is an event, not a condition backstop could later clear.

use std::collections::BTreeMap;

use chrono::SecondsFormat;
use serde_json::json;

use super::{Alert, AlertKind};

/// `alertname` of every alert backstop sends.
pub(super) const ALERTNAME: &str = "BackstopDecision";
/// How long an alert stays firing.
const LIFETIME: chrono::Duration = chrono::Duration::hours(1);
/// Cap on the `description` annotation (the evidence report): notification templates and
/// pagers choke on long texts, and the whole document is one `backstop explain` away.
const DESCRIPTION_MAX: usize = 4096;

/// `{url}/api/v2/alerts`, whether or not `url` ends with a slash.
pub(super) fn endpoint(url: &str) -> String {
    format!("{}/api/v2/alerts", url.trim_end_matches('/'))
}

/// How urgently a human must look: a failed rollback or a frozen watch needs one now.
pub(super) fn severity(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::RollbackFailed
        | AlertKind::RollbackUnknown
        | AlertKind::DuplicateDeployment
        | AlertKind::Frozen => "page",
        AlertKind::Condemned
        | AlertKind::Inconclusive
        | AlertKind::Paused
        | AlertKind::DeployFailed => "warning",
        AlertKind::RolledBack | AlertKind::Superseded => "info",
    }
}

/// A one-element array of `postableAlert` (`labels`, `annotations`, `startsAt`, `endsAt`, and
/// `generatorURL` when the evidence has a link). The configured `labels` are added first, so
/// backstop's own (alertname, watch, release, event, severity) win on a clash and routing on
/// them stays reliable.
pub(super) fn payload(alert: &Alert, extra: &BTreeMap<String, String>) -> serde_json::Value {
    let mut labels = extra.clone();
    for (k, v) in [
        ("alertname", ALERTNAME),
        ("watch", &alert.watch),
        ("release", &alert.release),
        ("event", alert.kind.as_str()),
        ("severity", severity(alert.kind)),
    ] {
        labels.insert(k.to_string(), v.to_string());
    }
    let mut annotations = BTreeMap::from([
        ("summary", alert.summary.clone()),
        ("description", alert.summary.clone()),
        ("notification_id", alert.id.clone()),
    ]);
    if let Some(ev) = &alert.evidence {
        annotations.insert(
            "description",
            super::truncate(&ev.report(), DESCRIPTION_MAX),
        );
        annotations.insert("verdict_id", ev.id.clone());
    }
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut posted = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": time(alert.at),
        "endsAt": time(alert.at + LIFETIME),
    });
    if let Some(url) = generator_url(alert) {
        posted["generatorURL"] = json!(url);
    }
    json!([posted])
}

/// The first link of the evidence (a Prometheus graph of a check, the deployer's task), when
/// it is an absolute URL: Alertmanager shows it as the alert's source.
fn generator_url(alert: &Alert) -> Option<String> {
    let link = alert.evidence.as_ref()?.links.first()?;
    let url = reqwest::Url::parse(&link.url).ok()?;
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::testing;

    #[test]
    fn endpoint_joins_cleanly() {
        assert_eq!(endpoint("http://am:9093"), "http://am:9093/api/v2/alerts");
        assert_eq!(endpoint("http://am:9093/"), "http://am:9093/api/v2/alerts");
        assert_eq!(
            endpoint("https://h/alertmanager/"),
            "https://h/alertmanager/api/v2/alerts"
        );
    }

    #[test]
    fn severity_follows_urgency() {
        assert_eq!(severity(AlertKind::RollbackFailed), "page");
        assert_eq!(severity(AlertKind::Frozen), "page");
        assert_eq!(severity(AlertKind::Condemned), "warning");
        assert_eq!(severity(AlertKind::Inconclusive), "warning");
        assert_eq!(severity(AlertKind::Paused), "warning");
        assert_eq!(severity(AlertKind::RolledBack), "info");
    }

    #[test]
    fn payload_is_one_postable_alert() {
        let alert = testing::alert(AlertKind::RollbackFailed);
        let extra = BTreeMap::from([
            ("team".to_string(), "payments".to_string()),
            ("alertname".to_string(), "Hijack".to_string()),
        ]);
        let p = payload(&alert, &extra);
        let list = p.as_array().unwrap();
        assert_eq!(list.len(), 1);
        let a = &list[0];
        assert_eq!(a["labels"]["alertname"], ALERTNAME, "own labels win");
        assert_eq!(a["labels"]["team"], "payments");
        assert_eq!(a["labels"]["watch"], "shop");
        assert_eq!(a["labels"]["release"], "Releases-2");
        assert_eq!(a["labels"]["event"], "rollback_failed");
        assert_eq!(a["labels"]["severity"], "page");
        assert_eq!(a["annotations"]["summary"], alert.summary);
        assert_eq!(a["annotations"]["verdict_id"], "obs-42");
        let description = a["annotations"]["description"].as_str().unwrap();
        assert!(description.contains("LIMIT HIT"), "{description}");
        assert_eq!(a["startsAt"], "2024-05-01T12:00:00.000Z");
        assert_eq!(a["endsAt"], "2024-05-01T13:00:00.000Z");
        assert!(a.get("generatorURL").is_none(), "no links, no generatorURL");
        for v in a["labels"].as_object().unwrap().values() {
            assert!(v.is_string());
        }
    }

    #[test]
    fn generator_url_is_the_first_absolute_link() {
        let mut alert = testing::alert(AlertKind::Condemned);
        let ev = alert.evidence.as_mut().unwrap();
        ev.links.push(crate::evidence::Link {
            name: "relative".into(),
            url: "/graph?g0.expr=up".into(),
        });
        assert!(payload(&alert, &BTreeMap::new())[0]
            .get("generatorURL")
            .is_none());
        let ev = alert.evidence.as_mut().unwrap();
        ev.links.insert(
            0,
            crate::evidence::Link {
                name: "latency".into(),
                url: "http://prometheus:9090/graph?g0.expr=up".into(),
            },
        );
        assert_eq!(
            payload(&alert, &BTreeMap::new())[0]["generatorURL"],
            "http://prometheus:9090/graph?g0.expr=up"
        );
    }

    #[test]
    fn description_is_capped_and_evidence_is_optional() {
        let mut alert = testing::alert(AlertKind::Condemned);
        if let Some(ev) = alert.evidence.as_mut() {
            ev.deployment.release = "r".repeat(10_000);
        }
        let p = payload(&alert, &BTreeMap::new());
        let d = p[0]["annotations"]["description"].as_str().unwrap();
        assert!(d.len() <= DESCRIPTION_MAX && d.ends_with("..."));

        alert.evidence = None;
        let p = payload(&alert, &BTreeMap::new());
        assert_eq!(p[0]["annotations"]["description"], alert.summary);
        assert!(p[0]["annotations"].get("verdict_id").is_none());
    }
}
