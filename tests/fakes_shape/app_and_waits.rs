//! The fake app's `/health` (status, hit count, slowness) and the shared `wait_until*` helpers.

use std::time::Duration;

use reqwest::StatusCode;

use crate::common::app::FakeApp;
use crate::common::{wait_until, wait_until_async};

#[tokio::test]
async fn app_health_answers_the_status_set_counts_hits_and_can_be_slow() {
    let app = FakeApp::start().await;
    let http = reqwest::Client::new();
    let health = format!("{}/health", app.url());
    assert_eq!(
        http.get(&health).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.set_health(503);
    let status = http.get(&health).send().await.unwrap().status();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    app.set_delay(Duration::from_secs(30));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(impatient
        .get(&health)
        .send()
        .await
        .unwrap_err()
        .is_timeout());
    wait_until(
        "the slow request is counted",
        Duration::from_secs(5),
        || app.hits() == 3,
    )
    .await;

    app.set_delay(Duration::ZERO);
    app.set_health(200);
    let (http, health) = (&http, health.as_str());
    let healthy = || async move {
        http.get(health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    wait_until_async("the app is healthy again", Duration::from_secs(5), healthy).await;
    wait_until("the probe was counted", Duration::from_secs(5), || {
        app.hits() >= 4
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "timed out after 50ms waiting until pigs fly")]
async fn wait_until_names_what_it_waited_for() {
    wait_until("pigs fly", Duration::from_millis(50), || false).await;
}
