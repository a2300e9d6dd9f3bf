//! `kind = "slack"`: a Slack incoming-webhook message (also accepted by Slack-compatible
//! receivers such as Mattermost): a plain `text` fallback for notifications plus Block Kit
//! `blocks` a human can act on without opening anything else.
//!
//! Block Kit limits respected here: header text 150 characters, section text 3000, at most 10
//! fields of 2000 each, at most 50 blocks per message.

use serde_json::{json, Value};

use super::{truncate, Alert, AlertKind};
use crate::evidence::{CheckEvidence, Evidence};
use crate::judge::observation::Sample;
use crate::judge::{num, Outcome};

const HEADER_MAX: usize = 150;
const TEXT_MAX: usize = 3000;
const FIELD_MAX: usize = 2000;
/// Checks shown one block each; with the fixed blocks this stays far below Slack's 50.
const CHECKS_SHOWN: usize = 20;
/// Most recent samples shown per check.
const SAMPLES_SHOWN: usize = 3;

/// `{"text": fallback, "blocks": [header, summary, facts, checks..., context]}`.
pub(super) fn payload(alert: &Alert) -> Value {
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate(&header(alert), HEADER_MAX), "emoji": true},
        }),
        section(&escape(&alert.summary)),
        json!({"type": "section", "fields": facts(alert)}),
    ];
    if let Some(ev) = &alert.evidence {
        blocks.extend(ev.checks.iter().take(CHECKS_SHOWN).map(check));
        if ev.checks.len() > CHECKS_SHOWN {
            blocks.push(section(&format!(
                "_... and {} more checks: see the verdict_",
                ev.checks.len() - CHECKS_SHOWN
            )));
        }
    }
    blocks.push(json!({
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": truncate(&context(alert), TEXT_MAX)}],
    }));
    json!({"text": truncate(&fallback(alert), TEXT_MAX), "blocks": blocks})
}

fn title(kind: AlertKind) -> (&'static str, &'static str) {
    match kind {
        AlertKind::Condemned => (":x:", "Release condemned"),
        AlertKind::RolledBack => (":leftwards_arrow_with_hook:", "Rolled back"),
        AlertKind::RollbackFailed => (":rotating_light:", "Rollback FAILED"),
        AlertKind::RollbackUnknown => (":rotating_light:", "Rollback outcome UNKNOWN"),
        AlertKind::DuplicateDeployment => (":rotating_light:", "DUPLICATE deployment"),
        AlertKind::Superseded => (":fast_forward:", "Rollback superseded"),
        AlertKind::Inconclusive => (":grey_question:", "Verdict inconclusive"),
        AlertKind::Frozen => (":ice_cube:", "Watch frozen"),
        AlertKind::Paused => (":double_vertical_bar:", "Watch paused"),
        AlertKind::DeployFailed => (":boom:", "Deployment FAILED"),
    }
}

fn header(alert: &Alert) -> String {
    let (emoji, title) = title(alert.kind);
    format!("{emoji} {title}: {}", alert.watch)
}

/// The one-liner shown in notifications and by clients that cannot render blocks.
fn fallback(alert: &Alert) -> String {
    let (_, title) = title(alert.kind);
    escape(&format!(
        "backstop: {title}: watch {} release {}: {}",
        alert.watch, alert.release, alert.summary
    ))
}

fn section(mrkdwn: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate(mrkdwn, TEXT_MAX)}})
}

fn field(name: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": truncate(&format!("*{name}*\n{}", escape(value)), FIELD_MAX)})
}

/// Watch, release, event, and when known the action, its target and the deploy call.
fn facts(alert: &Alert) -> Vec<Value> {
    let ev = alert.evidence.as_ref();
    // A rolled-back alert names the target release while its evidence describes the condemned
    // one: the evidence's version belongs to the alert's release only when the names match.
    let version = ev
        .filter(|e| e.deployment.release == alert.release)
        .and_then(|e| e.deployment.version.as_deref())
        .map(|v| format!(" (version {v})"))
        .unwrap_or_default();
    let mut fields = vec![
        field("Watch", &alert.watch),
        field("Release", &format!("{}{version}", alert.release)),
        field("Event", alert.kind.as_str()),
    ];
    let Some(action) = ev.and_then(|e| e.action.as_ref()) else {
        return fields;
    };
    let dry = if action.dry_run { " [dry run]" } else { "" };
    fields.push(field(
        "Action",
        &format!("{}{dry} (policy {})", action.chosen, action.policy),
    ));
    if let Some(target) = &action.target_release {
        let why = action
            .target_why
            .as_deref()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        fields.push(field("Target", &format!("{target}{why}")));
    }
    if let Some(d) = &action.deploy {
        let id = d
            .deployment_id
            .as_deref()
            .map(|i| format!(", {i}"))
            .unwrap_or_default();
        fields.push(field(
            "Deploy",
            &format!("{} via {}{id}", d.state, d.deployer),
        ));
    }
    fields.push(field("Why", &action.why));
    fields
}

/// One check: its rules, its last values against them, its counters and the limit it hit.
fn check(c: &CheckEvidence) -> Value {
    let t = &c.track;
    let query = c
        .query
        .as_deref()
        .map(|q| format!(" `{}`", escape(&truncate(q, 300))))
        .unwrap_or_default();
    let rules: Vec<String> = t.rules.iter().map(|r| r.to_string()).collect();
    let baseline = t
        .baseline
        .map(|b| format!(" · baseline {}", num(b)))
        .unwrap_or_default();
    let recent: Vec<String> = t
        .samples
        .iter()
        .rev()
        .take(SAMPLES_SHOWN)
        .rev()
        .map(sample)
        .collect();
    let mut text = format!(
        "*{}* ({}){query}\nrules: {} · failure_limit {}{baseline}\nlast: {}\n{} pass · {} fail · {} error",
        escape(&t.name),
        escape(&c.kind),
        escape(&rules.join(", ")),
        t.failure_limit,
        if recent.is_empty() { "no samples".to_string() } else { recent.join(" · ") },
        t.passes,
        t.failures,
        t.errors,
    );
    if let Some(hit) = &t.limit_hit {
        text.push_str(&format!("\n:warning: *{}*", escape(hit)));
    }
    section(&text)
}

fn sample(s: &Sample) -> String {
    let value = s.value.map(num).unwrap_or_else(|| "-".into());
    match &s.outcome {
        Outcome::Pass => format!("`{value}` pass"),
        Outcome::Fail { limit } => format!("`{value}` *fail* ({})", escape(limit)),
        Outcome::Error { reason, .. } => format!("`{value}` error ({})", escape(reason)),
        Outcome::NoData { reason } => format!("`{value}` no data ({})", escape(reason)),
    }
}

fn context(alert: &Alert) -> String {
    let at = alert.at.format("%Y-%m-%d %H:%M:%S UTC");
    match alert.evidence.as_ref() {
        Some(Evidence { id, verdict, .. }) => {
            let verdict = verdict
                .as_ref()
                .map(|v| format!(" ({})", v.verdict.as_str()))
                .unwrap_or_default();
            format!("backstop · verdict `{}`{verdict} · {at}", escape(id))
        }
        None => format!("backstop · {at}"),
    }
}

/// Slack's mrkdwn treats `&`, `<` and `>` as control characters (links, mentions).
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::testing;

    fn texts(p: &Value) -> String {
        serde_json::to_string(p).unwrap()
    }

    #[test]
    fn message_has_fallback_text_and_blocks() {
        let alert = testing::alert(AlertKind::Condemned);
        let p = payload(&alert);
        let text = p["text"].as_str().unwrap();
        assert!(
            text.contains("shop") && text.contains("Releases-2"),
            "{text}"
        );
        assert!(text.contains("Release condemned"), "{text}");
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert_eq!(blocks[1]["type"], "section");
        assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
        let fields = blocks[2]["fields"].as_array().unwrap();
        assert!(fields.len() <= 10);
        assert!(fields.iter().all(|f| f["type"] == "mrkdwn"));
        let all = texts(&p);
        assert!(all.contains("Releases-1 (last verified)"), "target: {all}");
        assert!(all.contains("rollback (policy rollback)"), "action: {all}");
        let last = blocks.last().unwrap();
        assert_eq!(last["type"], "context");
        assert!(last["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("obs-42"));
    }

    #[test]
    fn version_is_shown_only_for_the_release_it_belongs_to() {
        let mut alert = testing::alert(AlertKind::RolledBack);
        let all = texts(&payload(&alert));
        assert!(all.contains("Releases-2 (version 1.1.0)"), "{all}");
        alert.release = "Releases-1".into();
        let p = payload(&alert);
        assert_eq!(p["blocks"][2]["fields"][1]["text"], "*Release*\nReleases-1");
        assert!(!texts(&p).contains("version 1.1.0"));
    }

    #[test]
    fn each_check_shows_rules_last_values_and_limit() {
        let p = payload(&testing::alert(AlertKind::Condemned));
        let blocks = p["blocks"].as_array().unwrap();
        let health = blocks[3]["text"]["text"].as_str().unwrap();
        assert!(health.contains("*health* (http)"), "{health}");
        assert!(health.contains("status in [200]"), "{health}");
        assert!(health.contains("`503` *fail*"), "{health}");
        assert!(health.contains(":warning:"), "{health}");
        assert!(
            !health.contains("`200` pass"),
            "only the last 3 samples: {health}"
        );
        let latency = blocks[4]["text"]["text"].as_str().unwrap();
        assert!(latency.contains("value &lt;= 0.5"), "escaped: {latency}");
        assert!(latency.contains("baseline 0.12"), "{latency}");
        assert!(latency.contains("`-` error (empty result)"), "{latency}");
    }

    #[test]
    fn limits_are_respected() {
        let mut alert = testing::alert(AlertKind::Inconclusive);
        alert.watch = "w".repeat(400);
        alert.summary = "s".repeat(10_000);
        let ev = alert.evidence.as_mut().unwrap();
        let one = ev.checks[0].clone();
        ev.checks = vec![one; 60];
        let p = payload(&alert);
        let blocks = p["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        assert!(blocks[0]["text"]["text"].as_str().unwrap().chars().count() <= HEADER_MAX);
        for b in blocks {
            if let Some(t) = b["text"]["text"].as_str() {
                assert!(t.chars().count() <= TEXT_MAX);
            }
        }
        assert!(texts(&p).contains("40 more checks"));
    }

    #[test]
    fn works_without_evidence() {
        let mut alert = testing::alert(AlertKind::Paused);
        alert.evidence = None;
        alert.summary = "paused by <@U123> & co".into();
        let p = payload(&alert);
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 4);
        assert_eq!(
            blocks[1]["text"]["text"],
            "paused by &lt;@U123&gt; &amp; co"
        );
        assert!(blocks[3]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .contains("2024-05-01 12:00:00 UTC"));
    }
}
