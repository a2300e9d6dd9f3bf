//! The status document: what each watch is doing now, served by `GET /v1/status` and printed
//! by `backstop status`. Watch actors write their entry; the API reads a snapshot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::judge::observation::{CheckTrack, Verdict};

pub use crate::model::WatchState;
use crate::model::{IntentState, ObservationKind, Source};

/// The observation in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservationView {
    pub id: String,
    pub release: String,
    pub version: Option<String>,
    pub deployment_id: Option<String>,
    /// `deployment` or `rollback` (a rollback is observed too, but never rolled back).
    pub kind: ObservationKind,
    /// How the deployment was learned: announce, webhook, poll, rollback.
    pub source: Source,
    pub deployed_at: DateTime<Utc>,
    pub judging_from: DateTime<Utc>,
    pub window_ends: DateTime<Utc>,
    pub rounds: u64,
    pub checks: Vec<CheckTrack>,
    /// `succeeded`, or `failed` when the deployment itself failed.
    #[serde(default)]
    pub outcome: crate::model::DeployOutcome,
    /// The deployer's account of a failed deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::model::DeployFailure>,
}

/// The rollback in progress or last made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackView {
    pub condemned_release: String,
    pub target_release: String,
    pub state: IntentState,
    pub deployment_id: Option<String>,
    pub task_id: Option<String>,
    pub detail: Option<String>,
}

/// One watch's entry in `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchStatus {
    pub name: String,
    pub state: WatchState,
    pub current_release: Option<String>,
    pub last_good_release: Option<String>,
    pub observation: Option<ObservationView>,
    pub last_verdict: Option<Verdict>,
    pub rollback: Option<RollbackView>,
    /// Why the watch is in `failed`, for humans.
    pub attention: Option<String>,
}

impl WatchStatus {
    pub fn new(name: &str) -> Self {
        WatchStatus {
            name: name.to_string(),
            state: WatchState::Idle,
            current_release: None,
            last_good_release: None,
            observation: None,
            last_verdict: None,
            rollback: None,
            attention: None,
        }
    }
}

/// The `GET /v1/status` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    pub watches: Vec<WatchStatus>,
}

/// Shared, cheap-to-clone board of watch statuses. The lock is never held across `.await`.
#[derive(Clone, Default)]
pub struct StatusBoard(Arc<Mutex<BTreeMap<String, WatchStatus>>>);

impl StatusBoard {
    /// Replaces a watch's entry.
    pub fn set(&self, status: WatchStatus) {
        self.lock().insert(status.name.clone(), status);
    }

    /// Edits a watch's entry in place, creating it if missing.
    pub fn update(&self, name: &str, f: impl FnOnce(&mut WatchStatus)) {
        let mut map = self.lock();
        let entry = map
            .entry(name.to_string())
            .or_insert_with(|| WatchStatus::new(name));
        f(entry);
    }

    pub fn remove(&self, name: &str) {
        self.lock().remove(name);
    }

    pub fn get(&self, name: &str) -> Option<WatchStatus> {
        self.lock().get(name).cloned()
    }

    pub fn snapshot(&self) -> StatusDocument {
        StatusDocument {
            watches: self.lock().values().cloned().collect(),
        }
    }

    /// One line for logs and systemd `STATUS=`, e.g. "watching 3 services, 1 observing".
    pub fn summary(&self) -> String {
        let map = self.lock();
        let count = |s: WatchState| map.values().filter(|w| w.state == s).count();
        let mut line = format!(
            "watching {} service{}, {} observing",
            map.len(),
            if map.len() == 1 { "" } else { "s" },
            count(WatchState::Observing)
        );
        for (state, label) in [
            (WatchState::RollingBack, "rolling back"),
            (WatchState::Failed, "failed"),
            (WatchState::Paused, "paused"),
        ] {
            let n = count(state);
            if n > 0 {
                line.push_str(&format!(", {n} {label}"));
            }
        }
        line
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, WatchStatus>> {
        // A panic while holding the lock leaves consistent data (single-field writes).
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Renders the status document as a table for `backstop status`.
pub fn render_table(doc: &StatusDocument) -> String {
    let header = [
        "WATCH",
        "STATE",
        "CURRENT",
        "LAST GOOD",
        "LAST VERDICT",
        "DETAIL",
    ];
    let mut rows: Vec<[String; 6]> = Vec::new();
    for w in &doc.watches {
        let verdict = w
            .last_verdict
            .as_ref()
            .map(|v| format!("{} {}", v.verdict.as_str(), v.release))
            .unwrap_or_else(|| "-".into());
        let detail = if let Some(o) = &w.observation {
            let failed = o
                .failure
                .as_ref()
                .map(|f| format!("; its deployment FAILED: {}", f.summary()))
                .unwrap_or_default();
            format!(
                "round {} until {}{failed}",
                o.rounds,
                o.window_ends.format("%H:%M:%S")
            )
        } else if let Some(a) = &w.attention {
            a.clone()
        } else if let Some(v) = &w.last_verdict {
            v.summary.clone()
        } else {
            String::new()
        };
        rows.push([
            w.name.clone(),
            w.state.as_str().to_string(),
            w.current_release.clone().unwrap_or_else(|| "-".into()),
            w.last_good_release.clone().unwrap_or_else(|| "-".into()),
            verdict,
            detail,
        ]);
    }
    let mut widths = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(&header.map(String::from));
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no watches configured)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_serialise_as_the_api_names() {
        let names: Vec<String> = WatchState::ALL
            .iter()
            .map(|s| serde_json::to_string(s).unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "\"idle\"",
                "\"observing\"",
                "\"rolling_back\"",
                "\"failed\"",
                "\"paused\""
            ]
        );
        for s in WatchState::ALL {
            assert_eq!(WatchState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn table_aligns_columns() {
        let board = StatusBoard::default();
        board.update("shop", |w| {
            w.state = WatchState::Failed;
            w.current_release = Some("Releases-2".into());
            w.attention = Some("rollback failed".into());
        });
        board.update("a", |_| {});
        let t = render_table(&board.snapshot());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("WATCH  STATE"));
        assert!(lines[2].contains("shop   failed  Releases-2"));
        assert!(lines[2].ends_with("rollback failed"));
    }
}
