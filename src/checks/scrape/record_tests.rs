//! The stored form of scrape history: round trips, its exact shape, and rows that do not read.

use std::time::Duration;

use super::*;
use crate::config::{LabelMatch, ScrapeMode, SeriesSelector};

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap()
}

fn measures(at_ms: i64, ms: &[(f64, usize, Option<f64>)]) -> Point {
    Point {
        at: at(at_ms),
        measures: Ok(ms
            .iter()
            .map(|&(sum, series, increase)| Measure {
                sum,
                series,
                increase,
                buckets: Vec::new(),
                inf_bucket: None,
            })
            .collect()),
    }
}

fn failed(at_ms: i64, e: ScrapeError) -> Point {
    Point {
        at: at(at_ms),
        measures: Err(e),
    }
}

#[test]
fn every_kind_of_point_survives_a_round_trip() {
    let points = vec![
        measures(1_700_000_000_000, &[(10.0, 2, None), (1.0, 1, None)]),
        measures(
            1_700_000_001_000,
            &[(12.5, 2, Some(2.5)), (1.0, 1, Some(0.0))],
        ),
        failed(1_700_000_002_000, ScrapeError::Failed("HTTP 503".into())),
        failed(
            1_700_000_003_000,
            ScrapeError::Unreachable {
                reason: "target unreachable: connection refused".into(),
                timed_out: true,
            },
        ),
        failed(
            1_700_000_004_000,
            ScrapeError::NotANumber {
                series: "x{a=\"1\"}".into(),
                value: f64::INFINITY,
            },
        ),
        measures(1_700_000_005_000, &[(1e300 * 1e10, 0, Some(-0.5))]),
    ];
    let text = encode(&points).unwrap();
    assert_eq!(decode(&text).unwrap(), points);
}

#[test]
fn nan_reads_back_as_nan() {
    let p = failed(
        1,
        ScrapeError::NotANumber {
            series: "x".into(),
            value: f64::NAN,
        },
    );
    let back = decode(&encode(&[p]).unwrap()).unwrap();
    assert!(
        matches!(&back[0].measures, Err(ScrapeError::NotANumber { value, .. }) if value.is_nan())
    );
}

#[test]
fn the_stored_form_is_short_and_fixed() {
    let text = encode(&[
        measures(1000, &[(42.0, 2, Some(3.5))]),
        measures(2000, &[(7.0, 1, None)]),
        failed(3000, ScrapeError::Failed("HTTP 503".into())),
    ])
    .unwrap();
    assert_eq!(
        text,
        r#"{"v":1,"p":[{"t":1000,"m":[{"s":42.0,"n":2,"i":3.5}]},{"t":2000,"m":[{"s":7.0,"n":1}]},{"t":3000,"e":{"k":"failed","r":"HTTP 503"}}]}"#
    );
}

#[test]
fn time_is_kept_to_the_millisecond() {
    let p = Point {
        at: at(1_700_000_000_123) + chrono::Duration::microseconds(456),
        measures: Ok(vec![]),
    };
    assert_eq!(
        decode(&encode(&[p]).unwrap()).unwrap()[0].at,
        at(1_700_000_000_123)
    );
}

#[test]
fn fields_added_later_are_ignored_and_fields_missing_default() {
    // A row from a backstop that stores a field this one does not know (`z`); and a measure
    // without an increase, or buckets.
    let text = r#"{"v":1,"p":[{"t":5,"m":[{"s":"inf","n":1,"z":[[0.1,2.0],["inf",3.0]]}]}]}"#;
    let back = decode(text).unwrap();
    assert_eq!(back, vec![measures(5, &[(f64::INFINITY, 1, None)])]);
}

#[test]
fn histogram_buckets_round_trip() {
    let p = Point {
        at: at(7),
        measures: Ok(vec![Measure {
            sum: 12.0,
            series: 4,
            increase: Some(3.0),
            buckets: vec![(0.1, 2.0), (0.5, 3.0)],
            inf_bucket: Some(3.0),
        }]),
    };
    let text = encode(std::slice::from_ref(&p)).unwrap();
    assert!(
        text.contains(r#""b":[[0.1,2.0],[0.5,3.0]],"f":3.0"#),
        "{text}"
    );
    assert_eq!(decode(&text).unwrap(), vec![p]);
}

#[test]
fn rows_that_do_not_read_are_errors_not_panics() {
    for (text, needle) in [
        ("", "not a stored scrape history"),
        ("{not json", "not a stored scrape history"),
        ("[1,2,3]", "not a stored scrape history"),
        (
            r#"{"v":1,"p":[{"t":1,"m":[{"s":null,"n":1}]}]}"#,
            "not a stored",
        ),
        (
            r#"{"v":1,"p":[{"t":1,"m":[{"s":"many","n":1}]}]}"#,
            "not a stored",
        ),
        (
            r#"{"v":1,"p":[{"t":1,"e":{"k":"gremlins"}}]}"#,
            "not a stored",
        ),
        (r#"{"v":2,"p":[]}"#, "format 2"),
        (r#"{"v":1,"p":[{"t":1}]}"#, "point 0: needs exactly one"),
        (
            r#"{"v":1,"p":[{"t":1,"m":[],"e":{"k":"failed","r":"x"}}]}"#,
            "point 0: needs exactly one",
        ),
        (
            r#"{"v":1,"p":[{"t":1,"m":[]},{"t":9223372036854775807,"m":[]}]}"#,
            "point 1: time out of range",
        ),
    ] {
        let e = decode(text).unwrap_err().to_string();
        assert!(e.contains(needle), "{text}: {e}");
    }
}

fn probe(url: &str, mode: ScrapeMode, rate_window: u64) -> ScrapeProbe {
    ScrapeProbe {
        url: url.into(),
        timeout: Duration::from_secs(1),
        mode,
        rate_window: Duration::from_secs(rate_window),
        baseline_window: None,
    }
}

fn sel(metric: &str, code: Option<&str>) -> SeriesSelector {
    SeriesSelector {
        metric: metric.into(),
        labels: code
            .map(|c| ("code".to_string(), LabelMatch::Eq(c.into())))
            .into_iter()
            .collect(),
    }
}

#[test]
fn the_fingerprint_is_the_endpoint_and_the_selectors() {
    let ratio = |n, d| ScrapeMode::Ratio {
        numerator: sel("req_total", n),
        denominator: sel("req_total", d),
    };
    let base = probe("http://u:pw@app:8080/metrics", ratio(Some("500"), None), 60);
    let f = fingerprint(&base, None);
    assert_eq!(
        f,
        r#"http://***@app:8080/metrics req_total{code="500"} req_total"#
    );
    // Same series: another password, another window.
    assert_eq!(
        fingerprint(
            &probe(
                "http://u:other@app:8080/metrics",
                ratio(Some("500"), None),
                300
            ),
            None
        ),
        f
    );
    // Other series: another endpoint, another selection, the selectors swapped.
    for other in [
        probe("http://app:8081/metrics", ratio(Some("500"), None), 60),
        probe("http://u:pw@app:8080/metrics", ratio(Some("503"), None), 60),
        probe("http://u:pw@app:8080/metrics", ratio(None, Some("500")), 60),
    ] {
        assert_ne!(fingerprint(&other, None), f, "{other:?}");
    }
    // Gauge and rate of one selector store the same measures.
    assert_eq!(
        fingerprint(
            &probe("http://a/m", ScrapeMode::Gauge(sel("x", None)), 60),
            None
        ),
        fingerprint(
            &probe("http://a/m", ScrapeMode::Rate(sel("x", None)), 60),
            None
        )
    );
    // The min_traffic counter and a histogram's buckets are recorded too: either changes it.
    let gauge = probe("http://a/m", ScrapeMode::Gauge(sel("x", None)), 60);
    assert_ne!(
        fingerprint(&gauge, Some(&sel("req_total", None))),
        fingerprint(&gauge, None)
    );
    let quantile = probe(
        "http://a/m",
        ScrapeMode::Quantile {
            quantile: 0.9,
            buckets: sel("x", None),
        },
        60,
    );
    assert_eq!(fingerprint(&quantile, None), "http://a/m x[le]");
}
