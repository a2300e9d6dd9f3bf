//! The backtest as text: what was replayed, a table of deployments (oldest first) with the
//! reason under each, and the summary. Pure.

use std::fmt::Write;

use super::report::{ActionEntry, Entry, Report, Summary};

/// The report for a terminal.
pub fn text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "backtest of watch {} ({} {} in {}), {} to {}",
        r.watch,
        r.deployer,
        r.project,
        r.environment,
        r.from.format("%Y-%m-%d %H:%M:%S UTC"),
        r.to.format("%Y-%m-%d %H:%M:%S UTC"),
    );
    let replayed: Vec<String> = r
        .replayed_checks
        .iter()
        .map(|c| format!("{} ({})", c.name, c.kind))
        .collect();
    let _ = writeln!(out, "replayed: {}", replayed.join(", "));
    for s in &r.skipped_checks {
        let _ = writeln!(out, "skipped:  {} ({}): {}", s.name, s.kind, s.reason);
    }
    out.push('\n');
    if r.deployments.is_empty() {
        out.push_str(
            "no finished deployment of the watch's project to its environment in this range\n",
        );
        return out;
    }
    out.push_str(&table(&r.deployments));
    out.push('\n');
    out.push_str(&summary(&r.summary));
    out
}

fn table(entries: &[Entry]) -> String {
    let header = [
        "DEPLOYED (UTC)",
        "RELEASE",
        "DEPLOYMENT",
        "VERDICT",
        "AFTER",
        "ACTION",
    ];
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            let failed = if e.task_state == "Success" {
                String::new()
            } else {
                format!(" ({} deployment)", e.task_state.to_lowercase())
            };
            [
                e.deployed_at.format("%Y-%m-%d %H:%M:%S").to_string(),
                release(&e.release, e.version.as_deref()),
                format!("{}{failed}", e.deployment_id),
                e.verdict.as_str().to_string(),
                e.time_to_verdict_seconds
                    .map(seconds)
                    .unwrap_or_else(|| "-".into()),
                action(&e.action),
            ]
        })
        .collect();
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
                let _ = write!(s, "{c:<w$}  ", w = widths[i]);
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(&header.map(String::from));
    for (r, e) in rows.iter().zip(entries) {
        out.push_str(&line(r));
        let _ = writeln!(out, "    {}", e.summary);
    }
    out
}

/// `1.2.0 (Releases-3)`, or the id alone when the version is unknown.
fn release(id: &str, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("{v} ({id})"),
        None => id.to_string(),
    }
}

fn action(a: &ActionEntry) -> String {
    let target = || {
        release(
            a.target.as_deref().unwrap_or("?"),
            a.target_version.as_deref(),
        )
    };
    match a.kind.as_str() {
        "none" => "none".into(),
        "rollback" => format!("roll back to {}", target()),
        "retry" => format!("redeploy {}", target()),
        "command" => "run [watch.command]".into(),
        "human" => format!(
            "ask a human: {}",
            a.reason.as_deref().unwrap_or("no automatic action")
        ),
        other => other.to_string(),
    }
}

/// Whole seconds for people: `45s`, `11m 5s`.
fn seconds(s: f64) -> String {
    humantime::format_duration(std::time::Duration::from_secs(s.max(0.0).round() as u64))
        .to_string()
}

fn summary(s: &Summary) -> String {
    let plural =
        |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut counts = vec![
        format!("{} verified", s.verified),
        format!("{} condemned", s.condemned),
        format!("{} inconclusive", s.inconclusive),
    ];
    for (n, what) in [(s.superseded, "superseded"), (s.open, "still open")] {
        if n > 0 {
            counts.push(format!("{n} {what}"));
        }
    }
    let mut out = format!(
        "summary: would have rolled back {} of {} ({})\n",
        s.rolled_back,
        plural(s.deployments, "deployment", "deployments"),
        counts.join(", ")
    );
    let mut others = Vec::new();
    if s.retried > 0 {
        others.push(format!("redeployed {}", s.retried));
    }
    if s.command > 0 {
        others.push(format!("run [watch.command] for {}", s.command));
    }
    if s.left_to_human > 0 {
        others.push(format!("left {} to a human", s.left_to_human));
    }
    if !others.is_empty() {
        let _ = writeln!(out, "         would also have {}", others.join(", "));
    }
    let median = |v: Option<f64>| v.map(seconds).unwrap_or_else(|| "-".into());
    let _ = writeln!(
        out,
        "time to verdict: median {} (condemned: median {})",
        median(s.median_time_to_verdict_seconds),
        median(s.median_time_to_condemn_seconds)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_actions_read_plainly() {
        assert_eq!(seconds(45.4), "45s");
        assert_eq!(seconds(665.0), "11m 5s");
        let a = ActionEntry {
            kind: "rollback".into(),
            target: Some("Releases-2".into()),
            target_version: Some("1.1.0".into()),
            reason: None,
        };
        assert_eq!(action(&a), "roll back to 1.1.0 (Releases-2)");
        assert_eq!(action(&ActionEntry::none()), "none");
    }
}
