//! Drives the fakes over real HTTP: one request and its JSON answer, and the Octopus calls the
//! checks repeat (with the API key, against a fake holding one release).

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::octopus::FakeOctopus;

/// The API key every fake Octopus in these checks is started with.
pub const KEY: &str = "API-FAKEFAKEFAKEFAKEFAKEFAKE0";

/// Sends `req` and returns status, headers and the body, which must be JSON.
pub async fn call(req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = req.send().await.expect("request reaches the fake");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text}"));
    (status, headers, body)
}

/// `GET path` on the fake Octopus with the API key.
pub async fn get(o: &FakeOctopus, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(
        reqwest::Client::new()
            .get(format!("{}{path}", o.url()))
            .header("X-Octopus-ApiKey", KEY),
    )
    .await;
    (status, body)
}

/// `POST /api/Spaces-1/deployments` with the API key and `body`.
pub async fn post(o: &FakeOctopus, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    call(
        reqwest::Client::new()
            .post(format!("{}/api/Spaces-1/deployments", o.url()))
            .header("X-Octopus-ApiKey", KEY)
            .json(&body),
    )
    .await
}

/// The `Id` of every item of a `ResourceCollection`, in order.
pub fn ids(collection: &Value) -> Vec<String> {
    let items = collection["Items"].as_array().expect("Items");
    items
        .iter()
        .map(|d| d["Id"].as_str().expect("Id").to_owned())
        .collect()
}

/// A fresh fake Octopus holding one release of `Projects-1`, and that release's id.
pub async fn octopus_with_release() -> (FakeOctopus, String) {
    let o = FakeOctopus::start(KEY).await;
    let release = o.add_release("Projects-1", "1.2.0");
    (o, release)
}

/// A valid create command: deploy `release` to `Environments-1`.
pub fn redeploy(release: &str) -> Value {
    json!({"ReleaseId": release, "EnvironmentId": "Environments-1", "Comments": "backstop: rollback"})
}
