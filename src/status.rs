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
    /// About how many judged rounds the window takes at the watch's cadences (fast for
    /// `fast_for`, then `interval`); confirming a failure adds fast rounds. For progress.
    #[serde(default)]
    pub planned_rounds: u64,
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
    /// In a fleet: the node holding the watch's lease (`None` when nobody does, or on a
    /// single node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
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
            owner: None,
        }
    }
}

/// The `GET /v1/status` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusDocument {
    pub watches: Vec<WatchStatus>,
    /// Present when the daemon runs in a fleet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetView>,
}

/// The fleet as this node last read it from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetView {
    /// This node's name.
    pub node: String,
    pub nodes: Vec<NodeView>,
    /// Watches configured on a live node that no node holds a live lease of.
    pub unowned: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub alive: bool,
    pub heartbeat_at: DateTime<Utc>,
    /// Watches whose live lease the node holds.
    pub owns: usize,
}

/// Shared, cheap-to-clone board of watch statuses. The lock is never held across `.await`.
#[derive(Clone, Default)]
pub struct StatusBoard(
    Arc<Mutex<BTreeMap<String, WatchStatus>>>,
    Arc<Mutex<Option<FleetView>>>,
);

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
            fleet: self.1.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        }
    }

    /// Replaces the fleet view (fleet mode only).
    pub fn set_fleet(&self, view: FleetView) {
        *self.1.lock().unwrap_or_else(|e| e.into_inner()) = Some(view);
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

/// Whether `backstop status` colours its output: only on a terminal (never in a pipe or a
/// file), and never when `NO_COLOR` is set to anything but the empty string (no-color.org).
pub fn colour_wanted(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The ANSI colour of a watch state; idle is plain. The state's text is always printed too:
/// colour only adds emphasis.
fn state_colour(s: WatchState) -> Option<&'static str> {
    match s {
        WatchState::Idle => None,
        WatchState::Observing => Some("36"),
        WatchState::RollingBack => Some("33"),
        WatchState::Failed => Some("1;31"),
        WatchState::Paused => Some("35"),
    }
}

/// The ANSI colour of a verdict.
fn verdict_colour(v: crate::judge::observation::VerdictKind) -> Option<&'static str> {
    use crate::judge::observation::VerdictKind as K;
    match v {
        K::Verified => Some("32"),
        K::Condemned => Some("31"),
        K::Inconclusive => Some("33"),
        K::Superseded => None,
    }
}

/// An observation's progress: `round 4 of ~26, 3m12s left (until 12:34:56)`, or how long
/// warmup still lasts.
fn progress(o: &ObservationView, now: DateTime<Utc>) -> String {
    let left = |until: DateTime<Utc>| {
        let secs = (until - now).num_seconds().max(0) as u64;
        humantime::format_duration(std::time::Duration::from_secs(secs))
            .to_string()
            .replace(' ', "")
    };
    if now < o.judging_from {
        return format!(
            "warming up, judging in {} (from {})",
            left(o.judging_from),
            o.judging_from.format("%H:%M:%S")
        );
    }
    let of = if o.planned_rounds > 0 {
        format!(" of ~{}", o.planned_rounds.max(o.rounds))
    } else {
        String::new()
    };
    format!(
        "round {}{of}, {} left (until {})",
        o.rounds,
        left(o.window_ends),
        o.window_ends.format("%H:%M:%S")
    )
}

/// Renders the status document as a table for `backstop status`: states and verdicts in
/// colour when `colour` (see [`colour_wanted`]), each observation's progress at `now`.
pub fn render_table(doc: &StatusDocument, now: DateTime<Utc>, colour: bool) -> String {
    // In a fleet, which node runs each watch.
    let fleet = doc.fleet.is_some();
    let mut header = vec![
        "WATCH",
        "STATE",
        "CURRENT",
        "LAST GOOD",
        "LAST VERDICT",
        "DETAIL",
    ];
    if fleet {
        header.insert(1, "OWNER");
    }
    let mut rows: Vec<(Vec<String>, Vec<Option<&str>>)> = Vec::new();
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
            format!("{}{failed}", progress(o, now))
        } else if let Some(a) = &w.attention {
            a.clone()
        } else if let Some(v) = &w.last_verdict {
            v.summary.clone()
        } else {
            String::new()
        };
        let mut paint = vec![
            None,
            state_colour(w.state),
            None,
            None,
            w.last_verdict
                .as_ref()
                .and_then(|v| verdict_colour(v.verdict)),
            None,
        ];
        let mut cells = vec![
            w.name.clone(),
            w.state.as_str().to_string(),
            w.current_release.clone().unwrap_or_else(|| "-".into()),
            w.last_good_release.clone().unwrap_or_else(|| "-".into()),
            verdict,
            detail,
        ];
        if fleet {
            // Nobody holding the lease is worth colour: nothing watches that service.
            let owner = w.owner.clone();
            paint.insert(1, owner.is_none().then_some("31"));
            cells.insert(1, owner.unwrap_or_else(|| "(none)".into()));
        }
        rows.push((cells, paint));
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for (r, _) in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    // Padded first, painted after: escape codes take no columns.
    let line = |cells: &[String], paint: &[Option<&str>]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let cell = if i + 1 == cells.len() {
                c.clone()
            } else {
                format!("{c:<w$}", w = widths[i])
            };
            let cell = match paint[i].filter(|_| colour) {
                Some(code) => {
                    let text = cell.trim_end();
                    let pad = &cell[text.len()..];
                    format!("\x1b[{code}m{text}\x1b[0m{pad}")
                }
                None => cell,
            };
            s.push_str(&cell);
            if i + 1 < cells.len() {
                s.push_str("  ");
            }
        }
        s.trim_end().to_string()
    };
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = line(&header, &vec![None; header.len()]);
    out.push('\n');
    for (r, paint) in &rows {
        out.push_str(&line(r, paint));
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
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        use std::ffi::OsStr;
        assert!(colour_wanted(true, None));
        assert!(
            colour_wanted(true, Some(OsStr::new(""))),
            "empty NO_COLOR is unset"
        );
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, None), "never in a pipe");
        assert!(!colour_wanted(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn states_are_coloured_beside_their_text_and_progress_is_shown() {
        let at = |secs: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::seconds(secs);
        let board = StatusBoard::default();
        board.update("shop", |w| {
            w.state = WatchState::Failed;
            w.attention = Some("rollback failed".into());
        });
        board.update("api", |w| {
            w.state = WatchState::Observing;
            w.observation = Some(ObservationView {
                id: "obs-1".into(),
                release: "R2".into(),
                version: None,
                deployment_id: None,
                kind: ObservationKind::Deployment,
                source: Source::Announce,
                deployed_at: at(0),
                judging_from: at(15),
                window_ends: at(615),
                rounds: 4,
                planned_rounds: 70,
                checks: Vec::new(),
                outcome: Default::default(),
                failure: None,
            });
        });
        let plain = render_table(&board.snapshot(), at(100), false);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert!(
            plain.contains("round 4 of ~70, 8m35s left (until 00:10:15)"),
            "{plain}"
        );
        let warming = render_table(&board.snapshot(), at(5), false);
        assert!(
            warming.contains("warming up, judging in 10s (from 00:00:15)"),
            "{warming}"
        );
        let coloured = render_table(&board.snapshot(), at(100), true);
        assert!(coloured.contains("\x1b[1;31mfailed\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[36mobserving\x1b[0m"), "{coloured}");
        // Escapes take no columns: stripped, the table is the plain one.
        let mut stripped = String::new();
        let mut chars = coloured.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                chars.by_ref().find(|d| *d == 'm');
            } else {
                stripped.push(c);
            }
        }
        assert_eq!(stripped, plain);
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
        let t = render_table(&board.snapshot(), Utc::now(), false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("WATCH  STATE"));
        assert!(lines[2].contains("shop   failed  Releases-2"));
        assert!(lines[2].ends_with("rollback failed"));
    }

    #[test]
    fn a_fleet_table_shows_each_watch_owner_and_flags_unowned_ones() {
        let board = StatusBoard::default();
        board.update("shop", |w| w.owner = Some("node-b".into()));
        board.update("cart", |_| {});
        assert!(!render_table(&board.snapshot(), Utc::now(), false).contains("OWNER"));
        board.set_fleet(FleetView {
            node: "node-a".into(),
            nodes: vec![],
            unowned: vec!["cart".into()],
        });
        let t = render_table(&board.snapshot(), Utc::now(), false);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("WATCH  OWNER   STATE"), "{t}");
        assert!(lines[1].starts_with("cart   (none)  idle"), "{t}");
        assert!(lines[2].starts_with("shop   node-b  idle"), "{t}");
        let coloured = render_table(&board.snapshot(), Utc::now(), true);
        assert!(coloured.contains("\x1b[31m(none)\x1b[0m"), "{coloured}");
    }
}
