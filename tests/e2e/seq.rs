//! A scripted target whose answers follow a fixed cycle per request, so noisy signals are
//! reproducible regardless of timing: `/health` cycles HTTP statuses and `/api/v1/query`
//! cycles Prometheus values (None = empty result).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

#[derive(Default)]
struct Cycles {
    statuses: Vec<u16>,
    values: Vec<Option<f64>>,
    health_hits: usize,
    query_hits: usize,
}

#[derive(Clone)]
pub struct Sequenced {
    pub url: String,
    state: Arc<Mutex<Cycles>>,
}

impl Sequenced {
    pub async fn start(statuses: Vec<u16>, values: Vec<Option<f64>>) -> Sequenced {
        let state = Arc::new(Mutex::new(Cycles {
            statuses,
            values,
            ..Default::default()
        }));
        let router = Router::new()
            .route("/health", get(health))
            .route("/api/v1/query", post(query).get(query))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Sequenced { url, state }
    }

    pub fn query_hits(&self) -> usize {
        self.state.lock().unwrap().query_hits
    }
}

async fn health(State(s): State<Arc<Mutex<Cycles>>>) -> impl IntoResponse {
    let mut s = s.lock().unwrap();
    let code = s.statuses[s.health_hits % s.statuses.len()];
    s.health_hits += 1;
    StatusCode::from_u16(code).unwrap()
}

async fn query(State(s): State<Arc<Mutex<Cycles>>>) -> impl IntoResponse {
    let mut s = s.lock().unwrap();
    let v = s.values[s.query_hits % s.values.len()];
    s.query_hits += 1;
    let result = match v {
        Some(v) => json!([{"metric": {}, "value": [1.0, v.to_string()]}]),
        None => json!([]),
    };
    Json(json!({"status": "success", "data": {"resultType": "vector", "result": result}}))
}
