//! Task progression in the fake Octopus: a created deployment's task walks Queued -> Executing
//! -> final on successive GETs; added deployments start final; tests can steer tasks.

use reqwest::StatusCode;

use crate::http::{get, ids, octopus_with_release, post, redeploy};

#[tokio::test]
async fn created_task_walks_queued_executing_final_on_successive_gets() {
    let (o, release) = octopus_with_release().await;
    let (_, _, d) = post(&o, redeploy(&release)).await;
    let task_id = d["TaskId"].as_str().unwrap().to_owned();
    assert!(task_id.starts_with("ServerTasks-"), "{task_id}");
    assert_eq!(
        o.task(&task_id).unwrap()["State"],
        "Queued",
        "inspection must not advance the task"
    );

    let scoped = format!("/api/Spaces-1/tasks/{task_id}");
    let unscoped = format!("/api/tasks/{task_id}");
    let expect = [
        // path, State, IsCompleted, FinishedSuccessfully, picked up, has StartTime, has CompletedTime
        (&scoped, "Queued", false, false, false, false, false),
        (&unscoped, "Executing", false, false, true, true, false),
        (&scoped, "Success", true, true, true, true, true),
        (&unscoped, "Success", true, true, true, true, true),
    ];
    for (path, state, completed, success, picked, started, finished) in expect {
        let (status, t) = get(&o, path).await;
        assert_eq!(status, StatusCode::OK);
        let got = (
            t["State"].as_str(),
            t["IsCompleted"].as_bool(),
            t["FinishedSuccessfully"].as_bool(),
            t["HasBeenPickedUpByProcessor"].as_bool(),
        );
        assert_eq!(
            got,
            (Some(state), Some(completed), Some(success), Some(picked)),
            "{t:#}"
        );
        assert_eq!(
            (!t["StartTime"].is_null(), !t["CompletedTime"].is_null()),
            (started, finished),
            "{t:#}"
        );
        let (_, listed) = get(&o, &format!("/api/Spaces-1/deployments?taskState={state}")).await;
        assert_eq!(
            ids(&listed),
            [d["Id"].as_str().unwrap()],
            "deployment listed under its task's state {state}"
        );
    }

    o.set_task_final_state("Failed");
    let (_, _, d) = post(&o, redeploy(&release)).await;
    let path = format!("/api/tasks/{}", d["TaskId"].as_str().unwrap());
    let mut states = vec![];
    for _ in 0..3 {
        states.push(get(&o, &path).await.1);
    }
    assert_eq!(
        states
            .iter()
            .map(|t| t["State"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Queued", "Executing", "Failed"]
    );
    let failed = &states[2];
    assert_eq!(
        (
            failed["IsCompleted"].as_bool(),
            failed["FinishedSuccessfully"].as_bool(),
            failed["HasWarningsOrErrors"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    assert!(!failed["ErrorMessage"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn added_deployments_start_in_their_final_state_and_tasks_can_be_steered() {
    let (o, release) = octopus_with_release().await;
    let id = o.add_deployment("Projects-1", "Environments-1", &release, "TimedOut");
    let (_, d) = get(&o, &format!("/api/Spaces-1/deployments/{id}")).await;
    let task_id = d["TaskId"].as_str().unwrap().to_owned();
    assert_ne!(
        task_id.trim_start_matches("ServerTasks-"),
        id.trim_start_matches("Deployments-"),
        "task numbers must not mirror deployment numbers"
    );
    let (_, t) = get(&o, &format!("/api/tasks/{task_id}")).await;
    assert_eq!(
        (
            t["State"].as_str(),
            t["IsCompleted"].as_bool(),
            t["FinishedSuccessfully"].as_bool()
        ),
        (Some("TimedOut"), Some(true), Some(false))
    );

    o.set_task_state(&task_id, "Cancelling");
    o.set_pending_interruptions(&task_id, true);
    let (_, t) = get(&o, &format!("/api/tasks/{task_id}")).await;
    assert_eq!(
        (
            t["State"].as_str(),
            t["IsCompleted"].as_bool(),
            t["HasPendingInterruptions"].as_bool()
        ),
        (Some("Cancelling"), Some(false), Some(true))
    );
    assert!(t["CompletedTime"].is_null());
}
