//! `GET /v1/status` pages and `GET /v1/watches/{name}` through the real router.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use super::router;
use crate::status::{ObservationView, MAX_LIMIT};
use crate::ui::tests::state;

/// An API whose board holds `shop` (observing, with a check's samples) and `api`, `cart`,
/// `web`.
fn api() -> super::ApiState {
    let s = state();
    for name in ["api", "cart", "web"] {
        s.status.update(name, |_| {});
    }
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let mut tracker = crate::judge::observation::Tracker::new(
        [("health", &[crate::judge::Rule::Max(1.0)][..], 3)],
        3,
    );
    tracker.record(
        0,
        crate::judge::observation::Sample {
            at,
            value: Some(0.5),
            outcome: crate::judge::Outcome::Pass,
            mixed: false,
            note: None,
            alerts: vec![],
        },
    );
    s.status.update("shop", |w| {
        w.state = crate::status::WatchState::Observing;
        w.observation = Some(ObservationView {
            id: "obs-7".into(),
            release: "Releases-2".into(),
            version: None,
            deployment_id: None,
            kind: crate::model::ObservationKind::Deployment,
            source: crate::model::Source::Announce,
            deployed_at: at,
            judging_from: at,
            window_ends: at,
            rounds: 1,
            planned_rounds: 9,
            checks: tracker.checks,
            outcome: Default::default(),
            failure: None,
        });
    });
    s
}

async fn get(path: &str, accept: &str) -> (StatusCode, Value) {
    let r = router(api(), true)
        .oneshot(
            Request::get(path)
                .header(header::ACCEPT, accept)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = r.status();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap())
}

fn names(doc: &Value) -> Vec<&str> {
    doc["watches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn status_pages_by_name_with_a_cursor() {
    let (s, all) = get("/v1/status", "application/json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&all), ["api", "cart", "shop", "web"]);
    assert!(all["next"].is_null(), "{all}");

    let (_, p1) = get("/v1/status?limit=3", "application/json").await;
    assert_eq!(names(&p1), ["api", "cart", "shop"]);
    assert_eq!(p1["next"], "shop");
    let (_, p2) = get("/v1/status?limit=3&after=shop", "application/json").await;
    assert_eq!(names(&p2), ["web"]);
    assert!(p2["next"].is_null());

    // The overview's JSON is the same page.
    let (_, overview) = get("/?limit=3", "application/json").await;
    assert_eq!(overview, p1);
}

#[tokio::test]
async fn status_has_summaries_and_the_watch_its_detail() {
    let (_, doc) = get("/v1/status?after=cart&limit=1", "application/json").await;
    let shop = &doc["watches"][0];
    assert_eq!(shop["state"], "observing");
    assert_eq!(shop["observation"]["id"], "obs-7");
    assert_eq!(shop["observation"]["rounds"], 1);
    assert_eq!(shop["observation"]["planned_rounds"], 9);
    assert!(shop["observation"].get("checks").is_none(), "{shop}");
    assert!(!doc.to_string().contains("samples"), "{doc}");

    let (s, detail) = get("/v1/watches/shop", "application/json").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(detail["observation"]["checks"][0]["name"], "health");
    assert_eq!(
        detail["observation"]["checks"][0]["samples"][0]["value"],
        0.5
    );
}

#[tokio::test]
async fn a_bad_limit_is_a_400_that_says_why() {
    let max = MAX_LIMIT.to_string();
    let too_many = (MAX_LIMIT + 1).to_string();
    assert_eq!(
        get(&format!("/v1/status?limit={max}"), "*/*").await.0,
        StatusCode::OK
    );
    for bad in ["0", "-1", "ten", "", too_many.as_str()] {
        for path in ["/v1/status", "/"] {
            let (s, body) = get(&format!("{path}?limit={bad}"), "application/json").await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{path} limit={bad:?}");
            let message = body["error"].as_str().unwrap();
            assert!(
                message.contains(&format!("limit must be a whole number from 1 to {max}")),
                "{message}"
            );
        }
    }
}
