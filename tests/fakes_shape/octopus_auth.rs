//! The fake Octopus serves nothing without the right API key, and counts the refused POSTs.

use reqwest::StatusCode;

use crate::http::{call, get, octopus_with_release, redeploy};

#[tokio::test]
async fn requests_without_the_right_api_key_get_401() {
    let (o, release) = octopus_with_release().await;
    let http = reqwest::Client::new();
    let release_path = format!("/api/Spaces-1/releases/{release}");
    let paths = [
        "/api/Spaces-1/deployments",
        "/api/tasks/ServerTasks-101",
        release_path.as_str(),
    ];
    for path in paths {
        for key in [None, Some("API-WRONG")] {
            let mut req = http.get(format!("{}{path}", o.url()));
            if let Some(key) = key {
                req = req.header("X-Octopus-ApiKey", key);
            }
            let (status, _, body) = call(req).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with key {key:?}");
            assert!(
                body["ErrorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("API key")),
                "{body}"
            );
            assert!(
                body["Errors"].is_array() && body["Details"].is_null(),
                "{body}"
            );
        }
    }
    let (status, _, _) = call(
        http.post(format!("{}/api/Spaces-1/deployments", o.url()))
            .json(&redeploy(&release)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (
            o.post_attempts(),
            o.created_deployments().len(),
            o.deployments().len()
        ),
        (1, 0, 0)
    );
    assert_eq!(
        get(&o, &format!("/api/Spaces-1/releases/{release}"))
            .await
            .0,
        StatusCode::OK
    );
}
