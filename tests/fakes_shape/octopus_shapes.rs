//! The fake Octopus's resources and errors carry every property of the Swagger definitions,
//! with the right types, as served over HTTP.

use reqwest::StatusCode;
use serde_json::json;

use crate::http::{call, get, octopus_with_release, post};
use crate::swagger::{
    assert_shape, COLLECTION_NON_NULL, DEPLOYMENT_NON_NULL, RELEASE_NON_NULL, TASK_NON_NULL,
};

#[tokio::test]
async fn octopus_resources_carry_every_swagger_property() {
    let (o, release) = octopus_with_release().await;
    let old = o.add_deployment("Projects-1", "Environments-1", &release, "Success");
    let failed = o.add_deployment("Projects-1", "Environments-2", &release, "Failed");
    let body = json!({
        "ReleaseId": release, "EnvironmentId": "Environments-1", "TenantId": "Tenants-3", "Comments": "rollback",
        "FormValues": {"reason": "error rate"}, "ForcePackageRedeployment": true, "UseGuidedFailure": false,
        "QueueTime": "2030-01-01T00:00:00+00:00", "SpecificMachineIds": ["Machines-2"],
    });
    let (status, _, created) = post(&o, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_shape("DeploymentResource", &created, DEPLOYMENT_NON_NULL);
    assert_eq!(
        (
            created["TenantId"].as_str(),
            created["ForcePackageRedeployment"].as_bool()
        ),
        (Some("Tenants-3"), Some(true))
    );
    assert!(created["Links"]["Task"]
        .as_str()
        .is_some_and(|l| l.ends_with(created["TaskId"].as_str().unwrap())));

    let (status, list) = get(&o, "/api/Spaces-1/deployments").await;
    assert_eq!(status, StatusCode::OK);
    assert_shape("DeploymentResourceCollection", &list, COLLECTION_NON_NULL);
    assert_eq!(list["Items"].as_array().map(Vec::len), Some(3));
    for id in [
        old.as_str(),
        failed.as_str(),
        created["Id"].as_str().unwrap(),
    ] {
        let (status, d) = get(&o, &format!("/api/Spaces-1/deployments/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_shape("DeploymentResource", &d, DEPLOYMENT_NON_NULL);
        let (status, task) = get(
            &o,
            &format!("/api/Spaces-1/tasks/{}", d["TaskId"].as_str().unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_shape("TaskResource", &task, TASK_NON_NULL);
    }
    let task_path = format!("/api/tasks/{}", created["TaskId"].as_str().unwrap());
    for state in ["Executing", "Success"] {
        let (_, task) = get(&o, &task_path).await;
        assert_eq!(task["State"], state);
        assert_shape("TaskResource", &task, TASK_NON_NULL);
    }
    let (status, r) = get(&o, &format!("/api/Spaces-1/releases/{release}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_shape("ReleaseResource", &r, RELEASE_NON_NULL);
    assert_eq!(
        (r["Version"].as_str(), r["ProjectId"].as_str()),
        (Some("1.2.0"), Some("Projects-1"))
    );
}

#[tokio::test]
async fn octopus_errors_use_the_error_shape() {
    let (o, _) = octopus_with_release().await;
    let unauth =
        call(reqwest::Client::new().get(format!("{}/api/Spaces-1/deployments", o.url()))).await;
    let (_, not_found) = get(&o, "/api/Spaces-1/deployments/Deployments-999").await;
    let (_, _, invalid) = post(&o, json!({"EnvironmentId": "Environments-1"})).await;
    for body in [&unauth.2, &not_found, &invalid] {
        assert_shape("Error", body, &["ErrorMessage", "Errors"]);
        assert!(body.as_object().unwrap().contains_key("Details"));
    }
}
