//! Octopus's own account of a failed deployment, read from its task's details: pure, a
//! `TaskDetailsResource` (`GET /api/{space}/tasks/{id}/details`) in, a bounded
//! [`DeployFailure`] out.
//!
//! The task (`Task`: `State`, `ErrorMessage`) says how it ended. Where and why is in the log,
//! a tree of `ActivityLogTreeNode`s under `ActivityLogs`: one root per task ("Deploy shop
//! release 1.2.0 to Production") whose children are the deployment's steps ("Acquire
//! packages", "Step 2: Deploy web"), whose children are the targets each step ran on, named by
//! the machine ("web-02"; "Octopus Server" for a step run on the server). Octopus marks the
//! path down to a failure `Failed` (a cancellation `Canceled`), and the failed target's `Error`
//! and `Fatal` `LogElements` say why. A captured document of a real server (2024) has exactly
//! this shape: DataDog/integrations-core,
//! `octopus_deploy/tests/fixtures/GET/api/Spaces-1/tasks/ServerTasks-1847/details/response.json`.
//!
//! The document comes from outside, so every field may be absent, null or of the wrong type;
//! such a field counts as absent and the rest is still read. What is passed on is cleaned of
//! terminal escapes and control characters and bounded ([`DeployFailure::MAX_LOG_LINES`] and
//! the like), because it ends up in notifications and deployment comments. Octopus masks
//! sensitive variables in task logs itself; nothing here can add a secret of backstop's.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::model::DeployFailure;
use crate::text::{clean_line, last_lines, truncate};

const MAX_LINES: usize = DeployFailure::MAX_LOG_LINES;
const MAX_LINE: usize = DeployFailure::MAX_LOG_LINE;
const MAX_TAIL: usize = DeployFailure::MAX_LOG_BYTES;
/// Longest task error, step or machine name kept, in bytes.
const MAX_TEXT: usize = 1024;
/// Longest task id or state kept: real ones are a few bytes.
const MAX_NAME: usize = 100;
/// How deep the tree is followed. Real trees are three or four levels deep (task, step,
/// target, sometimes a child step); the bound keeps a hostile document from costing more.
const MAX_DEPTH: usize = 16;

/// How an activity ended, for the two statuses that mark where a task broke. The other
/// `ActivityStatus` values (Pending, Running, Success, Skipped, SuccessWithWarning) mark
/// activities that did not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broke {
    Failed,
    Canceled,
}

fn broke(node: &Value) -> Option<Broke> {
    match node.get("Status").and_then(Value::as_str) {
        Some("Failed") => Some(Broke::Failed),
        Some("Canceled") => Some(Broke::Canceled),
        _ => None,
    }
}

/// The failure a task details document describes. A document without a failed activity still
/// gives the task's id, state and error; one that is not a document at all gives nothing.
pub fn failure(doc: &Value) -> DeployFailure {
    let task = doc.get("Task");
    let mut f = DeployFailure {
        task: text(task, "Id")
            .or_else(|| text(Some(doc), "Id").filter(|id| id.starts_with("ServerTasks-")))
            .map(|id| one_line(&id, MAX_NAME)),
        state: text(task, "State").map(|s| one_line(&s, MAX_NAME)),
        error: text(task, "ErrorMessage").map(|e| one_line(&e, MAX_TEXT)),
        ..DeployFailure::default()
    };
    let Some(path) = broken_path(doc) else {
        return f;
    };
    // path[0] is the task's root; below it, the step, then (usually) the target.
    let step_at = path
        .iter()
        .rposition(|n| step_label(name(n)).is_some())
        .unwrap_or(1)
        .max(1);
    f.step = path
        .get(step_at)
        .map(|n| name(n))
        .map(|n| one_line(step_label(n).unwrap_or(n), MAX_TEXT))
        .filter(|n| !n.is_empty());
    // The target: the first activity below the step that is not itself a (child) step.
    let target_at = (2..path.len()).find(|&i| step_label(name(path[i])).is_none());
    f.machine = target_at
        .map(|i| one_line(name(path[i]), MAX_TEXT))
        .filter(|n| !n.is_empty());
    // Why it broke: the target's log and its broken descendants', else the step's, else the
    // task's own ("The deployment failed because ...").
    let subject = target_at.unwrap_or(path.len() - 1);
    for node in path[..=subject].iter().rev() {
        let mut lines = Vec::new();
        collect(node, 0, &mut lines);
        if !lines.is_empty() {
            f.log_tail = tail(&lines);
            break;
        }
    }
    f
}

/// The activities from a root down to where the task broke: at each level the first child
/// that failed, else the first that was canceled. `None` when no root broke.
fn broken_path(doc: &Value) -> Option<Vec<&Value>> {
    let roots = array(doc, "ActivityLogs");
    let root = roots
        .iter()
        .find(|r| broke(r).is_some())
        .or_else(|| roots.iter().find(|r| broken_child(r).is_some()))?;
    let mut path = vec![root];
    while path.len() < MAX_DEPTH {
        match path.last().and_then(|n| broken_child(n)) {
            Some(child) => path.push(child),
            None => break,
        }
    }
    Some(path)
}

fn broken_child(node: &Value) -> Option<&Value> {
    let children = array(node, "Children");
    [Broke::Failed, Broke::Canceled]
        .into_iter()
        .find_map(|want| children.iter().find(|c| broke(c) == Some(want)))
}

/// A step's name without Octopus's "Step 2: " (or a child step's "Step 2.1: ") label; `None`
/// for a name without it, such as a target's.
fn step_label(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("Step ")?;
    let (number, name) = rest.split_once(": ")?;
    let numbered = !number.is_empty()
        && number.starts_with(|c: char| c.is_ascii_digit())
        && number.chars().all(|c| c.is_ascii_digit() || c == '.');
    numbered.then_some(name)
}

/// One log line as the document has it: whether it reports an error, and its text (cleaned
/// only if kept).
type Line<'a> = (bool, &'a str);

/// The log lines of `node` and of its broken descendants, in document order. Trace and
/// Verbose lines are noise here, Gap entries mark lines the server left out.
fn collect<'a>(node: &'a Value, depth: usize, out: &mut Vec<Line<'a>>) {
    for element in array(node, "LogElements") {
        let category = element.get("Category").and_then(Value::as_str);
        if matches!(category, Some("Trace" | "Verbose" | "Gap")) {
            continue;
        }
        let error = matches!(category, Some("Error" | "Fatal"));
        let message = element
            .get("MessageText")
            .and_then(Value::as_str)
            .unwrap_or_default();
        for line in message.lines().filter(|l| !l.trim().is_empty()) {
            out.push((error, line));
        }
    }
    if depth + 1 >= MAX_DEPTH {
        return;
    }
    for child in array(node, "Children")
        .iter()
        .filter(|c| broke(c).is_some())
    {
        collect(child, depth + 1, out);
    }
}

/// At most [`MAX_LINES`] lines, oldest first: every error line (the newest when there are
/// more), then the lines just before each error, which usually say what was being done; with
/// no error line, simply the last lines. Each is cut to [`MAX_LINE`] bytes and the oldest are
/// dropped until the whole fits [`MAX_TAIL`].
fn tail(lines: &[Line]) -> Vec<String> {
    let errors: Vec<usize> = (0..lines.len())
        .rev()
        .filter(|&i| lines[i].0)
        .take(MAX_LINES)
        .collect();
    let mut keep: BTreeSet<usize> = errors.iter().copied().collect();
    if errors.is_empty() {
        keep.extend(lines.len().saturating_sub(MAX_LINES)..lines.len());
    }
    // Context, one line further back per round, newest error first.
    let mut back = 1;
    while keep.len() < MAX_LINES && errors.iter().any(|&e| e >= back) {
        for &e in &errors {
            if keep.len() == MAX_LINES {
                break;
            }
            if let Some(i) = e.checked_sub(back) {
                keep.insert(i);
            }
        }
        back += 1;
    }
    let kept = keep
        .into_iter()
        .map(|i| clean_line(lines[i].1))
        .filter(|l| !l.is_empty())
        .collect();
    last_lines(kept, MAX_LINES, MAX_LINE, MAX_TAIL)
}

fn one_line(text: &str, max: usize) -> String {
    truncate(&clean_line(text), max)
}

/// A non-blank string field.
fn text(v: Option<&Value>, key: &str) -> Option<String> {
    v?.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().to_string())
}

fn name(node: &Value) -> &str {
    node.get("Name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim()
}

/// An array field, empty when absent or not an array.
fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests;
