//! `GET /v1/status` pages, `GET /v1/watches/{name}`, header caps, JSON nesting and the
//! document through the real router.

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

/// An API with a token and an Octopus webhook secret, and the answer to `request` (status,
/// JSON body).
async fn send(request: Request<Body>) -> (StatusCode, Value) {
    let s = api();
    *s.auth.write().unwrap() = super::Auth {
        token: Some(crate::secret::Secret::new("t0ken")),
        hooks: vec![(
            "octo".into(),
            "x-hook".into(),
            crate::secret::Secret::new("s3cret"),
        )],
    };
    let r = router(s, false).oneshot(request).await.unwrap();
    let status = r.status();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn too_many_or_too_large_headers_are_refused_before_any_handler() {
    use super::limits::{MAX_HEADERS, MAX_HEADER_BYTES};
    let with_headers = |n: usize, value: &str| {
        let mut r = Request::get("/v1/status");
        for i in 0..n {
            r = r.header(format!("x-h{i}"), value);
        }
        r.body(Body::empty()).unwrap()
    };
    assert_eq!(send(with_headers(MAX_HEADERS, "v")).await.0, StatusCode::OK);
    let (s, body) = send(with_headers(MAX_HEADERS + 1, "v")).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(body["error"], "too many request headers: 65, at most 64");

    let (s, body) = send(with_headers(1, &"a".repeat(MAX_HEADER_BYTES))).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("request headers too large"),
        "{body}"
    );
    // Even a correct token does not get a request with too many headers through.
    let mut r =
        Request::post("/v1/watches/shop/pause").header(header::AUTHORIZATION, "Bearer t0ken");
    for i in 0..MAX_HEADERS {
        r = r.header(format!("x-h{i}"), "v");
    }
    let (s, _) = send(r.body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn deeply_nested_json_is_a_400_that_says_why() {
    let deep = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let bodies = [
        (
            "/v1/deployments",
            "authorization",
            "Bearer t0ken",
            format!(
                r#"{{"watch": "shop", "release": "r", "outcome": {}}}"#,
                deep(10_000)
            ),
            "invalid announcement: recursion limit exceeded",
        ),
        // The webhook payload is read as a document first (its shape checked key by key), so
        // depth is bounded in fields backstop ignores too.
        (
            "/v1/hooks/octopus",
            "x-hook",
            "s3cret",
            format!(r#"{{"Payload": {{"Extra": {}}}}}"#, deep(10_000)),
            "invalid Octopus subscription payload: recursion limit exceeded",
        ),
        (
            "/v1/hooks/octopus",
            "x-hook",
            "s3cret",
            format!(r#"{{"Payload": {{"Event": {{"Id": {}}}}}}}"#, deep(10_000)),
            "invalid Octopus subscription payload: recursion limit exceeded",
        ),
    ];
    for (path, name, value, body, expected) in bodies {
        let r = Request::post(path)
            .header(name, value)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let (s, answer) = send(r).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(message.starts_with(expected), "{path}: {message}");
    }
    // Nesting within serde_json's limit of 128 is read (and refused for what it says).
    let r = Request::post("/v1/deployments")
        .header(header::AUTHORIZATION, "Bearer t0ken")
        .body(Body::from(format!(
            r#"{{"watch": "shop", "release": "r", "outcome": {}}}"#,
            deep(100)
        )))
        .unwrap();
    let (s, answer) = send(r).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("outcome must be \"succeeded\" or \"failed\""),
        "{answer}"
    );
}

#[tokio::test]
async fn unknown_paths_and_the_document_answer_json() {
    let (s, body) = send(Request::get("/v1/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "no such path");
    let (s, doc) = send(
        Request::get("/v1/openapi.json")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["info"]["title"], "backstop");
    let (s, body) = send(
        Request::get("/v1/history?limit=-1")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with("invalid query"),
        "{body}"
    );
}
