//! Alert checks (`kind = "alert"`): which of the alerts a server reports speak against the
//! observed release. Pure: the alerts, the check's label matchers and the deployment time in,
//! a classified [`AlertReading`] out; [`super::judge_sample`] fails it when one is
//! [`Seen::New`].
//!
//! The rule users get is the one their alerting already encodes: an alert that *became active
//! after the deployment* and is firing condemns the release. One that was firing before it is
//! somebody else's problem (this release cannot have caused it), a pending one has not yet
//! passed its rule's `for` and is only noted, and a silenced or inhibited one was muted by a
//! human or by a more important alert, so by default it is not backstop's to act on either.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Most matching alerts kept in one reading (evidence is stored every round).
pub const KEPT_ALERTS: usize = 10;

/// An alert as a server reported it, before matching.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub state: AlertState,
    /// When it became active: Prometheus `activeAt` (pending from then), Alertmanager
    /// `startsAt`.
    pub active_at: DateTime<Utc>,
}

/// What the server says about an alert. Closed set, from both APIs.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertState {
    /// Prometheus `pending`: its expression holds, its `for` has not elapsed.
    Pending,
    /// Prometheus `firing`; Alertmanager `active` or `unprocessed` (received, not yet routed:
    /// firing all the same).
    Firing,
    /// Alertmanager `suppressed` with `silencedBy` set: muted by a human.
    Silenced,
    /// Alertmanager `suppressed` by inhibition only: a more important alert covers it.
    Inhibited,
}

/// How one matching alert stands against the observed deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Seen {
    /// Firing, active since after the deployment: evidence against the release.
    New,
    /// Firing since before the deployment: not this release's.
    Old,
    /// Not firing yet.
    Pending,
    /// Silenced, and `include_silenced` is off.
    Silenced,
    /// Inhibited, and `include_silenced` is off.
    Inhibited,
}

/// One matching alert, as kept in the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeenAlert {
    /// The `alertname` label (`?` when missing).
    pub name: String,
    /// Its other labels.
    pub labels: BTreeMap<String, String>,
    pub since: DateTime<Utc>,
    pub seen: Seen,
}

/// What an alert check measured: the matching alerts, classified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertReading {
    /// When the observed deployment started.
    pub deployed_at: DateTime<Utc>,
    /// Matching alerts, new ones first, at most [`KEPT_ALERTS`].
    pub alerts: Vec<SeenAlert>,
    /// How many alerts matched (more than `alerts` holds when some were left out).
    pub matched: usize,
    /// How many are [`Seen::New`] (all of them, kept or not).
    pub new: usize,
}

/// Classifies the alerts matching every `labels` pair exactly (unlisted labels are free).
/// With `include_silenced`, silenced and inhibited alerts count as firing.
pub fn classify(
    alerts: &[Alert],
    labels: &BTreeMap<String, String>,
    deployed_at: DateTime<Utc>,
    include_silenced: bool,
) -> AlertReading {
    let mut seen: Vec<SeenAlert> = alerts
        .iter()
        .filter(|a| labels.iter().all(|(k, v)| a.labels.get(k) == Some(v)))
        .map(|a| {
            let firing = match a.state {
                AlertState::Pending => Some(Seen::Pending),
                AlertState::Firing => None,
                AlertState::Silenced if !include_silenced => Some(Seen::Silenced),
                AlertState::Inhibited if !include_silenced => Some(Seen::Inhibited),
                AlertState::Silenced | AlertState::Inhibited => None,
            };
            // Active at the deployment instant counts as before: its cause predates the
            // release's first request.
            let seen = firing.unwrap_or(if a.active_at > deployed_at {
                Seen::New
            } else {
                Seen::Old
            });
            let mut labels = a.labels.clone();
            let name = labels.remove("alertname").unwrap_or_else(|| "?".into());
            SeenAlert {
                name,
                labels,
                since: a.active_at,
                seen,
            }
        })
        .collect();
    // New first (they are the verdict), then oldest first; a stable order for the evidence.
    seen.sort_by(|a, b| {
        (a.seen != Seen::New, a.since, &a.name, &a.labels).cmp(&(
            b.seen != Seen::New,
            b.since,
            &b.name,
            &b.labels,
        ))
    });
    let matched = seen.len();
    let new = seen.iter().filter(|a| a.seen == Seen::New).count();
    seen.truncate(KEPT_ALERTS);
    AlertReading {
        deployed_at,
        alerts: seen,
        matched,
        new,
    }
}

impl Seen {
    pub fn as_str(&self) -> &'static str {
        match self {
            Seen::New => "new",
            Seen::Old => "old",
            Seen::Pending => "pending",
            Seen::Silenced => "silenced",
            Seen::Inhibited => "inhibited",
        }
    }
}

impl SeenAlert {
    /// `ShopErrorRate{service=shop,severity=page}`.
    pub fn title(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }

    /// One line for a human, relative to the deployment.
    pub fn describe(&self, deployed_at: DateTime<Utc>) -> String {
        let at = self.since.format("%H:%M:%S");
        let title = self.title();
        match self.seen {
            Seen::New => format!(
                "alert {title} firing since {at}, {} after the deployment",
                seconds(self.since - deployed_at)
            ),
            Seen::Old => format!(
                "alert {title} firing since before the deployment ({at}): not this release's"
            ),
            Seen::Pending => format!("alert {title} pending since {at}: not firing yet"),
            Seen::Silenced => format!("alert {title} silenced: ignored (include_silenced)"),
            Seen::Inhibited => format!("alert {title} inhibited: ignored (include_silenced)"),
        }
    }
}

/// `40 s`, `1.5 s`.
fn seconds(d: chrono::Duration) -> String {
    format!(
        "{} s",
        super::num((d.num_milliseconds() as f64 / 100.0).round() / 10.0)
    )
}

impl AlertReading {
    /// The failure text: every new alert kept, and how many more there were.
    pub fn failure(&self) -> Option<String> {
        if self.new == 0 {
            return None;
        }
        let shown: Vec<String> = self
            .alerts
            .iter()
            .filter(|a| a.seen == Seen::New)
            .map(|a| a.describe(self.deployed_at))
            .collect();
        let more = self.new - shown.len();
        let mut text = shown.join("; ");
        if more > 0 {
            text.push_str(&format!("; and {more} more"));
        }
        Some(text)
    }

    /// What the matching alerts that do not condemn the release say (pending, firing since
    /// before, muted): the sample's note; `None` when there are none.
    pub fn note(&self) -> Option<String> {
        let others: Vec<String> = self
            .alerts
            .iter()
            .filter(|a| a.seen != Seen::New)
            .map(|a| a.describe(self.deployed_at))
            .collect();
        let left_out = self.matched - self.alerts.len();
        match (others.is_empty(), left_out) {
            (true, 0) => None,
            (true, n) => Some(format!("{n} more matching alerts not shown")),
            (false, 0) => Some(others.join("; ")),
            (false, n) => Some(format!(
                "{}; {n} more matching alerts not shown",
                others.join("; ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("2024-05-01T{s}Z"))
            .unwrap()
            .with_timezone(&Utc)
    }

    fn alert(name: &str, extra: &[(&str, &str)], state: AlertState, at: &str) -> Alert {
        let mut labels: BTreeMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        labels.insert("alertname".into(), name.into());
        Alert {
            labels,
            state,
            active_at: t(at),
        }
    }

    fn shop() -> BTreeMap<String, String> {
        [("service", "shop"), ("severity", "page")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const PAGE: &[(&str, &str)] = &[("service", "shop"), ("severity", "page")];
    const DEPLOYED: &str = "12:02:30";

    #[test]
    fn firing_after_the_deployment_fails_and_names_the_alert() {
        let r = classify(
            &[alert("ShopErrorRate", PAGE, AlertState::Firing, "12:03:10")],
            &shop(),
            t(DEPLOYED),
            false,
        );
        assert_eq!(r.new, 1);
        assert_eq!(
            r.failure().unwrap(),
            "alert ShopErrorRate{service=shop,severity=page} firing since 12:03:10, 40 s after the deployment"
        );
        assert_eq!(r.note(), None);
    }

    #[test]
    fn firing_since_before_the_deployment_is_not_this_releases() {
        let r = classify(
            &[alert("ShopErrorRate", PAGE, AlertState::Firing, "12:00:00")],
            &shop(),
            t(DEPLOYED),
            false,
        );
        assert_eq!(r.new, 0);
        assert_eq!(r.failure(), None);
        let note = r.note().unwrap();
        assert!(
            note.contains("firing since before the deployment"),
            "{note}"
        );
        assert!(note.contains("not this release's"), "{note}");
        // Active at the very instant of the deployment: before, too.
        let r = classify(
            &[alert("X", PAGE, AlertState::Firing, DEPLOYED)],
            &shop(),
            t(DEPLOYED),
            false,
        );
        assert_eq!(r.alerts[0].seen, Seen::Old);
    }

    #[test]
    fn pending_is_a_note_not_a_failure() {
        let r = classify(
            &[alert("ShopLatency", PAGE, AlertState::Pending, "12:03:00")],
            &shop(),
            t(DEPLOYED),
            false,
        );
        assert_eq!(r.new, 0);
        assert!(r.note().unwrap().contains("pending since 12:03:00"));
    }

    #[test]
    fn silenced_and_inhibited_are_ignored_unless_included() {
        let alerts = [
            alert("A", PAGE, AlertState::Silenced, "12:03:00"),
            alert("B", PAGE, AlertState::Inhibited, "12:03:00"),
        ];
        let r = classify(&alerts, &shop(), t(DEPLOYED), false);
        assert_eq!(r.new, 0);
        let note = r.note().unwrap();
        assert!(
            note.contains("A{service=shop,severity=page} silenced"),
            "{note}"
        );
        assert!(
            note.contains("B{service=shop,severity=page} inhibited"),
            "{note}"
        );
        let r = classify(&alerts, &shop(), t(DEPLOYED), true);
        assert_eq!(r.new, 2);
        // Included, a muted alert firing since before the deployment is still old.
        let r = classify(
            &[alert("A", PAGE, AlertState::Silenced, "12:00:00")],
            &shop(),
            t(DEPLOYED),
            true,
        );
        assert_eq!(r.alerts[0].seen, Seen::Old);
    }

    #[test]
    fn every_label_must_match_exactly() {
        let alerts = [
            alert(
                "Other",
                &[("service", "cart"), ("severity", "page")],
                AlertState::Firing,
                "12:03:00",
            ),
            alert(
                "Ticket",
                &[("service", "shop"), ("severity", "ticket")],
                AlertState::Firing,
                "12:03:00",
            ),
            alert(
                "NoSeverity",
                &[("service", "shop")],
                AlertState::Firing,
                "12:03:00",
            ),
            alert(
                "Extra",
                &[("service", "shop"), ("severity", "page"), ("pod", "a")],
                AlertState::Firing,
                "12:03:00",
            ),
        ];
        let r = classify(&alerts, &shop(), t(DEPLOYED), false);
        assert_eq!(r.matched, 1);
        assert_eq!(r.alerts[0].name, "Extra");
        assert_eq!(
            r.alerts[0].title(),
            "Extra{pod=a,service=shop,severity=page}"
        );
        // No matching alert: a pass without a note.
        let r = classify(&alerts[..3], &shop(), t(DEPLOYED), false);
        assert_eq!(
            (r.matched, r.new, r.note(), r.failure()),
            (0, 0, None, None)
        );
    }

    #[test]
    fn kept_alerts_are_bounded_new_first() {
        let mut alerts: Vec<Alert> = (0..15)
            .map(|i| alert(&format!("Old{i:02}"), PAGE, AlertState::Firing, "12:00:00"))
            .collect();
        alerts.extend(
            (0..12).map(|i| alert(&format!("New{i:02}"), PAGE, AlertState::Firing, "12:05:00")),
        );
        let r = classify(&alerts, &shop(), t(DEPLOYED), false);
        assert_eq!((r.matched, r.new, r.alerts.len()), (27, 12, KEPT_ALERTS));
        assert!(r.alerts.iter().all(|a| a.seen == Seen::New));
        assert!(r.failure().unwrap().ends_with("; and 2 more"));
        assert_eq!(r.note().unwrap(), "17 more matching alerts not shown");
    }
}
