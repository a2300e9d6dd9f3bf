//! The fake Prometheus answers instant and range queries like the HTTP API v1: result shapes,
//! special float values, errors, form bodies, and the query log.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::prometheus::{FakePrometheus, Reply};
use crate::http::call;

async fn prom(p: &FakePrometheus, path: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let (status, _, body) = call(
        reqwest::Client::new()
            .get(format!("{}{path}", p.url()))
            .query(params),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn prometheus_instant_queries_answer_like_the_v1_api() {
    let p = FakePrometheus::start().await;
    p.set("up", Reply::Value(1.0));
    p.set("ratio", Reply::NaN);
    p.set("latency", Reply::Value(f64::INFINITY));
    p.set("by_instance", Reply::Series(vec![0.25, 0.5]));
    p.set("broken", Reply::Error(422));

    let (status, body) = prom(
        &p,
        "/api/v1/query",
        &[("query", "up"), ("time", "1700000000.5")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.5, "1"]}]}})
    );
    let (_, body) = prom(&p, "/api/v1/query", &[("query", "up")]).await;
    assert!(body["data"]["result"][0]["value"][0].is_number(), "{body}");
    for (query, value) in [("ratio", "NaN"), ("latency", "+Inf")] {
        let (_, body) = prom(&p, "/api/v1/query", &[("query", query)]).await;
        assert_eq!(body["data"]["result"][0]["value"][1], value);
    }
    let (_, body) = prom(&p, "/api/v1/query", &[("query", "never_set")]).await;
    assert_eq!(body["data"], json!({"resultType": "vector", "result": []}));
    let (_, body) = prom(&p, "/api/v1/query", &[("query", "by_instance")]).await;
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(
        result
            .iter()
            .map(|r| r["value"][1].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["0.25", "0.5"]
    );
    assert_ne!(result[0]["metric"], result[1]["metric"]);
    let (status, body) = prom(&p, "/api/v1/query", &[("query", "broken")]).await;
    assert_eq!(
        (
            status.as_u16(),
            body["status"].as_str(),
            body["errorType"].as_str()
        ),
        (422, Some("error"), Some("execution"))
    );
    assert!(body["error"].is_string());

    let (status, _, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/query", p.url()))
            .form(&[("query", "up"), ("time", "2023-11-14T22:13:20Z")]),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["result"][0]["value"]),
        (StatusCode::OK, &json!([1700000000, "1"]))
    );
    let (status, _, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/query", p.url()))
            .json(&json!({"query": "up"})),
    )
    .await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_data")),
        "JSON bodies are not form parameters"
    );

    let log = p.queries();
    assert_eq!(log.len(), 9);
    assert_eq!(log[0], ("/api/v1/query".to_owned(), "up".to_owned()));
    assert_eq!(log[8].1, "", "a request without a query is logged too");
}

#[tokio::test]
async fn prometheus_range_queries_answer_a_matrix_of_step_spaced_points() {
    let p = FakePrometheus::start().await;
    p.set_range("rate", Reply::Value(0.5));
    p.set("rate", Reply::Value(9.0));
    p.set("errors", Reply::Value(2.0));
    p.set_range("gone", Reply::Empty);
    p.set_range("slow", Reply::Error(503));
    let range = |q: &'static str, step: &'static str| {
        [
            ("query", q),
            ("start", "1000"),
            ("end", "1060"),
            ("step", step),
        ]
    };

    for step in ["15", "15s"] {
        let (status, body) = prom(&p, "/api/v1/query_range", &range("rate", step)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["resultType"], "matrix");
        let points = &body["data"]["result"][0]["values"];
        assert_eq!(
            points,
            &json!([
                [1000, "0.5"],
                [1015, "0.5"],
                [1030, "0.5"],
                [1045, "0.5"],
                [1060, "0.5"]
            ])
        );
    }
    let (_, body) = prom(&p, "/api/v1/query_range", &range("errors", "30")).await;
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[1000, "2"], [1030, "2"], [1060, "2"]]),
        "falls back to the instant reply"
    );
    let (_, body) = prom(&p, "/api/v1/query_range", &range("gone", "30")).await;
    assert_eq!(body["data"], json!({"resultType": "matrix", "result": []}));
    let (status, body) = prom(&p, "/api/v1/query_range", &range("slow", "30")).await;
    assert_eq!(
        (status.as_u16(), body["errorType"].as_str()),
        (503, Some("unavailable"))
    );

    let bad = [
        vec![
            ("query", "rate"),
            ("start", "1060"),
            ("end", "1000"),
            ("step", "15"),
        ],
        vec![("query", "rate"), ("start", "1000"), ("end", "1060")],
        vec![
            ("query", "rate"),
            ("start", "0"),
            ("end", "100000"),
            ("step", "1"),
        ],
    ];
    for params in bad {
        let (status, body) = prom(&p, "/api/v1/query_range", &params).await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_data")),
            "{params:?}"
        );
    }
    let (_, _, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/query_range", p.url()))
            .form(&range("rate", "1m")),
    )
    .await;
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[1000, "0.5"], [1060, "0.5"]])
    );
    assert!(p
        .queries()
        .iter()
        .all(|(path, _)| path == "/api/v1/query_range"));
}
