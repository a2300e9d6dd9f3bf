//! `mode = "quantile"` over a history of scrapes, and the `min_traffic` rate.

use super::*;

/// The bucket bounds of the test histogram `lat`, the last one `+Inf`.
const LE: [&str; 4] = ["0.1", "0.5", "1", "+Inf"];

/// `lat_bucket` series with extra labels `extra` (`a="1",` or ""), cumulative counts per
/// bound of [`LE`]; `None` leaves that bucket out.
fn lat(extra: &str, counts: [Option<f64>; 4]) -> String {
    LE.iter()
        .zip(counts)
        .filter_map(|(le, c)| c.map(|c| format!("lat_bucket{{{extra}le=\"{le}\"}} {c}\n")))
        .collect()
}

fn all(counts: [f64; 4]) -> [Option<f64>; 4] {
    counts.map(Some)
}

fn p(q: f64) -> ScrapeMode {
    ScrapeMode::Quantile {
        quantile: q,
        buckets: sel("lat_bucket", &[]),
    }
}

/// The value of `mode` at the last of `texts`, scraped one per second, over `window`.
fn at_end(mode: &ScrapeMode, texts: &[String], window: Duration) -> Result<f64, ScrapeError> {
    let mut h = history(
        mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    let end = t((texts.len() - 1) as f64);
    current(h.points(), end, SEC, mode, window)
}

fn close(a: Result<f64, ScrapeError>, b: f64) -> bool {
    a.as_ref().is_ok_and(|a| (a - b).abs() < 1e-9)
}

/// Over the window, 100 observations: 50 ≤ 0.1s, 90 ≤ 0.5s, 100 ≤ 1s.
fn steady() -> Vec<String> {
    vec![
        lat("", all([0.0, 0.0, 0.0, 0.0])),
        lat("", all([30.0, 50.0, 60.0, 60.0])),
        lat("", all([50.0, 90.0, 100.0, 100.0])),
    ]
}

#[test]
fn the_quantile_interpolates_in_the_windows_summed_bucket_increases() {
    let texts = steady();
    // p75: rank 75 in (0.1, 0.5], which holds 40; 25 in: 0.1 + 0.4 × 25/40.
    assert!(close(at_end(&p(0.75), &texts, 10 * SEC), 0.35));
    assert!(close(at_end(&p(0.9), &texts, 10 * SEC), 0.5));
    // p99: rank 99 in (0.5, 1], 9 of its 10: 0.5 + 0.5 × 0.9.
    assert!(close(at_end(&p(0.99), &texts, 10 * SEC), 0.95));
    // Over the last second only: increases 20, 40, 40, 40; rank 30: 0.1 + 0.4 × 10/20.
    assert!(close(at_end(&p(0.75), &texts, SEC), 0.3));
}

#[test]
fn the_first_bucket_interpolates_from_zero() {
    // p25: rank 25 of the first bucket's 50: half of 0.1.
    assert!(close(at_end(&p(0.25), &steady(), 10 * SEC), 0.05));
    assert!(close(at_end(&p(0.0), &steady(), 10 * SEC), 0.0));
}

#[test]
fn a_quantile_in_the_inf_bucket_is_the_highest_finite_bound() {
    let texts = [
        lat("", all([0.0, 0.0, 0.0, 0.0])),
        lat("", all([0.0, 80.0, 90.0, 100.0])),
    ];
    assert!(close(at_end(&p(0.95), &texts, 10 * SEC), 1.0));
}

#[test]
fn a_histogram_without_its_inf_bucket_or_with_only_it_is_an_error_saying_so() {
    let no_inf = [
        lat("", [Some(0.0), Some(0.0), Some(0.0), None]),
        lat("", [Some(5.0), Some(9.0), Some(10.0), None]),
    ];
    let e = at_end(&p(0.9), &no_inf, 10 * SEC).unwrap_err();
    assert_eq!(
        e.to_string(),
        "histogram lat_bucket has no le=\"+Inf\" bucket, which a quantile needs (it counts every observation)"
    );
    let only_inf = [
        lat("", [None, None, None, Some(0.0)]),
        lat("", [None, None, None, Some(10.0)]),
    ];
    let e = at_end(&p(0.9), &only_inf, 10 * SEC).unwrap_err();
    assert!(
        e.to_string().contains("has only the le=\"+Inf\" bucket"),
        "{e}"
    );
}

#[test]
fn no_observations_in_the_window_is_no_traffic_not_a_value() {
    let quiet = [
        lat("", all([5.0, 9.0, 10.0, 10.0])),
        lat("", all([5.0, 9.0, 10.0, 10.0])),
    ];
    let e = at_end(&p(0.9), &quiet, 10 * SEC).unwrap_err();
    assert_eq!(
        e,
        ScrapeError::NoTraffic {
            series: "lat_bucket".into(),
            window: 10 * SEC
        }
    );
    // Which the check treats as no data (its no_data policy), never as a failure.
    assert!(crate::checks::ProbeError::from(e).is_no_data());
    // No bucket series at all: no series, as for a gauge.
    let other = ["x 1\n".to_string(), "x 2\n".to_string()];
    assert_eq!(
        at_end(&p(0.9), &other, 10 * SEC),
        Err(ScrapeError::NoSeries("lat_bucket".into()))
    );
    // A single scrape has no increase yet.
    assert_eq!(
        at_end(&p(0.9), &steady()[..1], 10 * SEC),
        Err(ScrapeError::TooFewScrapes(10 * SEC))
    );
}

#[test]
fn a_reset_bucket_series_counts_its_new_value_not_a_negative_jump() {
    // The 0.1 series alone drops from 60 to 5 (reset): its increase is 5, the others' 10.
    let texts = [
        lat("", all([50.0, 90.0, 100.0, 100.0])),
        lat("", all([60.0, 100.0, 110.0, 110.0])),
        lat("", all([5.0, 110.0, 120.0, 120.0])),
    ];
    // Increases 15, 20, 20, 20; p50: rank 10 in the first bucket: 0.1 × 10/15.
    assert!(close(at_end(&p(0.5), &texts, 10 * SEC), 0.1 * 10.0 / 15.0));
    // The whole process restarts: every series counts its new value.
    let restart = [
        lat("", all([50.0, 90.0, 100.0, 100.0])),
        lat("", all([5.0, 9.0, 10.0, 10.0])),
    ];
    // Increases 5, 9, 10, 10; p90: rank 9, exactly the 0.5 bound.
    assert!(close(at_end(&p(0.9), &restart, 10 * SEC), 0.5));
}

#[test]
fn several_series_per_bound_are_summed_and_bounds_compared_as_numbers() {
    let mode = ScrapeMode::Quantile {
        quantile: 0.75,
        buckets: sel("lat_bucket", &[("job", "shop")]),
    };
    // Instance b writes its bounds differently ("1e-1", "1.0"): the same buckets.
    let b = |c: [f64; 4]| {
        format!(
            "lat_bucket{{job=\"shop\",i=\"b\",le=\"1e-1\"}} {}\nlat_bucket{{job=\"shop\",i=\"b\",le=\"0.5\"}} {}\n\
             lat_bucket{{job=\"shop\",i=\"b\",le=\"1.0\"}} {}\nlat_bucket{{job=\"shop\",i=\"b\",le=\"+Inf\"}} {}\n",
            c[0], c[1], c[2], c[3]
        )
    };
    let other = lat("job=\"other\",", all([0.0, 0.0, 1000.0, 1000.0]));
    let texts = [
        lat("job=\"shop\",i=\"a\",", all([0.0, 0.0, 0.0, 0.0])) + &b([0.0; 4]) + &other,
        lat("job=\"shop\",i=\"a\",", all([20.0, 40.0, 50.0, 50.0]))
            + &b([30.0, 50.0, 50.0, 50.0])
            + &lat("job=\"other\",", all([0.0, 0.0, 9000.0, 9000.0])),
    ];
    // a + b: 50, 90, 100, 100 (the other job's slow requests are not selected).
    assert!(close(at_end(&mode, &texts, 10 * SEC), 0.35));
}

#[test]
fn non_monotonic_buckets_use_the_envelope() {
    // The 0.5 bucket claims fewer observations than the 0.1 one: taken as 50.
    let texts = [
        lat("", all([0.0, 0.0, 0.0, 0.0])),
        lat("", all([50.0, 40.0, 100.0, 100.0])),
    ];
    // p75: rank 75 in (0.5, 1], holding 50; 25 in: 0.5 + 0.5 × 0.5.
    assert!(close(at_end(&p(0.75), &texts, 10 * SEC), 0.75));
}

#[test]
fn a_quantile_baseline_is_the_mean_of_its_values() {
    let mode = p(0.5);
    let texts = [
        lat("", all([0.0, 0.0, 0.0, 0.0])),
        // +10 all ≤ 0.1: p50 = 0.05.
        lat("", all([10.0, 10.0, 10.0, 10.0])),
        // +10 all in (0.1, 0.5]: p50 = 0.3.
        lat("", all([10.0, 20.0, 20.0, 20.0])),
        // Quiet: no value, left out.
        lat("", all([10.0, 20.0, 20.0, 20.0])),
    ];
    let mut h = history(
        &mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    let b = baseline(h.points(), t(0.0), t(3.0), &mode, SEC).unwrap();
    assert!((b - 0.175).abs() < 1e-9, "{b}");
}

#[test]
fn a_quantile_description_is_its_promql() {
    let mode = ScrapeMode::Quantile {
        quantile: 0.9,
        buckets: sel("x_bucket", &[("job", "a")]),
    };
    assert_eq!(
        describe(&mode, 60 * SEC),
        "histogram_quantile(0.9, sum by (le) (rate(x_bucket{job=\"a\"}[1m])))"
    );
}

/// A gauge check with a `min_traffic` counter `c_total`, one scrape per second.
fn with_traffic(scrapes: &[Option<&str>]) -> (ScrapeMode, History) {
    let mode = ScrapeMode::Gauge(sel("g", &[]));
    let counter = sel("c_total", &[]);
    let mut h = History::new(100);
    for (i, text) in scrapes.iter().enumerate() {
        let exp = text.map(|x| parse(x).unwrap());
        let scrape = exp
            .as_ref()
            .ok_or_else(|| ScrapeError::Failed("HTTP 503".into()));
        h.record(t(i as f64), scrape, &selections(&mode, Some(&counter)));
    }
    (mode, h)
}

#[test]
fn the_traffic_rate_is_the_counters_increase_per_second_over_the_window() {
    let (mode, mut h) = with_traffic(&[
        Some("g 1\nc_total 0\n"),
        Some("g 1\nc_total 10\n"),
        Some("g 1\nc_total 30\n"),
    ]);
    let i = traffic_index(&mode);
    assert_eq!(i, 1);
    assert_eq!(traffic(h.points(), t(2.0), SEC, i, 10 * SEC), Ok(15.0));
    assert_eq!(traffic(h.points(), t(2.0), SEC, i, SEC), Ok(20.0));
    // The value judged is unaffected by the extra selector.
    assert_eq!(current(h.points(), t(2.0), SEC, &mode, SEC), Ok(1.0));
    // A counter not exported yet counts as 0: quiet.
    let (_, mut h) = with_traffic(&[Some("g 1\n"), Some("g 1\n")]);
    assert_eq!(traffic(h.points(), t(1.0), SEC, i, 10 * SEC), Ok(0.0));
}

#[test]
fn traffic_is_unknown_without_two_recent_successful_scrapes() {
    let (mode, mut h) = with_traffic(&[Some("g 1\nc_total 0\n")]);
    let i = traffic_index(&mode);
    assert_eq!(
        traffic(h.points(), t(0.0), SEC, i, 10 * SEC),
        Err(ScrapeError::TooFewScrapes(10 * SEC))
    );
    // Not "quiet" on a failed or stale newest scrape: the same error as the value's.
    let (_, mut h) = with_traffic(&[Some("g 1\nc_total 0\n"), Some("g 1\nc_total 5\n"), None]);
    assert_eq!(
        traffic(h.points(), t(2.0), SEC, i, 10 * SEC),
        Err(ScrapeError::Failed("HTTP 503".into()))
    );
    let (_, mut h) = with_traffic(&[Some("g 1\nc_total 0\n"), Some("g 1\nc_total 5\n")]);
    assert!(matches!(
        traffic(h.points(), t(9.0), SEC, i, 10 * SEC),
        Err(ScrapeError::Stale(_))
    ));
    assert_eq!(
        traffic(&[], t(0.0), SEC, i, 10 * SEC),
        Err(ScrapeError::NotYet)
    );
}
