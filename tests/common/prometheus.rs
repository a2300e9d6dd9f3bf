//! `FakePrometheus`: the slice of Prometheus' HTTP API v1 that backstop's metric checks query.
//!
//! Answers are scripted per query string, because what a check has to get right is the awkward
//! cases the real server produces: an empty vector (no data, not zero), `"NaN"` and `"+Inf"` as
//! JSON strings, several series where one was expected, and 4xx/5xx error envelopes. Requests are
//! parsed the way Prometheus parses them (GET query string, or a form-encoded POST body merged
//! with the query string), so a client that sends JSON or forgets a parameter fails here too.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// Prometheus' own cap on points per series in a range query.
const MAX_POINTS: f64 = 11_000.0;

/// What the fake answers for one query string.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// One sample with this value (`+Inf`/`-Inf` are rendered as Prometheus does).
    Value(f64),
    /// An empty result: "no data", which is not zero.
    Empty,
    /// One sample whose value is `"NaN"` (e.g. 0/0 in a ratio at zero traffic).
    NaN,
    /// An error envelope with this HTTP status (422 -> `execution`, 400 -> `bad_data`, ...).
    Error(u16),
    /// Several series, one per value, each with distinct `instance` labels.
    Series(Vec<f64>),
}

#[derive(Debug, Default)]
struct State {
    instant: HashMap<String, Reply>,
    range: HashMap<String, Reply>,
    log: Vec<(String, String)>,
    delay: Duration,
}

type Shared = Arc<Mutex<State>>;

/// Handle on a running fake Prometheus. Clones share the same server.
#[derive(Clone)]
pub struct FakePrometheus {
    addr: std::net::SocketAddr,
    state: Shared,
}

impl FakePrometheus {
    /// Starts the fake on an ephemeral loopback port. Every query answers [`Reply::Empty`] until set.
    pub async fn start() -> FakePrometheus {
        let state = Shared::default();
        let router = Router::new()
            .route("/api/v1/query", get(instant).post(instant))
            .route("/api/v1/query_range", get(range).post(range))
            .with_state(state.clone());
        let addr = super::serve("FakePrometheus", router).await;
        FakePrometheus { addr, state }
    }

    /// Base URL, e.g. `http://127.0.0.1:41234`; the client appends `/api/v1/...`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets the reply to `/api/v1/query` (and to `query_range` unless [`Self::set_range`] was used).
    pub fn set(&self, query: &str, reply: Reply) {
        check_reply(&reply);
        self.lock().instant.insert(query.to_owned(), reply);
    }

    /// Sets the reply to `/api/v1/query_range` for `query`.
    pub fn set_range(&self, query: &str, reply: Reply) {
        check_reply(&reply);
        self.lock().range.insert(query.to_owned(), reply);
    }

    /// Delay before every answer, to exercise a client's per-request timeout.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Every request received, in order, as (path, query), including rejected ones.
    pub fn queries(&self) -> Vec<(String, String)> {
        self.lock().log.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("FakePrometheus state poisoned")
    }
}

fn check_reply(reply: &Reply) {
    if let Reply::Error(code) = reply {
        StatusCode::from_u16(*code).unwrap_or_else(|_| panic!("invalid HTTP status {code}"));
    }
}

async fn instant(
    AxState(s): AxState<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = request_params(&uri, &headers, &body);
    let (reply, delay) = record(&s, "/api/v1/query", &params, false);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(reply) = reply else {
        return missing_query();
    };
    let time = match params.get("time") {
        Some(t) => match parse_time(t) {
            Some(t) => t,
            None => {
                return bad_data(format!(
                    "invalid parameter \"time\": cannot parse {t:?} to a valid timestamp"
                ))
            }
        },
        None => now(),
    };
    let sample = |v: f64| json!([ts(time), fmt_value(v)]);
    let result = match reply {
        Reply::Error(code) => return error(code),
        Reply::Empty => vec![],
        Reply::Value(v) => vec![json!({"metric": {}, "value": sample(v)})],
        Reply::NaN => vec![json!({"metric": {}, "value": sample(f64::NAN)})],
        Reply::Series(vs) => (vs.iter().enumerate())
            .map(|(i, v)| json!({"metric": labels(i), "value": sample(*v)}))
            .collect(),
    };
    success("vector", result)
}

async fn range(AxState(s): AxState<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let params = request_params(&uri, &headers, &body);
    let (reply, delay) = record(&s, "/api/v1/query_range", &params, true);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let Some(reply) = reply else {
        return missing_query();
    };
    let mut bounds = [0.0; 2];
    for (slot, name) in bounds.iter_mut().zip(["start", "end"]) {
        match params.get(name).map(|t| (t, parse_time(t))) {
            Some((_, Some(t))) => *slot = t,
            Some((t, None)) => {
                return bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse {t:?} to a valid timestamp"
                ))
            }
            None => {
                return bad_data(format!(
                    "invalid parameter \"{name}\": cannot parse \"\" to a valid timestamp"
                ))
            }
        }
    }
    let [start, end] = bounds;
    let step = match params.get("step").map(|s| (s, parse_duration(s))) {
        Some((_, Some(step))) => step,
        Some((s, None)) => {
            return bad_data(format!(
                "invalid parameter \"step\": cannot parse {s:?} to a valid duration"
            ))
        }
        None => {
            return bad_data(
                "invalid parameter \"step\": cannot parse \"\" to a valid duration".into(),
            )
        }
    };
    if end < start {
        return bad_data("end timestamp must not be before start time".into());
    }
    if step <= 0.0 {
        return bad_data("zero or negative query resolution step widths are not accepted. Try a positive integer".into());
    }
    if (end - start) / step > MAX_POINTS {
        return bad_data("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into());
    }
    let points = |v: f64| -> Vec<Value> {
        let n = ((end - start) / step).floor() as usize;
        (0..=n)
            .map(|i| json!([ts(start + i as f64 * step), fmt_value(v)]))
            .collect()
    };
    let result = match reply {
        Reply::Error(code) => return error(code),
        Reply::Empty => vec![],
        Reply::Value(v) => vec![json!({"metric": {}, "values": points(v)})],
        Reply::NaN => vec![json!({"metric": {}, "values": points(f64::NAN)})],
        Reply::Series(vs) => (vs.iter().enumerate())
            .map(|(i, v)| json!({"metric": labels(i), "values": points(*v)}))
            .collect(),
    };
    success("matrix", result)
}

/// Logs the request and picks its reply; `None` when the request names no query.
fn record(
    s: &Shared,
    path: &str,
    params: &HashMap<String, String>,
    range: bool,
) -> (Option<Reply>, Duration) {
    let mut st = s.lock().expect("FakePrometheus state poisoned");
    let query = params.get("query").cloned().unwrap_or_default();
    st.log.push((path.to_owned(), query.clone()));
    let reply = (!query.trim().is_empty()).then(|| {
        let ranged = if range { st.range.get(&query) } else { None };
        ranged
            .or_else(|| st.instant.get(&query))
            .cloned()
            .unwrap_or(Reply::Empty)
    });
    (reply, st.delay)
}

/// Like Go's `r.FormValue`: the query string, plus a form-encoded body (which wins on conflicts).
fn request_params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let mut params = decode_form(uri.query().unwrap_or(""));
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(decode_form(&String::from_utf8_lossy(body)));
    }
    params
}

/// Decodes `application/x-www-form-urlencoded` (the first value of a repeated key wins).
fn decode_form(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.entry(percent_decode(k))
            .or_insert_with(|| percent_decode(v));
    }
    out
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Prometheus accepts unix seconds (fractional) or RFC 3339.
fn parse_time(s: &str) -> Option<f64> {
    if let Ok(t) = s.parse::<f64>() {
        return t.is_finite().then_some(t);
    }
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(t.timestamp_millis() as f64 / 1000.0)
}

/// Prometheus accepts float seconds or a duration such as `15s`, `1m30s`, `500ms`.
fn parse_duration(s: &str) -> Option<f64> {
    if let Ok(secs) = s.parse::<f64>() {
        return secs.is_finite().then_some(secs);
    }
    let (mut total, mut rest) = (0.0, s);
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&n| n > 0)?;
        let n: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            "w" => 604_800.0,
            "y" => 31_536_000.0,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Sample timestamps are unix seconds with millisecond precision, a bare integer when whole.
fn ts(t: f64) -> Value {
    let t = (t * 1000.0).round() / 1000.0;
    if t.fract() == 0.0 {
        json!(t as i64)
    } else {
        json!(t)
    }
}

/// Sample values are strings, formatted like Go's `strconv.FormatFloat(v, 'f', -1, 64)`.
pub fn fmt_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn labels(i: usize) -> Value {
    json!({"instance": format!("app-{i}:8080"), "job": "app"})
}

fn success(result_type: &str, result: Vec<Value>) -> Response {
    Json(json!({"status": "success", "data": {"resultType": result_type, "result": result}}))
        .into_response()
}

fn missing_query() -> Response {
    bad_data("invalid parameter \"query\": 1:1: parse error: no expression found in input".into())
}

fn bad_data(msg: String) -> Response {
    envelope(StatusCode::BAD_REQUEST, "bad_data", msg)
}

fn error(code: u16) -> Response {
    let status = StatusCode::from_u16(code).expect("validated in set");
    let (kind, msg) = match code {
        400 => (
            "bad_data",
            "1:9: parse error: unexpected right parenthesis ')'",
        ),
        404 => ("not_found", "not found"),
        422 => (
            "execution",
            "query processing would load too many samples into memory in query execution",
        ),
        503 => ("unavailable", "query execution timed out in queue"),
        _ => ("internal", "internal server error"),
    };
    envelope(status, kind, msg.into())
}

fn envelope(status: StatusCode, error_type: &str, msg: String) -> Response {
    (
        status,
        Json(json!({"status": "error", "errorType": error_type, "error": msg})),
    )
        .into_response()
}
