//! `GET /tasks/{id}/details`: a task's `TaskDetailsResource`, its activity log shaped as a real
//! server's (every Swagger property of `ActivityLogTreeNode` and `ActivityLogEntry`, plus the
//! `Number` real servers add to each line).
//!
//! The log is a tree: one root named after the task ("Deploy Projects-1 release 1.2.0 to
//! Environments-1"), its children the deployment's steps ("Acquire packages", then
//! "Step 1: Deploy web" on web-01 and web-02, "Step 2: Smoke test" on the Octopus Server), a
//! step's children the machines it ran on. A task that failed marks its step and machine
//! `Failed` (`Canceled` when canceled), the machine holding the lines its [`TaskFailure`]
//! logged and Octopus's closing line, the step and root Octopus's summary lines; later steps
//! are `Skipped`. A step the failure names outside this process is added to it.
//!
//! The query is honoured as a server does: `verbose=true` keeps `Verbose` lines (left out
//! otherwise), `tail=N` keeps each activity's last N lines.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::model::{Task, TaskFailure};

/// The deployment process every fake project has: steps and the machines each runs on.
const PROCESS: [(&str, &[&str]); 2] = [
    ("Deploy web", &["web-01", "web-02"]),
    ("Smoke test", &["Octopus Server"]),
];

/// What the caller asked for: `verbose` and `tail`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct LogQuery {
    pub(super) verbose: bool,
    pub(super) tail: Option<usize>,
}

/// Builds nodes, numbering lines as a server does and applying the query.
struct Log<'a> {
    task: &'a Task,
    query: LogQuery,
    number: u64,
    size: usize,
}

impl Log<'_> {
    fn lines(&mut self, lines: &[(&str, String)]) -> Vec<Value> {
        let at = rfc3339(self.task.started.unwrap_or(self.task.queued));
        let mut out: Vec<Value> = vec![];
        for (category, text) in lines {
            self.number += 1;
            self.size += text.len() + 40;
            if *category == "Verbose" && !self.query.verbose {
                continue;
            }
            out.push(json!({
                "Category": category, "Detail": null, "MessageText": text,
                "OccurredAt": at, "Number": self.number,
            }));
        }
        if let Some(n) = self.query.tail {
            out.drain(..out.len().saturating_sub(n));
        }
        out
    }

    fn node(
        &mut self,
        id: String,
        name: &str,
        status: &str,
        children: Vec<Value>,
        lines: &[(&str, String)],
    ) -> Value {
        let t = self.task;
        let (started, ended) = match status {
            "Pending" | "Skipped" => (None, None),
            "Running" => (t.started, None),
            _ => (t.started, t.completed),
        };
        let done = !matches!(status, "Pending" | "Running");
        json!({
            "Id": id, "Name": name, "Started": started.map(rfc3339), "Ended": ended.map(rfc3339),
            "Status": status, "ShowAtSummaryLevel": true,
            "ProgressPercentage": if done { 100 } else { 0 }, "ProgressMessage": null,
            "Children": children, "LogElements": self.lines(lines),
        })
    }
}

/// How far a task got, for its log: where it broke and how that shows.
struct Outcome {
    /// Status of the activities that broke: Failed or Canceled.
    broke: &'static str,
    failure: TaskFailure,
}

impl Task {
    /// The `TaskDetailsResource` of this task, as a GET with `query` shows it.
    pub(super) fn render_details(&self, query: LogQuery) -> Value {
        let mut log = Log {
            task: self,
            query,
            number: 0,
            size: 0,
        };
        let root = self.render_root(&mut log);
        let id = &self.id;
        let progress = match self.state {
            "Queued" => 0,
            "Executing" | "Cancelling" => 50,
            _ => 100,
        };
        json!({
            "Task": self.render(), "ActivityLogs": [root], "PhysicalLogSize": log.size,
            "Progress": {"ProgressPercentage": progress, "EstimatedTimeRemaining": if progress == 50 { json!("1 minute") } else { Value::Null }},
            "Id": null, "LastModifiedOn": null, "LastModifiedBy": null,
            "Links": {
                "Self": format!("/api/tasks/{id}/details"), "Task": format!("/api/tasks/{id}"),
                "Web": format!("/app#/{}/tasks/{id}", self.space), "Raw": format!("/api/tasks/{id}/raw"),
            },
        })
    }

    fn render_root(&self, log: &mut Log<'_>) -> Value {
        let root_id = format!("{}_{:010X}", self.id, fnv(&self.id));
        let outcome = self.failure().map(|failure| Outcome {
            broke: if failure.state == "Canceled" {
                "Canceled"
            } else {
                "Failed"
            },
            failure,
        });
        let started = self.started.is_some();
        let mut steps: Vec<(String, Vec<String>)> = PROCESS
            .iter()
            .map(|(s, ms)| (s.to_string(), ms.iter().map(|m| m.to_string()).collect()))
            .collect();
        if let Some(f) = outcome.as_ref().map(|o| &o.failure) {
            if let Some(step) = &f.step {
                let machine = f.machine.clone().unwrap_or("Octopus Server".into());
                match steps.iter_mut().find(|(s, _)| s == step) {
                    Some((_, ms)) if !ms.contains(&machine) => ms.push(machine),
                    Some(_) => {}
                    None => steps.push((step.clone(), vec![machine])),
                }
            }
        }
        // Where it broke, if a step did: its index in `steps`.
        let broke_at = outcome
            .as_ref()
            .and_then(|o| o.failure.step.as_ref())
            .and_then(|step| steps.iter().position(|(s, _)| s == step));
        let running = matches!(self.state, "Executing" | "Cancelling");
        let mut children = vec![self.acquire(log, &root_id, started)];
        for (i, (step, machines)) in steps.iter().enumerate() {
            let id = format!("{root_id}/{:08x}", fnv(step));
            let name = format!("Step {}: {step}", i + 1);
            let status = match (&outcome, broke_at) {
                _ if !started => "Pending",
                (None, _) if self.state == "Success" => "Success",
                (None, _) if running && i == 0 => "Running",
                (None, _) => "Pending",
                (Some(_), Some(b)) if i < b => "Success",
                (Some(o), Some(b)) if i == b => o.broke,
                (Some(o), Some(_)) if o.broke == "Canceled" => "Canceled",
                (Some(_), _) => "Skipped",
            };
            let broken = outcome.as_ref().filter(|_| broke_at == Some(i));
            children.push(self.step(log, id, &name, status, machines, broken));
        }
        let (status, lines) = match &outcome {
            None if !started => ("Pending", vec![]),
            None if running => ("Running", vec![]),
            None => (
                "Success",
                vec![("Info", "The deployment completed successfully.".to_string())],
            ),
            Some(o) if o.failure.step.is_none() && !started => ("Pending", vec![]),
            Some(o) if o.broke == "Canceled" => (
                "Canceled",
                vec![("Error", "The task was canceled.".to_string())],
            ),
            Some(o) => ("Failed", vec![("Fatal", o.failure.error.clone())]),
        };
        log.node(root_id, &self.description, status, children, &lines)
    }

    fn acquire(&self, log: &mut Log<'_>, root_id: &str, started: bool) -> Value {
        let status = if started { "Success" } else { "Pending" };
        let id = format!("{root_id}/{:08x}", fnv("Acquire packages"));
        let machines = ["web-01", "web-02"]
            .iter()
            .map(|m| {
                let lines = [(
                    "Info",
                    "Package shop-web found in cache. No need to upload it.".to_string(),
                )];
                log.node(
                    format!("{id}/{m}"),
                    m,
                    status,
                    vec![],
                    if started { &lines[..] } else { &[] },
                )
            })
            .collect();
        let lines = [
            ("Info", "Acquiring packages".to_string()),
            ("Info", "All packages have been acquired".to_string()),
        ];
        log.node(
            id,
            "Acquire packages",
            status,
            machines,
            if started { &lines[..] } else { &[] },
        )
    }

    fn step(
        &self,
        log: &mut Log<'_>,
        id: String,
        name: &str,
        status: &str,
        machines: &[String],
        broken: Option<&Outcome>,
    ) -> Value {
        let step = name.split_once(": ").map_or(name, |(_, s)| s);
        let ran = !matches!(status, "Pending" | "Skipped");
        let mut children = vec![];
        for m in machines.iter().filter(|_| ran) {
            let (status, lines) = match broken {
                Some(o) if o.failure.machine.as_deref() == Some(m) => {
                    let mut lines = o.failure.log.clone();
                    if o.broke == "Failed" {
                        lines.push(("Fatal", format!("The action {step} on {m} failed")));
                    }
                    (o.broke, lines)
                }
                _ => (
                    if status == "Running" {
                        "Running"
                    } else {
                        "Success"
                    },
                    vec![
                        ("Verbose", "Tentacle version 8.1.2201".to_string()),
                        ("Info", format!("{step} on {m}")),
                    ],
                ),
            };
            children.push(log.node(format!("{id}/{m}"), m, status, vec![], &lines));
        }
        let lines = match broken {
            Some(o) if o.broke == "Failed" => {
                let why = o
                    .failure
                    .log
                    .iter()
                    .rev()
                    .find(|(c, _)| matches!(*c, "Error" | "Fatal"))
                    .map_or("The step failed", |(_, t)| t.as_str());
                let machine = o.failure.machine.as_deref().unwrap_or("Octopus Server");
                vec![(
                    "Fatal",
                    format!(
                        "The step failed: Activity {step} on {machine} failed with error '{why}'."
                    ),
                )]
            }
            Some(_) => vec![("Error", "The step was canceled.".to_string())],
            None => vec![],
        };
        log.node(id, name, status, children, &lines)
    }
}

/// A stable hex-ish id part, as real node ids have (`ServerTasks-1847_093204AA234/...`).
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    }) & 0xff_ffff_ffff
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}
