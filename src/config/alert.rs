//! `kind = "alert"` checks: the server asked (`source`, `url`), the label matchers and whether
//! muted alerts count.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fields::Table;
use super::{AlertProbe, AlertSource, Probe};
use crate::judge::Rule;

/// Parses the alert-specific keys of a check; `url` and `timeout` are already read. The rule
/// is implied by the kind (no threshold keys: those are reported as misplaced).
pub(super) fn alert(
    t: &Table,
    url: Option<String>,
    timeout: Duration,
) -> (Option<Probe>, Vec<Rule>) {
    let source = match t.string("source").as_deref() {
        Some("prometheus") => Some(AlertSource::Prometheus),
        Some("alertmanager") => Some(AlertSource::Alertmanager),
        Some(other) => {
            t.error(
                "source",
                format!("unknown value {other:?}; expected \"prometheus\" or \"alertmanager\""),
            );
            None
        }
        None => {
            t.error(
                "source",
                "is required: \"prometheus\" (its /api/v1/alerts) or \"alertmanager\" (its /api/v2/alerts)",
            );
            None
        }
    };
    let labels = labels(t);
    let include_silenced = t.boolean("include_silenced");
    if include_silenced.is_some() && source == Some(AlertSource::Prometheus) {
        t.error(
            "include_silenced",
            "only applies to source = \"alertmanager\": Prometheus knows nothing of silences",
        );
    }
    if t.has("no_data") {
        t.error(
            "no_data",
            "does not apply to alert checks: no matching alert is a pass",
        );
        drop(t.string("no_data"));
    }
    let probe = match (url, source, labels) {
        (Some(url), Some(source), Some(labels)) => Some(Probe::Alert(AlertProbe {
            source,
            url,
            labels,
            include_silenced: include_silenced.unwrap_or(false),
            timeout,
        })),
        _ => None,
    };
    (probe, vec![Rule::NoNewAlert])
}

/// `labels`: at least one exact matcher, none empty.
fn labels(t: &Table) -> Option<BTreeMap<String, String>> {
    if !t.has("labels") {
        t.error(
            "labels",
            "is required: the labels an alert must carry to count against this release, e.g. { service = \"shop\", severity = \"page\" }; without any, every alert on the server would condemn every release",
        );
        return None;
    }
    let labels = t.string_map("labels");
    if labels.is_empty() {
        t.error(
            "labels",
            "needs at least one label: an alert check matching every alert would condemn every release on any alert anywhere",
        );
        return None;
    }
    let mut ok = true;
    for (k, v) in &labels {
        let valid_name = k
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if !valid_name {
            t.error(
                &format!("labels.{k}"),
                "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)",
            );
            ok = false;
        } else if v.is_empty() {
            t.error(
                &format!("labels.{k}"),
                "must not be empty: Prometheus drops empty labels, so it would match no alert",
            );
            ok = false;
        }
    }
    ok.then_some(labels)
}
