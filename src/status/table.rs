//! `backstop status` as a table: one row per watch summary, coloured on a terminal.

use chrono::{DateTime, Utc};

use super::{ObservationSummary, StatusDocument, WatchState};

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
fn progress(o: &ObservationSummary, now: DateTime<Utc>) -> String {
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
    use crate::model::{ObservationKind, Source};
    use crate::status::{FleetView, ObservationView, StatusBoard};

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
