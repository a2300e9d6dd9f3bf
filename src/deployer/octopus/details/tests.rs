//! The details parser on documents shaped like a real server's (`tests/data/`), on logs too
//! big to pass on, on unicode and escape sequences, and on garbage.

use serde_json::{json, Value};

use super::*;

fn data(name: &str) -> Value {
    let text = match name {
        "failed" => include_str!("../../../../tests/data/octopus-task-details-failed.json"),
        "timedout" => include_str!("../../../../tests/data/octopus-task-details-timedout.json"),
        "canceled" => include_str!("../../../../tests/data/octopus-task-details-canceled.json"),
        other => panic!("no document {other}"),
    };
    serde_json::from_str(text).expect("test document is JSON")
}

/// A details document with one root whose children are `steps`.
fn doc(state: &str, steps: Value) -> Value {
    json!({
        "Task": {"Id": "ServerTasks-7", "State": state, "ErrorMessage": "It broke."},
        "ActivityLogs": [{"Id": "ServerTasks-7_X", "Name": "Deploy shop", "Status": "Failed", "Children": steps, "LogElements": []}],
    })
}

fn lines(category: &str, texts: impl IntoIterator<Item = String>) -> Vec<Value> {
    texts
        .into_iter()
        .map(|t| json!({"Category": category, "MessageText": t, "OccurredAt": "2026-03-02T14:05:00.000+00:00"}))
        .collect()
}

fn within_bounds(f: &DeployFailure) {
    assert!(f.log_tail.len() <= MAX_LINES, "{} lines", f.log_tail.len());
    assert!(f.log_tail.iter().all(|l| l.len() <= MAX_LINE), "{f:?}");
    assert!(f.log_tail.join("\n").len() <= MAX_TAIL, "{f:?}");
}

#[test]
fn a_failed_step_names_the_step_the_machine_and_why() {
    let f = failure(&data("failed"));
    assert_eq!(f.task.as_deref(), Some("ServerTasks-58231"));
    assert_eq!(f.state.as_deref(), Some("Failed"));
    assert_eq!(
        f.error.as_deref(),
        Some("The deployment failed because one or more steps failed. Please see the deployment log for details.")
    );
    assert_eq!(f.step.as_deref(), Some("Deploy web"));
    assert_eq!(f.machine.as_deref(), Some("web-02"));
    // The failed target's lines, verbose noise left out, oldest first: every error and what
    // came before it, not web-01's log nor the other steps'.
    assert_eq!(
        f.log_tail,
        [
            "Extracting package to /var/www/shop/1.4.0",
            "Running deploy.sh",
            "npm WARN deprecated request@2.88.2",
            "Restarting shop.service",
            "Job for shop.service failed because the control process exited with error code.",
            "See \"systemctl status shop.service\" and \"journalctl -xeu shop.service\" for details.",
            "deploy.sh: shop.service did not become active within 30s",
            "The remote script failed with exit code 1",
            "The action Deploy web on web-02 failed",
        ]
    );
    assert_eq!(f.details_unavailable, None);
    assert_eq!(
        f.summary(),
        "step \"Deploy web\" failed on web-02: The deployment failed because one or more steps failed. Please see the deployment log for details."
    );
}

#[test]
fn a_task_that_timed_out_in_the_queue_has_no_step() {
    let f = failure(&data("timedout"));
    assert_eq!(f.task.as_deref(), Some("ServerTasks-58240"));
    assert_eq!(f.state.as_deref(), Some("TimedOut"));
    assert_eq!(
        f.error.as_deref(),
        Some("The task timed out before it could start.")
    );
    assert_eq!((f.step, f.machine), (None, None));
    assert!(f.log_tail.is_empty());
}

#[test]
fn a_canceled_task_names_where_it_was_when_canceled() {
    let f = failure(&data("canceled"));
    assert_eq!(f.state.as_deref(), Some("Canceled"));
    assert_eq!(f.error.as_deref(), Some("The task was canceled."));
    assert_eq!(f.step.as_deref(), Some("Deploy web"));
    assert_eq!(f.machine.as_deref(), Some("web-01"));
    assert_eq!(
        f.log_tail.last().map(String::as_str),
        Some("The operation was canceled.")
    );
    assert!(f.log_tail.contains(&"Running deploy.sh".to_string()));
}

#[test]
fn a_failed_step_prefers_a_failed_target_over_a_canceled_one() {
    let steps = json!([{
        "Name": "Step 1: Deploy web", "Status": "Failed",
        "Children": [
            {"Name": "web-01", "Status": "Canceled", "LogElements": lines("Error", ["stopped".into()])},
            {"Name": "web-02", "Status": "Failed", "LogElements": lines("Error", ["disk full".into()])},
        ],
    }]);
    let f = failure(&doc("Failed", steps));
    assert_eq!(f.machine.as_deref(), Some("web-02"));
    assert_eq!(f.log_tail, ["disk full"]);
}

#[test]
fn a_failure_without_a_target_reads_the_step_then_the_task() {
    // A step that failed before it reached a target ("Acquire packages" has no "Step N:").
    let steps = json!([{
        "Name": "Acquire packages", "Status": "Failed", "Children": [],
        "LogElements": lines("Fatal", ["Package shop-web 9.9.9 was not found in the feed".into()]),
    }]);
    let f = failure(&doc("Failed", steps));
    assert_eq!(f.step.as_deref(), Some("Acquire packages"));
    assert_eq!(f.machine, None);
    assert_eq!(
        f.log_tail,
        ["Package shop-web 9.9.9 was not found in the feed"]
    );

    // Only the task's own node broke (no step started): its lines are the account.
    let mut d = doc(
        "Failed",
        json!([{"Name": "Step 1: Deploy web", "Status": "Pending"}]),
    );
    d["ActivityLogs"][0]["LogElements"] = json!(lines(
        "Fatal",
        ["The deployment failed because no target was healthy".into()]
    ));
    let f = failure(&d);
    assert_eq!((f.step.as_deref(), f.machine.as_deref()), (None, None));
    assert_eq!(
        f.log_tail,
        ["The deployment failed because no target was healthy"]
    );
}

#[test]
fn child_steps_name_the_child_step_and_its_target() {
    let child = |name: &str, children: Value| json!({"Name": name, "Status": "Failed", "Children": children, "LogElements": []});
    let target = json!([{"Name": "web-03", "Status": "Failed", "LogElements": lines("Error", ["boom".into()])}]);
    for steps in [
        json!([child(
            "Step 2: Rolling deploy",
            json!([child("Step 2.1: Deploy web", target.clone())])
        )]),
        json!([child(
            "Step 2: Rolling deploy",
            json!([{"Name": "web-03", "Status": "Failed",
            "Children": [child("Step 2.1: Deploy web", json!([]))], "LogElements": lines("Error", ["boom".into()])}])
        )]),
    ] {
        let f = failure(&doc("Failed", steps));
        assert_eq!(f.step.as_deref(), Some("Deploy web"));
        assert_eq!(f.machine.as_deref(), Some("web-03"));
        assert_eq!(f.log_tail, ["boom"]);
    }
}

#[test]
fn a_huge_log_is_bounded_and_keeps_the_errors() {
    let mut log = lines(
        "Info",
        (0..50_000).map(|i| format!("copying file {i}: {}", "x".repeat(900))),
    );
    log.insert(10_000, lines("Error", ["an early error".into()]).remove(0));
    log.extend(lines(
        "Error",
        (0..5).map(|i| format!("stack frame {i} {}", "y".repeat(2000))),
    ));
    log.extend(lines("Info", ["cleaning up".to_string()]));
    let steps = json!([{"Name": "Step 1: Deploy web", "Status": "Failed",
        "Children": [{"Name": "web-01", "Status": "Failed", "LogElements": log}]}]);
    let f = failure(&doc("Failed", steps));
    within_bounds(&f);
    // Six error lines, each with the line before it where room allows; the oldest dropped
    // first when the bytes run out, so the final errors always survive.
    assert!(
        f.log_tail.last().unwrap().starts_with("stack frame 4 "),
        "{f:?}"
    );
    assert!(f.log_tail.iter().all(|l| !l.starts_with("cleaning up")));
    assert!(f.log_tail.iter().all(|l| l.len() <= MAX_LINE));

    // Fewer, shorter lines: every error, and the lines before them.
    let mut log = lines("Info", (0..1000).map(|i| format!("line {i}")));
    log[500] = lines("Error", ["first error".into()]).remove(0);
    log[900] = lines("Fatal", ["last error".into()]).remove(0);
    let steps = json!([{"Name": "Step 1: Deploy web", "Status": "Failed",
        "Children": [{"Name": "web-01", "Status": "Failed", "LogElements": log}]}]);
    let f = failure(&doc("Failed", steps));
    within_bounds(&f);
    assert_eq!(f.log_tail.len(), MAX_LINES);
    let at = |s: &str| {
        f.log_tail
            .iter()
            .position(|l| l == s)
            .unwrap_or_else(|| panic!("{s} missing from {f:?}"))
    };
    assert!(at("line 491") < at("first error"));
    assert!(at("first error") < at("line 891"));
    assert_eq!(f.log_tail.last().map(String::as_str), Some("last error"));

    // No error line at all: the last lines.
    let steps = json!([{"Name": "Step 1: Deploy web", "Status": "Failed",
        "Children": [{"Name": "web-01", "Status": "Failed", "LogElements": lines("Info", (0..100).map(|i| format!("line {i}")))}]}]);
    let f = failure(&doc("Failed", steps));
    assert_eq!(f.log_tail.first().map(String::as_str), Some("line 80"));
    assert_eq!(f.log_tail.last().map(String::as_str), Some("line 99"));
}

#[test]
fn unicode_and_terminal_escapes_are_kept_readable_and_cut_on_characters() {
    let long = "ä".repeat(1000);
    let steps = json!([{"Name": "Step 3: Déployer le site 🚀", "Status": "Failed",
    "Children": [{"Name": "серверная-02", "Status": "Failed", "LogElements": lines("Error", [
        "\u{1b}[31mÜberprüfung fehlgeschlagen:\u{1b}[0m Datei „config.json“ fehlt 🚫".to_string(),
        "配置文件缺失\tcode=2\r".to_string(),
        long,
        "two\nlines".to_string(),
    ])}]}]);
    let mut d = doc("Failed", steps);
    d["Task"]["ErrorMessage"] = json!("Échec\u{7}\nde la tâche");
    let f = failure(&d);
    within_bounds(&f);
    assert_eq!(f.step.as_deref(), Some("Déployer le site 🚀"));
    assert_eq!(f.machine.as_deref(), Some("серверная-02"));
    assert_eq!(f.error.as_deref(), Some("Échec  de la tâche"));
    assert_eq!(
        f.log_tail[0],
        "Überprüfung fehlgeschlagen: Datei „config.json“ fehlt 🚫"
    );
    assert_eq!(f.log_tail[1], "配置文件缺失 code=2");
    assert!(f.log_tail[2].ends_with("...") && f.log_tail[2].starts_with("ää"));
    assert_eq!(&f.log_tail[3..], ["two", "lines"]);
}

#[test]
fn garbage_never_panics_and_keeps_what_it_can() {
    for v in [
        json!(null),
        json!([]),
        json!("ServerTasks-1"),
        json!(42),
        json!({}),
        json!({"Task": 5, "ActivityLogs": {"a": 1}}),
        json!({"Task": {"Id": 5, "State": ["Failed"]}, "ActivityLogs": [7, null, "x"]}),
        json!({"ActivityLogs": [{"Status": "Failed", "Children": "none", "LogElements": 3}]}),
        json!({"ActivityLogs": [{"Status": "Failed", "Children": [{"Status": "Failed", "Name": 7,
            "Children": [null, {"Status": 1}], "LogElements": [5, {"MessageText": ["x"]}, {"Category": 3, "MessageText": "kept"}]}]}]}),
    ] {
        let f = failure(&v);
        within_bounds(&f);
        assert_eq!(f.details_unavailable, None);
        if let Some(step) = &f.step {
            assert!(!step.is_empty());
        }
    }
    let f = failure(
        &json!({"ActivityLogs": [{"Status": "Failed", "Children": [{"Status": "Failed", "Name": 7,
        "LogElements": [5, {"MessageText": ["x"]}, {"Category": 3, "MessageText": "kept"}]}]}]}),
    );
    assert_eq!((f.step, f.log_tail), (None, vec!["kept".to_string()]));
    // Names that are empty once cleaned name nothing.
    let steps = json!([{"Name": "Step 2: \u{1b}[0m", "Status": "Failed",
        "Children": [{"Name": " \t ", "Status": "Failed", "LogElements": lines("Error", ["x".into()])}]}]);
    let f = failure(&doc("Failed", steps));
    assert_eq!(
        (f.step, f.machine, f.log_tail),
        (None, None, vec!["x".to_string()])
    );
    // The id of the resource stands in for a missing task, if it is a task's.
    let f = failure(&json!({"Id": "ServerTasks-9", "Task": null}));
    assert_eq!(f.task.as_deref(), Some("ServerTasks-9"));
    assert_eq!(failure(&json!({"Id": "Deployments-9"})).task, None);

    // Nesting deeper than any real log, and a tree with thousands of broken nodes.
    let mut deep = json!({"Name": "bottom", "Status": "Failed", "LogElements": lines("Error", ["deep".into()])});
    for i in 0..100 {
        deep = json!({"Name": format!("n{i}"), "Status": "Failed", "Children": [deep]});
    }
    let f = failure(&doc("Failed", json!([deep])));
    within_bounds(&f);
    let wide: Vec<Value> = (0..5000)
        .map(|i| json!({"Name": format!("web-{i}"), "Status": "Failed", "LogElements": lines("Error", [format!("e{i}")])}))
        .collect();
    let f = failure(&doc(
        "Failed",
        json!([{"Name": "Step 1: x", "Status": "Failed", "Children": wide}]),
    ));
    assert_eq!(
        (f.machine.as_deref(), f.log_tail.as_slice()),
        (Some("web-0"), &["e0".to_string()][..])
    );
}

#[test]
fn step_labels_are_recognised_only_in_octopus_form() {
    assert_eq!(step_label("Step 2: Deploy web"), Some("Deploy web"));
    assert_eq!(step_label("Step 2.1: Child"), Some("Child"));
    assert_eq!(step_label("Step 10: Step 3: odd"), Some("Step 3: odd"));
    for name in [
        "web-02",
        "Step: x",
        "Step x: y",
        "Step 2 Deploy",
        "Step .1: x",
        "Acquire packages",
        "",
    ] {
        assert_eq!(step_label(name), None, "{name}");
    }
}

#[test]
fn octopus_account_is_completed_with_what_the_caller_knew() {
    let known = DeployFailure {
        task: Some("ServerTasks-58231".into()),
        state: Some("Failed".into()),
        error: Some("deploy.sh exited 1 (from the pipeline)".into()),
        details_unavailable: Some("an earlier attempt timed out".into()),
        ..DeployFailure::default()
    };
    // Octopus knows better where it says something, and the details are there now.
    let merged = failure(&data("failed")).or_known(known.clone());
    assert_eq!(merged.step.as_deref(), Some("Deploy web"));
    assert!(merged.error.unwrap().starts_with("The deployment failed"));
    assert_eq!(merged.details_unavailable, None);
    // Where it says nothing, the caller's account stands.
    let merged = failure(&json!({"Task": {"State": "Canceled"}})).or_known(known);
    assert_eq!(merged.task.as_deref(), Some("ServerTasks-58231"));
    assert_eq!(merged.state.as_deref(), Some("Canceled"));
    assert_eq!(
        merged.error.as_deref(),
        Some("deploy.sh exited 1 (from the pipeline)")
    );
}
