//! Task details in the fake Octopus (`GET /tasks/{id}/details`): the `TaskDetailsResource`
//! shape of the Swagger document for tasks in every state, the failures tests can script
//! (next deployments, a release's, one task now) and how they show, and the `verbose`/`tail`
//! query. The documents checked in under `tests/data/` are held to the same shape, and
//! backstop's own parser reads the fake's documents as it reads those.

use backstop::deployer::octopus::details::failure;
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::octopus::{FakeOctopus, TaskFailure, TASK_STATES};
use crate::http::{get, ids, octopus_with_release, post, redeploy};
use crate::swagger::{assert_shape, TASK_NON_NULL};

const DETAILS_NON_NULL: &[&str] = &[
    "Task",
    "ActivityLogs",
    "PhysicalLogSize",
    "Progress",
    "Links",
];
const NODE_NON_NULL: &[&str] = &[
    "Id",
    "Name",
    "Status",
    "ShowAtSummaryLevel",
    "Children",
    "LogElements",
];
const LINE_NON_NULL: &[&str] = &["Category", "MessageText", "OccurredAt"];

/// Asserts a details document has the Swagger shape all the way down, every activity and line.
fn assert_details_shape(doc: &Value) {
    assert_shape("TaskDetailsResource", doc, DETAILS_NON_NULL);
    assert_shape("TaskResource", &doc["Task"], TASK_NON_NULL);
    let mut nodes: Vec<&Value> = doc["ActivityLogs"].as_array().unwrap().iter().collect();
    assert!(!nodes.is_empty(), "no activity log in {doc:#}");
    while let Some(node) = nodes.pop() {
        assert_shape("ActivityLogTreeNode", node, NODE_NON_NULL);
        for line in node["LogElements"].as_array().unwrap() {
            assert_shape("ActivityLogEntry", line, LINE_NON_NULL);
        }
        nodes.extend(node["Children"].as_array().unwrap());
    }
}

async fn details(o: &FakeOctopus, task: &str, query: &str) -> Value {
    let (status, doc) = get(o, &format!("/api/Spaces-1/tasks/{task}/details{query}")).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

fn task_of(o: &FakeOctopus, deployment: &str) -> String {
    let d = o
        .deployments()
        .into_iter()
        .find(|d| d["Id"] == deployment)
        .unwrap();
    d["TaskId"].as_str().unwrap().to_owned()
}

#[test]
fn checked_in_documents_have_the_swagger_shape() {
    for name in ["failed", "timedout", "canceled"] {
        let path = format!(
            "{}/tests/data/octopus-task-details-{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_details_shape(&doc);
    }
}

#[tokio::test]
async fn details_of_tasks_in_every_state_have_the_swagger_shape() {
    let (o, release) = octopus_with_release().await;
    for state in TASK_STATES {
        let d = o.add_deployment("Projects-1", "Environments-1", &release, state);
        let task = task_of(&o, &d);
        for query in ["", "?verbose=true", "?verbose=false&tail=1", "?tail=0"] {
            let doc = details(&o, &task, query).await;
            assert_details_shape(&doc);
            assert_eq!(doc["Task"]["State"], state, "{doc:#}");
        }
        let (status, _) = get(&o, &format!("/api/tasks/{task}/details")).await;
        assert_eq!(status, StatusCode::OK, "unscoped twin");
    }
    let (status, body) = get(&o, "/api/Spaces-1/tasks/ServerTasks-999/details").await;
    assert_eq!(
        (status, body["ErrorMessage"].is_string()),
        (StatusCode::NOT_FOUND, true)
    );
    let (status, _) = get(&o, "/api/Spaces-1/tasks/ServerTasks-101/details?tail=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_scripted_failure_shows_as_a_real_servers_log() {
    let (o, release) = octopus_with_release().await;
    let script = TaskFailure::failed("Deploy web", "web-02")
        .with_error("The deployment failed because one or more steps failed.")
        .with_log(&[
            ("Info", "Running deploy.sh"),
            ("Verbose", "exporting PATH"),
            ("Error", "Job for shop.service failed"),
        ]);
    o.fail_next_deployments(1, script);
    let (_, _, created) = post(&o, redeploy(&release)).await;
    let task = created["TaskId"].as_str().unwrap().to_owned();
    let path = format!("/api/tasks/{task}");
    let mut states = vec![];
    for _ in 0..3 {
        states.push(get(&o, &path).await.1["State"].as_str().unwrap().to_owned());
    }
    assert_eq!(states, ["Queued", "Executing", "Failed"]);

    let doc = details(&o, &task, "?verbose=true").await;
    assert_details_shape(&doc);
    assert_eq!(
        doc["Task"]["ErrorMessage"],
        "The deployment failed because one or more steps failed."
    );
    let root = &doc["ActivityLogs"][0];
    assert_eq!(root["Status"], "Failed");
    let names: Vec<&str> = root["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Acquire packages",
            "Step 1: Deploy web",
            "Step 2: Smoke test"
        ]
    );
    let step = &root["Children"][1];
    assert_eq!(step["Status"], "Failed");
    assert_eq!(root["Children"][2]["Status"], "Skipped");
    let machines: Vec<(&str, &str)> = step["Children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap(), m["Status"].as_str().unwrap()))
        .collect();
    assert_eq!(machines, [("web-01", "Success"), ("web-02", "Failed")]);

    // backstop's parser reads it as it reads a real server's.
    let f = failure(&details(&o, &task, "?verbose=false&tail=50").await);
    assert_eq!(f.task.as_deref(), Some(task.as_str()));
    assert_eq!(f.state.as_deref(), Some("Failed"));
    assert_eq!(f.step.as_deref(), Some("Deploy web"));
    assert_eq!(f.machine.as_deref(), Some("web-02"));
    assert_eq!(
        f.log_tail,
        [
            "Running deploy.sh",
            "Job for shop.service failed",
            "The action Deploy web on web-02 failed"
        ]
    );

    // The query: verbose lines only on request, each activity's last `tail` lines.
    let lines = |doc: &Value| -> Vec<String> {
        doc["ActivityLogs"][0]["Children"][1]["Children"][1]["LogElements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["MessageText"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(lines(&doc).contains(&"exporting PATH".to_string()));
    let quiet = details(&o, &task, "?verbose=false").await;
    assert!(!lines(&quiet).contains(&"exporting PATH".to_string()));
    let tail = details(&o, &task, "?verbose=true&tail=2").await;
    assert_eq!(
        lines(&tail),
        [
            "Job for shop.service failed",
            "The action Deploy web on web-02 failed"
        ]
    );
    // Reading details does not move a task along; the next deployment succeeds again.
    assert_eq!(o.task(&task).unwrap()["State"], "Failed");
    let (_, _, next) = post(&o, redeploy(&release)).await;
    let next_task = next["TaskId"].as_str().unwrap();
    for _ in 0..3 {
        get(&o, &format!("/api/tasks/{next_task}")).await;
    }
    assert_eq!(o.task(next_task).unwrap()["State"], "Success");
}

#[tokio::test]
async fn failures_of_a_release_and_of_one_task_now() {
    let (o, release) = octopus_with_release().await;
    let other = o.add_release("Projects-1", "1.3.0");
    o.fail_deployments_of(
        &other,
        TaskFailure::canceled("Smoke test", "Octopus Server"),
    );
    let (_, _, ok) = post(&o, redeploy(&release)).await;
    let (_, _, canceled) = post(&o, redeploy(&other)).await;
    for d in [&ok, &canceled] {
        let path = format!("/api/tasks/{}", d["TaskId"].as_str().unwrap());
        for _ in 0..3 {
            get(&o, &path).await;
        }
    }
    assert_eq!(
        o.task(ok["TaskId"].as_str().unwrap()).unwrap()["State"],
        "Success"
    );
    let task = canceled["TaskId"].as_str().unwrap();
    let doc = details(&o, task, "").await;
    assert_details_shape(&doc);
    assert_eq!(doc["Task"]["State"], "Canceled");
    assert_eq!(doc["Task"]["ErrorMessage"], "The task was canceled.");
    let f = failure(&doc);
    assert_eq!(
        (f.step.as_deref(), f.machine.as_deref()),
        (Some("Smoke test"), Some("Octopus Server"))
    );
    assert_eq!(
        f.log_tail.last().map(String::as_str),
        Some("The operation was canceled.")
    );

    // A deployment running when the test fails it; one added as timed out never started.
    let running = o.add_deployment("Projects-1", "Environments-1", &release, "Executing");
    let doc = details(&o, &task_of(&o, &running), "").await;
    assert_eq!(doc["ActivityLogs"][0]["Status"], "Running");
    o.fail_task(
        &running,
        TaskFailure::failed("Migrate database", "db-01").ending("TimedOut"),
    );
    let doc = details(&o, &task_of(&o, &running), "").await;
    assert_details_shape(&doc);
    let f = failure(&doc);
    assert_eq!(f.state.as_deref(), Some("TimedOut"));
    assert_eq!(
        (f.step.as_deref(), f.machine.as_deref()),
        (Some("Migrate database"), Some("db-01"))
    );
    let queued_out = o.add_deployment("Projects-1", "Environments-1", &release, "TimedOut");
    let doc = details(&o, &task_of(&o, &queued_out), "").await;
    assert!(doc["Task"]["StartTime"].is_null(), "{doc:#}");
    let f = failure(&doc);
    assert_eq!((f.state.as_deref(), f.step), (Some("TimedOut"), None));
    assert_eq!(
        f.error.as_deref(),
        Some("The task timed out before it could start.")
    );

    // finish_task picks the end as for a POST: the next scripted failure, else success.
    o.fail_next_deployments(1, TaskFailure::failed("Deploy web", "web-01"));
    let a = o.add_deployment("Projects-1", "Environments-1", &release, "Executing");
    let b = o.add_deployment("Projects-1", "Environments-1", &release, "Queued");
    o.finish_task(&a);
    o.finish_task(&b);
    let state = |d: &str| o.task(&task_of(&o, d)).unwrap()["State"].clone();
    assert_eq!((state(&a), state(&b)), ("Failed".into(), "Success".into()));
}

#[tokio::test]
async fn the_listing_honours_every_task_state() {
    let (o, release) = octopus_with_release().await;
    let by_state: Vec<(&str, String)> = TASK_STATES
        .iter()
        .map(|s| {
            (
                *s,
                o.add_deployment("Projects-1", "Environments-1", &release, s),
            )
        })
        .collect();
    for (state, id) in &by_state {
        for spelled in [state.to_string(), state.to_lowercase()] {
            let (_, page) = get(
                &o,
                &format!("/api/Spaces-1/deployments?projects=Projects-1&taskState={spelled}"),
            )
            .await;
            assert_eq!(ids(&page), std::slice::from_ref(id), "taskState={spelled}");
        }
    }
    let (_, all) = get(&o, "/api/Spaces-1/deployments").await;
    assert_eq!(ids(&all).len(), TASK_STATES.len());
}
