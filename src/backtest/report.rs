//! The backtest's result: per deployment what backstop would have decided, when, why and what
//! it would have done, and the summary. Pure; serialised as the `--json` document, rendered
//! as text by [`super::render`].

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::checks::{Kept, Skipped};
use crate::judge::observation::VerdictKind;
use crate::replay::{Action, Outcome};

/// The whole backtest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub watch: String,
    pub deployer: String,
    pub project: String,
    pub environment: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the backtest ran: history ends here.
    pub generated_at: DateTime<Utc>,
    pub replayed_checks: Vec<Kept>,
    pub skipped_checks: Vec<Skipped>,
    /// Oldest first.
    pub deployments: Vec<Entry>,
    pub summary: Summary,
}

/// One past deployment and what backstop would have made of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub deployment_id: String,
    pub release: String,
    pub version: Option<String>,
    pub deployed_at: DateTime<Utc>,
    /// How its deployer task ended (`Success`, `Failed`, `TimedOut`, `Canceled`).
    pub task_state: String,
    /// The rollback target: the newest release successfully deployed before it (and not
    /// condemned by this backtest).
    pub previous_release: Option<String>,
    pub previous_version: Option<String>,
    pub verdict: Verdict,
    pub decided_at: Option<DateTime<Utc>>,
    pub time_to_verdict_seconds: Option<f64>,
    /// Why, in backstop's words.
    pub summary: String,
    pub action: ActionEntry,
    /// Sample rounds judged.
    pub rounds: u32,
}

/// A deployment's verdict in the backtest: backstop's, or why there is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Verified,
    Condemned,
    Inconclusive,
    /// The next deployment came before a verdict.
    Superseded,
    /// Its window had not ended when the backtest ran.
    Open,
}

impl Verdict {
    pub fn as_str(&self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::Condemned => "condemned",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Superseded => "superseded",
            Verdict::Open => "open",
        }
    }

    fn of(kind: VerdictKind) -> Verdict {
        match kind {
            VerdictKind::Verified => Verdict::Verified,
            VerdictKind::Condemned => Verdict::Condemned,
            VerdictKind::Inconclusive => Verdict::Inconclusive,
            VerdictKind::Superseded => Verdict::Superseded,
        }
    }
}

/// What backstop would have done: `kind` is `none`, `rollback`, `retry` (redeploy the same
/// release), `command` (run `[watch.command]`) or `human` (a human must act; `reason` says why).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionEntry {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ActionEntry {
    pub fn none() -> Self {
        ActionEntry {
            kind: "none".into(),
            target: None,
            target_version: None,
            reason: None,
        }
    }

    fn of(action: &Option<Action>, version: impl Fn(&str) -> Option<String>) -> Self {
        match action {
            None => ActionEntry::none(),
            Some(Action::Deploy { kind, target }) => ActionEntry {
                kind: kind.clone(),
                target_version: version(target),
                target: Some(target.clone()),
                reason: None,
            },
            Some(Action::Command) => ActionEntry {
                kind: "command".into(),
                ..ActionEntry::none()
            },
            Some(Action::Human { state, reason }) => ActionEntry {
                kind: "human".into(),
                reason: Some(if reason.is_empty() {
                    format!("the watch would be {state}")
                } else {
                    reason.clone()
                }),
                ..ActionEntry::none()
            },
        }
    }
}

/// Counts over every deployment.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct Summary {
    pub deployments: usize,
    pub verified: usize,
    pub condemned: usize,
    pub inconclusive: usize,
    pub superseded: usize,
    pub open: usize,
    /// Deployments backstop would have rolled back (a deploy of an older release).
    pub rolled_back: usize,
    /// Deployments it would have redeployed (`retry`).
    pub retried: usize,
    /// Condemned deployments it would have left to a human or to `[watch.command]`.
    pub left_to_human: usize,
    pub command: usize,
    /// Median time from deployment to verdict, over every verdict.
    pub median_time_to_verdict_seconds: Option<f64>,
    /// Median time from deployment to a condemned verdict: how fast a bad release is caught.
    pub median_time_to_condemn_seconds: Option<f64>,
}

/// What is known of a deployment before its replay.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    pub deployment_id: String,
    pub release: String,
    pub version: Option<String>,
    pub deployed_at: DateTime<Utc>,
    pub task_state: String,
    pub previous_release: Option<String>,
    pub previous_version: Option<String>,
    /// History ends here: the next deployment, or now.
    pub horizon: DateTime<Utc>,
    /// The next deployment (release, id), when it is what ends history.
    pub next: Option<(String, String)>,
}

/// A deployment's entry from its replay. A verdict reached after the horizon was reached on
/// rounds without data: there is none (superseded by the next deployment, or still open).
pub fn entry(f: Facts, out: &Outcome, version: impl Fn(&str) -> Option<String>) -> Entry {
    let decided = out.verdict.as_ref().filter(|v| v.decided_at <= f.horizon);
    let (verdict, decided_at, summary, action) = match decided {
        Some(v) => (
            Verdict::of(v.verdict),
            Some(v.decided_at),
            v.summary.clone(),
            ActionEntry::of(&out.action, version),
        ),
        None => {
            let (verdict, summary) = match &f.next {
                Some((release, id)) => (
                    Verdict::Superseded,
                    format!(
                        "no verdict before the next deployment ({id} of {release}) at {}",
                        f.horizon.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                ),
                None => (
                    Verdict::Open,
                    format!(
                        "no verdict yet: its window was still open at {}",
                        f.horizon.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                ),
            };
            (verdict, None, summary, ActionEntry::none())
        }
    };
    let time_to_verdict_seconds =
        decided_at.map(|t| (t - f.deployed_at).num_milliseconds() as f64 / 1000.0);
    Entry {
        deployment_id: f.deployment_id,
        release: f.release,
        version: f.version,
        deployed_at: f.deployed_at,
        task_state: f.task_state,
        previous_release: f.previous_release,
        previous_version: f.previous_version,
        verdict,
        decided_at,
        time_to_verdict_seconds,
        summary,
        action,
        rounds: out.rounds,
    }
}

/// The summary of the entries.
pub fn summarise(entries: &[Entry]) -> Summary {
    let mut s = Summary {
        deployments: entries.len(),
        ..Summary::default()
    };
    for e in entries {
        *match e.verdict {
            Verdict::Verified => &mut s.verified,
            Verdict::Condemned => &mut s.condemned,
            Verdict::Inconclusive => &mut s.inconclusive,
            Verdict::Superseded => &mut s.superseded,
            Verdict::Open => &mut s.open,
        } += 1;
        match e.action.kind.as_str() {
            "rollback" => s.rolled_back += 1,
            "retry" => s.retried += 1,
            "human" => s.left_to_human += 1,
            "command" => s.command += 1,
            _ => {}
        }
    }
    let times = |only: Option<Verdict>| {
        median(
            entries
                .iter()
                .filter(|e| only.is_none_or(|v| e.verdict == v))
                .filter_map(|e| e.time_to_verdict_seconds)
                .collect(),
        )
    };
    s.median_time_to_verdict_seconds = times(None);
    s.median_time_to_condemn_seconds = times(Some(Verdict::Condemned));
    s
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
