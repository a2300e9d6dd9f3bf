//! Creating deployments in the fake Octopus: validation like the server's, and the injected
//! faults the exactly-once tests lean on (refused, lost, late and slowly committed POSTs; failed
//! GETs), each observed from the client's side.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::wait_until_async;
use crate::http::{call, get, ids, octopus_with_release, post, redeploy, KEY};

#[tokio::test]
async fn create_validates_like_the_server_and_takes_the_project_from_the_release() {
    let (o, release) = octopus_with_release().await;
    let cases = [
        (
            json!({"EnvironmentId": "Environments-1"}),
            "Please specify the release to deploy.",
        ),
        (
            json!({"ReleaseId": release}),
            "Please provide a target environment to deploy to.",
        ),
        (
            json!({"ReleaseId": "Releases-404", "EnvironmentId": "Environments-1"}),
            "Releases-404",
        ),
        (
            json!({"ReleaseId": release, "EnvironmentId": "Environments-1", "UseGuidedFailure": "yes"}),
            "UseGuidedFailure",
        ),
    ];
    o.create_then_fail_next_posts(1);
    for (body, error) in cases {
        let (status, _, resp) = post(&o, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            resp["Errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains(error)),
            "{error:?} in {resp}"
        );
    }
    assert!(o.deployments().is_empty());
    let (status, _, _) = post(&o, redeploy(&release)).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "invalid bodies must not use up a queued create fault"
    );
    let (status, _, d) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (
            d["ProjectId"].as_str(),
            d["Comments"].as_str(),
            d["ReleaseId"].as_str()
        ),
        (
            Some("Projects-1"),
            Some("backstop: rollback"),
            Some(release.as_str())
        )
    );
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (6, 2));
}

#[tokio::test]
async fn failed_posts_answer_the_status_and_create_nothing() {
    let (o, release) = octopus_with_release().await;
    o.fail_next_posts(2, 429, Some(7));
    o.fail_next_posts(1, 503, None);
    for expected in [429, 429, 503] {
        let (status, headers, body) = post(&o, redeploy(&release)).await;
        assert_eq!(status.as_u16(), expected);
        let retry_after = headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(retry_after.as_deref(), (expected == 429).then_some("7"));
        assert!(
            body["ErrorMessage"].is_string() && body["Errors"].is_array(),
            "{body}"
        );
    }
    assert!(o.created_deployments().is_empty() && o.deployments().is_empty());
    let (status, _, _) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (4, 1));
}

#[tokio::test]
async fn create_then_fail_lands_the_deployment_but_loses_the_response() {
    let (o, release) = octopus_with_release().await;
    o.create_then_fail_next_posts(1);
    let (status, _, body) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.get("Id").is_none(),
        "a lost response must not reveal the deployment: {body}"
    );
    let created = o.created_deployments();
    assert_eq!(created.len(), 1);
    let (_, listed) = get(&o, "/api/Spaces-1/deployments?projects=Projects-1&environments=Environments-1&taskState=Queued").await;
    assert_eq!(
        ids(&listed),
        [created[0]["Id"].as_str().unwrap()],
        "the landed deployment is discoverable"
    );
    assert_eq!(post(&o, redeploy(&release)).await.0, StatusCode::CREATED);
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (2, 2));
}

#[tokio::test]
async fn hung_posts_create_first_and_answer_late() {
    let (o, release) = octopus_with_release().await;
    o.hang_next_posts(1, Duration::from_millis(300));
    let started = Instant::now();
    let (status, _, d) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(d["Id"], o.created_deployments()[0]["Id"]);

    o.hang_next_posts(1, Duration::from_secs(30));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/api/Spaces-1/deployments", o.url()))
        .header("X-Octopus-ApiKey", KEY)
        .json(&redeploy(&release))
        .send()
        .await
        .expect_err("the client must time out");
    assert!(err.is_timeout(), "{err}");
    let created = o.wait_for_created(2, Duration::from_secs(5)).await;
    assert_eq!(created[1]["ReleaseId"].as_str(), Some(release.as_str()));

    let started = Instant::now();
    assert_eq!(post(&o, redeploy(&release)).await.0, StatusCode::CREATED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "only the queued POST hangs"
    );
    assert_eq!(o.post_attempts(), 3);
}

#[tokio::test]
async fn late_commits_stay_invisible_until_visible_after_even_when_the_client_hangs_up() {
    let (o, release) = octopus_with_release().await;
    let visible_after = Duration::from_secs(2);
    o.commit_late_next_posts(1, Duration::from_secs(30), visible_after);
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let started = Instant::now();
    let err = impatient
        .post(format!("{}/api/Spaces-1/deployments", o.url()))
        .header("X-Octopus-ApiKey", KEY)
        .json(&redeploy(&release))
        .send()
        .await
        .expect_err("the answer comes after the client gave up");
    assert!(err.is_timeout(), "{err}");

    // The server holds the deployment, but its API does not show it (nor its task) yet.
    let created = o.wait_for_created(1, Duration::from_secs(5)).await;
    let id = created[0]["Id"].as_str().unwrap().to_owned();
    let task_id = created[0]["TaskId"].as_str().unwrap().to_owned();
    let one = format!("/api/Spaces-1/deployments/{id}");
    let task = format!("/api/tasks/{task_id}");
    let (_, listed) = get(&o, "/api/Spaces-1/deployments").await;
    assert_eq!(
        (ids(&listed), listed["TotalResults"].as_u64()),
        (vec![], Some(0))
    );
    assert_eq!(get(&o, &one).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&o, &task).await.0, StatusCode::NOT_FOUND);
    assert!(
        started.elapsed() < visible_after,
        "the invisibility checks ran too late to mean anything ({:?})",
        started.elapsed()
    );

    // Once committed it shows everywhere, though the client that posted it never heard back.
    let (o2, one2) = (&o, one.as_str());
    wait_until_async(
        "the late commit is visible",
        Duration::from_secs(10),
        || async move { get(o2, one2).await.0 == StatusCode::OK },
    )
    .await;
    assert!(
        started.elapsed() >= visible_after,
        "visible after only {:?}",
        started.elapsed()
    );
    let (_, listed) = get(&o, "/api/Spaces-1/deployments").await;
    assert_eq!(ids(&listed), [id.as_str()]);
    let (status, t) = get(&o, &task).await;
    assert_eq!(
        (status, t["State"].as_str()),
        (StatusCode::OK, Some("Queued"))
    );
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (1, 1));
}

#[tokio::test]
async fn late_commits_answer_201_only_after_answer_after() {
    let (o, release) = octopus_with_release().await;
    let answer_after = Duration::from_millis(600);
    o.commit_late_next_posts(1, answer_after, Duration::from_millis(200));
    let started = Instant::now();
    let (status, _, d) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        started.elapsed() >= answer_after,
        "answered after {:?}",
        started.elapsed()
    );
    let id = d["Id"].as_str().unwrap();
    assert_eq!(o.created_deployments()[0]["Id"], id);
    let (status, _) = get(&o, &format!("/api/Spaces-1/deployments/{id}")).await;
    assert_eq!(status, StatusCode::OK, "visible_after < answer_after");

    let started = Instant::now();
    assert_eq!(post(&o, redeploy(&release)).await.0, StatusCode::CREATED);
    assert!(
        started.elapsed() < answer_after,
        "only the queued POST is late"
    );
}

#[tokio::test]
async fn commit_then_fail_lands_the_deployment_and_answers_the_chosen_status() {
    let (o, release) = octopus_with_release().await;
    o.commit_then_fail_next_posts(1, 503);
    let (status, _, body) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["ErrorMessage"].is_string() && body.get("Id").is_none(),
        "an error body that does not reveal the deployment: {body}"
    );
    let created = o.created_deployments();
    assert_eq!(created.len(), 1);
    let id = created[0]["Id"].as_str().unwrap();
    let (status, d) = get(&o, &format!("/api/Spaces-1/deployments/{id}")).await;
    assert_eq!(
        (status, d["ReleaseId"].as_str()),
        (StatusCode::OK, Some(release.as_str()))
    );
    let (_, listed) = get(
        &o,
        "/api/Spaces-1/deployments?projects=Projects-1&environments=Environments-1",
    )
    .await;
    assert_eq!(ids(&listed), [id], "the landed deployment is discoverable");
    assert_eq!(post(&o, redeploy(&release)).await.0, StatusCode::CREATED);
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (2, 2));
}

#[tokio::test]
async fn post_faults_apply_in_the_order_queued() {
    let (o, release) = octopus_with_release().await;
    o.fail_next_posts(1, 503, None);
    o.create_then_fail_next_posts(1);
    let statuses = [
        post(&o, redeploy(&release)).await.0,
        post(&o, redeploy(&release)).await.0,
        post(&o, redeploy(&release)).await.0,
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [503, 500, 201]);
    assert_eq!(o.created_deployments().len(), 2);
}

#[tokio::test]
async fn failed_gets_hit_any_endpoint_but_spare_posts() {
    let (o, release) = octopus_with_release().await;
    let id = o.add_deployment("Projects-1", "Environments-1", &release, "Success");
    o.fail_next_gets(3, 503);
    let unauth =
        call(reqwest::Client::new().get(format!("{}/api/Spaces-1/deployments", o.url()))).await;
    assert_eq!(
        unauth.0,
        StatusCode::UNAUTHORIZED,
        "authentication comes before faults"
    );
    let one = format!("/api/Spaces-1/deployments/{id}");
    for path in ["/api/Spaces-1/deployments", one.as_str()] {
        let (status, body) = get(&o, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(body["ErrorMessage"].is_string(), "{body}");
    }
    assert_eq!(
        post(&o, redeploy(&release)).await.0,
        StatusCode::CREATED,
        "POSTs are not GET faults"
    );
    assert_eq!(
        get(&o, "/api/tasks/ServerTasks-101").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&o, &format!("/api/Spaces-1/releases/{release}"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 deployment(s) created via POST")]
async fn wait_for_created_panics_with_a_clear_message() {
    let (o, _) = octopus_with_release().await;
    o.wait_for_created(1, Duration::from_millis(50)).await;
}
