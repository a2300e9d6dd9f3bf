//! `kind = "prometheus"`: the Prometheus HTTP API v1 (`/api/v1/query`, `/api/v1/query_range`).
//!
//! An empty result means "no data", never zero; NaN and infinities are not numbers to judge.
//! Both are errors, so broken telemetry cannot condemn a release.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::ProbeError;
use crate::limits;

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Value,
}

#[derive(Deserialize)]
struct VectorItem {
    value: (Value, String),
}

#[derive(Deserialize)]
struct MatrixItem {
    #[serde(default)]
    metric: std::collections::BTreeMap<String, String>,
    values: Vec<(Value, String)>,
}

/// One series of a `query_range` answer, every point kept with its time (for replaying
/// history: `backstop backtest`).
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    pub labels: std::collections::BTreeMap<String, String>,
    /// (evaluation time, value), oldest first. NaN and infinities are kept: what they mean is
    /// the caller's to decide, as for an instant query.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// Parses a Prometheus sample value ("1.5", "NaN", "+Inf").
fn parse_value(text: &str) -> Result<f64, ProbeError> {
    let v: f64 = match text {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other
            .parse()
            .map_err(|_| ProbeError::Malformed(format!("sample value {other:?}")))?,
    };
    if v.is_finite() {
        Ok(v)
    } else {
        Err(ProbeError::NotANumber(text.to_string()))
    }
}

/// Posts a query and reads the answer, up to [`limits::PROMETHEUS`]: the HTTP status and the
/// body, for [`decode_instant`] or [`decode_range`].
async fn call(
    client: &reqwest::Client,
    url: &str,
    path: &str,
    params: &[(&str, String)],
    timeout: Duration,
) -> Result<(u16, Vec<u8>), ProbeError> {
    let resp = client
        .post(format!("{url}{path}"))
        .form(params)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ProbeError::from_reqwest(e, timeout))?;
    let status = resp.status().as_u16();
    let body = limits::read(resp, limits::PROMETHEUS)
        .await
        .map_err(|e| ProbeError::from_read(e, timeout))?;
    Ok((status, body))
}

/// The `data` of an answer with HTTP status `status`, or the error the answer carries.
fn envelope(status: u16, body: &[u8]) -> Result<Data, ProbeError> {
    let success = (200..300).contains(&status);
    match serde_json::from_slice::<Envelope>(body) {
        Ok(env) if env.status == "success" && success => env
            .data
            .ok_or_else(|| ProbeError::Malformed("success without data".into())),
        Ok(env) => Err(ProbeError::Api {
            error_type: env.error_type.unwrap_or_else(|| format!("HTTP {status}")),
            message: env.error.unwrap_or_default(),
        }),
        Err(_) if !success => Err(ProbeError::Http {
            status,
            message: String::from_utf8_lossy(body).chars().take(200).collect(),
        }),
        Err(e) => Err(ProbeError::Malformed(e.to_string())),
    }
}

/// Decodes an instant query's answer (`/api/v1/query`, HTTP status `status`) into its single
/// finite value. Pure, total: any bytes give a value or an error naming the problem (no data,
/// several series, NaN or an infinity, a Prometheus error, malformed JSON).
pub fn decode_instant(status: u16, body: &[u8]) -> Result<f64, ProbeError> {
    let data = envelope(status, body)?;
    match data.result_type.as_str() {
        "vector" => {
            let items: Vec<VectorItem> = serde_json::from_value(data.result)
                .map_err(|e| ProbeError::Malformed(e.to_string()))?;
            match items.as_slice() {
                [] => Err(ProbeError::NoData),
                [one] => parse_value(&one.value.1),
                many => Err(ProbeError::MultipleSeries(many.len())),
            }
        }
        "scalar" => {
            let (_, v): (Value, String) = serde_json::from_value(data.result)
                .map_err(|e| ProbeError::Malformed(e.to_string()))?;
            parse_value(&v)
        }
        other => Err(ProbeError::Malformed(format!(
            "result type {other}; expected vector or scalar"
        ))),
    }
}

/// Decodes a range query's answer (`/api/v1/query_range`, HTTP status `status`) into every
/// series with its timed points, NaN and infinities kept. Pure and total, like
/// [`decode_instant`].
pub fn decode_range(status: u16, body: &[u8]) -> Result<Vec<RangeSeries>, ProbeError> {
    let data = envelope(status, body)?;
    if data.result_type != "matrix" {
        return Err(ProbeError::Malformed(format!(
            "result type {}; expected matrix",
            data.result_type
        )));
    }
    let series: Vec<MatrixItem> =
        serde_json::from_value(data.result).map_err(|e| ProbeError::Malformed(e.to_string()))?;
    series
        .into_iter()
        .map(|s| {
            let points = s
                .values
                .into_iter()
                .map(|(t, v)| Ok((timestamp(&t)?, parse_any(&v)?)))
                .collect::<Result<Vec<_>, ProbeError>>()?;
            Ok(RangeSeries {
                labels: s.metric,
                points,
            })
        })
        .collect()
}

/// Runs an instant query and returns its single value.
pub async fn instant(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    timeout: Duration,
) -> Result<f64, ProbeError> {
    let params = [
        ("query", query.to_string()),
        ("timeout", format!("{}ms", timeout.as_millis())),
    ];
    let (status, body) = call(client, url, "/api/v1/query", &params, timeout).await?;
    decode_instant(status, &body)
}

/// The values of a query over `window` ending at `end`, for the baseline. Non-finite points
/// are dropped here (the baseline mean skips them anyway).
pub async fn range(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    end: DateTime<Utc>,
    window: Duration,
    timeout: Duration,
) -> Result<Vec<f64>, ProbeError> {
    let points = range_timed(client, url, query, end, window, timeout).await?;
    Ok(points.into_iter().map(|(_, v)| v).collect())
}

/// [`range`] with each value's time (the baseline's series, for the evidence's chart).
pub async fn range_timed(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    end: DateTime<Utc>,
    window: Duration,
    timeout: Duration,
) -> Result<Vec<(DateTime<Utc>, f64)>, ProbeError> {
    let start = end - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::zero());
    // About 60 points per window: enough for a stable mean, cheap for the server.
    let step = Duration::from_secs_f64((window.as_secs_f64() / 60.0).max(1.0));
    range_points(client, url, query, start, end, step, timeout).await
}

/// The values of a query evaluated every `step` from `start` to `end` (`query_range`), oldest
/// first; non-finite points are dropped (not numbers to judge). `compare` asks for at most
/// [`crate::judge::compare::MAX_SAMPLES`] steps, well under Prometheus' 11,000 points.
pub async fn range_at(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
    timeout: Duration,
) -> Result<Vec<f64>, ProbeError> {
    let points = range_points(client, url, query, start, end, step, timeout).await?;
    Ok(points.into_iter().map(|(_, v)| v).collect())
}

/// [`range_at`] with each value's time: the one series' finite points, oldest first.
pub async fn range_points(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
    timeout: Duration,
) -> Result<Vec<(DateTime<Utc>, f64)>, ProbeError> {
    let series = range_series(client, url, query, start, end, step, timeout).await?;
    match series.as_slice() {
        [] => Err(ProbeError::NoData),
        [one] => Ok(one
            .points
            .iter()
            .copied()
            .filter(|(_, v)| v.is_finite())
            .collect()),
        many => Err(ProbeError::MultipleSeries(many.len())),
    }
}

/// Every series of a `query_range` answer with its labels and timed points; an empty answer
/// is an empty list (the caller knows whether that is "no data" or "nothing firing").
pub async fn range_series(
    client: &reqwest::Client,
    url: &str,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
    timeout: Duration,
) -> Result<Vec<RangeSeries>, ProbeError> {
    let secs = |t: DateTime<Utc>| format!("{:.3}", t.timestamp_millis() as f64 / 1000.0);
    let params = [
        ("query", query.to_string()),
        ("start", secs(start)),
        ("end", secs(end)),
        ("step", format!("{:.3}", step.as_secs_f64().max(0.001))),
        ("timeout", format!("{}ms", timeout.as_millis())),
    ];
    let (status, body) = call(client, url, "/api/v1/query_range", &params, timeout).await?;
    decode_range(status, &body)
}

/// A sample time of the API: unix seconds as a JSON number (`1700000000.5`).
fn timestamp(v: &Value) -> Result<DateTime<Utc>, ProbeError> {
    v.as_f64()
        .and_then(|s| DateTime::from_timestamp_millis((s * 1000.0).round() as i64))
        .ok_or_else(|| ProbeError::Malformed(format!("sample time {v}")))
}

/// Like [`parse_value`], keeping NaN and infinities as numbers.
fn parse_any(text: &str) -> Result<f64, ProbeError> {
    match parse_value(text) {
        Ok(v) => Ok(v),
        Err(ProbeError::NotANumber(_)) => Ok(match text {
            "-Inf" => f64::NEG_INFINITY,
            "+Inf" | "Inf" => f64::INFINITY,
            _ => f64::NAN,
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_and_non_numbers_are_errors() {
        assert_eq!(parse_value("0.25").unwrap(), 0.25);
        assert_eq!(parse_value("1e3").unwrap(), 1000.0);
        assert!(matches!(parse_value("NaN"), Err(ProbeError::NotANumber(_))));
        assert!(matches!(
            parse_value("+Inf"),
            Err(ProbeError::NotANumber(_))
        ));
        assert!(matches!(
            parse_value("-Inf"),
            Err(ProbeError::NotANumber(_))
        ));
        assert!(matches!(parse_value("abc"), Err(ProbeError::Malformed(_))));
        assert!(parse_any("NaN").unwrap().is_nan());
        assert_eq!(parse_any("-Inf").unwrap(), f64::NEG_INFINITY);
        assert_eq!(parse_any("2").unwrap(), 2.0);
        assert!(parse_any("abc").is_err());
    }

    fn vector(value: &str) -> String {
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000.5,"{value}"]}}]}}}}"#
        )
    }

    fn malformed<T: std::fmt::Debug>(r: Result<T, ProbeError>) -> String {
        match r {
            Err(ProbeError::Malformed(m)) => m,
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn instant_answers_decode_to_one_finite_value() {
        assert_eq!(decode_instant(200, vector("0.25").as_bytes()), Ok(0.25));
        let scalar = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"3"]}}"#;
        assert_eq!(decode_instant(200, scalar), Ok(3.0));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(decode_instant(200, empty), Err(ProbeError::NoData));
        let two = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"value":[1,"1"]},{"value":[1,"2"]}]}}"#;
        assert_eq!(decode_instant(200, two), Err(ProbeError::MultipleSeries(2)));
    }

    #[test]
    fn nan_infinities_and_huge_values_are_not_numbers_to_judge() {
        for v in ["NaN", "+Inf", "-Inf", "Inf", "1e999", "-1e999"] {
            assert!(
                matches!(
                    decode_instant(200, vector(v).as_bytes()),
                    Err(ProbeError::NotANumber(_))
                ),
                "{v}"
            );
        }
        for v in ["nan-ish", "", "0x10", "1,5"] {
            assert!(malformed(decode_instant(200, vector(v).as_bytes())).contains("sample value"));
        }
        assert_eq!(decode_instant(200, vector("1e308").as_bytes()), Ok(1e308));
    }

    #[test]
    fn prometheus_errors_and_http_errors_are_told_apart() {
        let err = br#"{"status":"error","errorType":"bad_data","error":"parse error"}"#;
        assert_eq!(
            decode_instant(400, err),
            Err(ProbeError::Api {
                error_type: "bad_data".into(),
                message: "parse error".into()
            })
        );
        assert_eq!(
            decode_range(503, b"<html>down</html>"),
            Err(ProbeError::Http {
                status: 503,
                message: "<html>down</html>".into()
            })
        );
        let odd_status = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(
            decode_instant(0, odd_status),
            Err(ProbeError::Api { .. })
        ));
        assert!(matches!(
            decode_instant(u16::MAX, b""),
            Err(ProbeError::Http { .. })
        ));
    }

    #[test]
    fn malformed_answers_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"\xff\xfe",
            br#"{"status":"success""#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,"#,
            br#"{"status":"success"}"#,
            br#"{"status":7}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":{}}}"#,
            br#"{"status":"success","data":{"resultType":"vector","result":[{"value":[1,2]}]}}"#,
            br#"{"status":"success","data":{"resultType":"string","result":[1,"x"]}}"#,
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[["t","1"]]}]}}"#,
        ];
        for body in cases {
            assert!(
                decode_instant(200, body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
            assert!(
                decode_range(200, body).is_err(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn range_answers_keep_every_series_and_their_odd_values() {
        let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"job":"a"},"values":[[1700000000,"1"],[1700000015.5,"NaN"],[1700000030,"+Inf"]]},
            {"metric":{"job":"b"},"values":[]}]}}"#;
        let series = decode_range(200, body).unwrap();
        assert_eq!(series.len(), 2);
        assert_eq!(series[0].labels["job"], "a");
        assert!(series[0].points[1].1.is_nan());
        assert_eq!(series[0].points[2].1, f64::INFINITY);
        assert_eq!(series[0].points[1].0.timestamp_millis(), 1_700_000_015_500);
        for time in ["1e300", "-1e300", "\"1700000000\"", "null"] {
            let body = format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"values":[[{time},"1"]]}}]}}}}"#
            );
            assert!(
                malformed(decode_range(200, body.as_bytes())).contains("sample time"),
                "{time}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(!malformed(decode_instant(200, deep.as_bytes())).is_empty());
        let inside = format!(
            r#"{{"status":"success","data":{{"resultType":"matrix","result":{}{}}}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(malformed(decode_range(200, inside.as_bytes())).contains("recursion limit"));
    }

    #[test]
    fn sample_times_are_unix_seconds_to_the_millisecond() {
        let t = timestamp(&serde_json::json!(1_700_000_000.25)).unwrap();
        assert_eq!(t.timestamp_millis(), 1_700_000_000_250);
        assert!(timestamp(&serde_json::json!("soon")).is_err());
    }
}
