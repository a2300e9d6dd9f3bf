//! Selection, counter maths, staleness and baselines of scrape checks.

use super::super::parse::parse;
use super::super::select::*;
use super::*;
use crate::config::SeriesSelector;

fn sel(metric: &str, labels: &[(&str, &str)]) -> SeriesSelector {
    SeriesSelector {
        metric: metric.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), crate::config::LabelMatch::Eq(v.to_string())))
            .collect(),
    }
}

/// Seconds after the epoch.
fn t(secs: f64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

const SEC: Duration = Duration::from_secs(1);

fn errors_ratio() -> ScrapeMode {
    ScrapeMode::Ratio {
        numerator: sel("http_requests_total", &[("code", "500")]),
        denominator: sel("http_requests_total", &[]),
    }
}

/// A history fed one exposition text per second from t=0; `None` is a failed scrape.
fn history(mode: &ScrapeMode, scrapes: &[Option<&str>]) -> History {
    let mut h = History::new(1000);
    for (i, text) in scrapes.iter().enumerate() {
        let exp = text.map(|x| parse(x).unwrap());
        let scrape = exp
            .as_ref()
            .ok_or_else(|| ScrapeError::Failed("HTTP 503".into()));
        h.record(t(i as f64), scrape, &selections(mode, None));
    }
    h
}

fn requests(ok: u32, errors: u32) -> String {
    format!(
        "http_requests_total{{code=\"200\"}} {ok}\nhttp_requests_total{{code=\"500\"}} {errors}\n"
    )
}

#[test]
fn label_selection_is_a_subset_match_on_the_full_name() {
    let exp = parse(
        "x_total{a=\"1\",b=\"2\"} 1\nx_total{a=\"1\",b=\"3\"} 2\nx_total{a=\"2\"} 4\nx_total 8\nx 16\n",
    )
    .unwrap();
    let sum = |s: &SeriesSelector| select(&exp, s).unwrap().values().sum::<f64>();
    assert_eq!(sum(&sel("x_total", &[])), 15.0, "no labels: every series");
    assert_eq!(
        sum(&sel("x_total", &[("a", "1")])),
        3.0,
        "unlisted labels are free"
    );
    assert_eq!(sum(&sel("x_total", &[("a", "1"), ("b", "3")])), 2.0);
    assert_eq!(
        sum(&sel("x_total", &[("a", "")])),
        8.0,
        "empty = label absent"
    );
    assert_eq!(sum(&sel("x_total", &[("a", "9")])), 0.0);
    assert_eq!(
        sum(&sel("x", &[])),
        16.0,
        "names match exactly, not by prefix"
    );
    assert_eq!(select(&exp, &sel("x_total", &[])).unwrap().len(), 4);
}

#[test]
fn histogram_and_summary_parts_are_selectable_by_full_name() {
    let exp = parse(
        "# TYPE lat histogram\nlat_bucket{le=\"0.1\"} 5\nlat_bucket{le=\"+Inf\"} 9\nlat_sum 1.5\nlat_count 9\n\
         # TYPE rpc summary\nrpc{quantile=\"0.9\"} 0.25\nrpc_count 7\n",
    )
    .unwrap();
    let one = |s: SeriesSelector| select(&exp, &s).unwrap().values().sum::<f64>();
    assert_eq!(one(sel("lat_bucket", &[("le", "+Inf")])), 9.0);
    assert_eq!(one(sel("lat_bucket", &[("le", "0.1")])), 5.0);
    assert_eq!(one(sel("lat_count", &[])), 9.0);
    assert_eq!(one(sel("lat_sum", &[])), 1.5);
    assert_eq!(one(sel("rpc", &[("quantile", "0.9")])), 0.25);
    assert_eq!(one(sel("rpc_count", &[])), 7.0);
}

#[test]
fn nan_or_infinite_selected_series_are_errors_naming_the_series() {
    let exp = parse("x{a=\"1\"} NaN\nx{a=\"2\"} +Inf\nx{a=\"3\"} 1\ny NaN\n").unwrap();
    for (s, needle) in [
        (sel("x", &[("a", "1")]), "series x{a=\"1\"} is NaN"),
        (sel("x", &[("a", "2")]), "series x{a=\"2\"} is inf"),
    ] {
        let e = select(&exp, &s).unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
    }
    assert_eq!(
        select(&exp, &sel("x", &[("a", "3")])).unwrap().len(),
        1,
        "unselected NaN is fine"
    );
    let mode = ScrapeMode::Gauge(sel("y", &[]));
    let h = history(&mode, &[Some("y NaN\n")]).points().to_vec();
    assert!(matches!(
        current(&h, t(0.0), SEC, &mode, SEC),
        Err(ScrapeError::NotANumber { .. })
    ));
}

#[test]
fn increase_handles_resets_late_and_vanished_series() {
    let snap = |pairs: &[(&str, f64)]| -> Snapshot {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    let prev = snap(&[("a", 10.0), ("b", 5.0), ("gone", 100.0)]);
    assert_eq!(increase(&prev, &snap(&[("a", 12.0), ("b", 5.0)])), 2.0);
    assert_eq!(
        increase(&prev, &snap(&[("a", 3.0), ("b", 6.0)])),
        4.0,
        "a reset: 3 + 1"
    );
    assert_eq!(
        increase(&prev, &snap(&[("a", 10.0), ("new", 50.0)])),
        0.0,
        "late series"
    );
    assert_eq!(increase(&snap(&[]), &snap(&[("a", 7.0)])), 0.0);
}

#[test]
fn gauge_is_the_newest_value_summed() {
    let mode = ScrapeMode::Gauge(sel("lat", &[]));
    let mut h = history(
        &mode,
        &[
            Some("lat{i=\"a\"} 1\nlat{i=\"b\"} 2\n"),
            Some("lat{i=\"a\"} 3\n"),
        ],
    );
    assert_eq!(current(h.points(), t(1.0), SEC, &mode, SEC), Ok(3.0));
    let none = ScrapeMode::Gauge(sel("lat", &[("i", "zzz")]));
    let mut h = history(&none, &[Some("lat{i=\"a\"} 1\n")]);
    assert_eq!(
        current(h.points(), t(0.0), SEC, &none, SEC),
        Err(ScrapeError::NoSeries("lat{i=\"zzz\"}".into()))
    );
}

#[test]
fn rate_is_the_increase_over_the_window_per_second() {
    let mode = ScrapeMode::Rate(sel("c_total", &[]));
    let texts: Vec<String> = [0, 10, 20, 40, 80, 100]
        .iter()
        .map(|v| format!("c_total {v}\n"))
        .collect();
    let mut h = history(
        &mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    // Window 2s at t=5: points t=3,4,5 → (100 - 40) / 2s.
    assert_eq!(current(h.points(), t(5.0), SEC, &mode, 2 * SEC), Ok(30.0));
    // A window wider than the history uses what there is: 100 / 5s.
    assert_eq!(current(h.points(), t(5.0), SEC, &mode, 60 * SEC), Ok(20.0));
}

#[test]
fn a_counter_reset_is_not_a_negative_rate_nor_a_spike() {
    let mode = ScrapeMode::Rate(sel("c_total", &[]));
    // Two series; one restarts from 0 at t=2 (1000 → 4): increments 10, 4+10, 10.
    let texts = [
        "c_total{i=\"a\"} 1000\nc_total{i=\"b\"} 0\n",
        "c_total{i=\"a\"} 1005\nc_total{i=\"b\"} 5\n",
        "c_total{i=\"a\"} 4\nc_total{i=\"b\"} 15\n",
        "c_total{i=\"a\"} 9\nc_total{i=\"b\"} 20\n",
    ];
    let mut h = history(&mode, &texts.map(Some));
    assert_eq!(
        current(h.points(), t(3.0), SEC, &mode, 10 * SEC),
        Ok(34.0 / 3.0)
    );
}

#[test]
fn a_late_series_counts_from_its_first_value() {
    let mode = errors_ratio();
    let texts = [
        "http_requests_total{code=\"200\"} 100\n".to_string(),
        "http_requests_total{code=\"200\"} 110\n".to_string(),
        // The first 5xx series appears with 4 errors already counted: the gap counts nothing.
        "http_requests_total{code=\"200\"} 120\nhttp_requests_total{code=\"500\"} 4\n".to_string(),
        requests(130, 6),
    ];
    let mut h = history(
        &mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    // Numerator 2; denominator 10 + 10 + 12 = 32.
    assert_eq!(
        current(h.points(), t(3.0), SEC, &mode, 10 * SEC),
        Ok(2.0 / 32.0)
    );
    // Before the first 5xx: a ratio of 0, not an error.
    let mut h = history(
        &mode,
        &texts[..2]
            .iter()
            .map(|s| Some(s.as_str()))
            .collect::<Vec<_>>(),
    );
    assert_eq!(current(h.points(), t(1.0), SEC, &mode, 10 * SEC), Ok(0.0));
}

#[test]
fn ratio_is_numerator_increase_over_denominator_increase() {
    let mode = errors_ratio();
    let texts = [requests(100, 0), requests(190, 10), requests(280, 20)];
    let mut h = history(
        &mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    assert_eq!(current(h.points(), t(2.0), SEC, &mode, 10 * SEC), Ok(0.1));
}

#[test]
fn no_denominator_increase_is_no_traffic_an_error() {
    let mode = errors_ratio();
    let texts = [requests(100, 1), requests(100, 1)];
    let mut h = history(
        &mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    let e = current(h.points(), t(1.0), SEC, &mode, 10 * SEC).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no traffic: http_requests_total did not increase over the last 10s"
    );
}

#[test]
fn a_rate_needs_two_successful_scrapes_in_its_window() {
    let mode = ScrapeMode::Rate(sel("c_total", &[]));
    let mut h = history(&mode, &[Some("c_total 1\n")]);
    assert_eq!(
        current(h.points(), t(0.0), SEC, &mode, 10 * SEC),
        Err(ScrapeError::TooFewScrapes(10 * SEC))
    );
    // Points outside the window do not count.
    let mut h = history(
        &mode,
        &[Some("c_total 1\n"), None, None, Some("c_total 5\n")],
    );
    assert_eq!(
        current(h.points(), t(3.0), SEC, &mode, 2 * SEC),
        Err(ScrapeError::TooFewScrapes(2 * SEC))
    );
}

#[test]
fn failed_scrapes_are_gaps_bridged_by_the_next_good_one() {
    let mode = ScrapeMode::Rate(sel("c_total", &[]));
    let mut h = history(
        &mode,
        &[
            Some("c_total 0\n"),
            Some("c_total 10\n"),
            None,
            None,
            Some("c_total 40\n"),
        ],
    );
    // 40 over 4 seconds; the failed scrapes are neither points nor resets.
    assert_eq!(current(h.points(), t(4.0), SEC, &mode, 10 * SEC), Ok(10.0));
    // A NaN scrape is a gap too, and does not move the reference point.
    let mut h = history(
        &mode,
        &[
            Some("c_total 0\n"),
            Some("c_total NaN\n"),
            Some("c_total 20\n"),
        ],
    );
    assert_eq!(current(h.points(), t(2.0), SEC, &mode, 10 * SEC), Ok(10.0));
}

#[test]
fn the_newest_scrape_must_be_recent_and_successful() {
    let mode = ScrapeMode::Gauge(sel("g", &[]));
    assert_eq!(
        current(&[], t(0.0), SEC, &mode, SEC),
        Err(ScrapeError::NotYet)
    );
    let mut h = history(&mode, &[Some("g 1\n"), None]);
    let e = current(h.points(), t(1.0), SEC, &mode, SEC).unwrap_err();
    assert_eq!(e.to_string(), "scrape failed: HTTP 503");
    let mut h = history(&mode, &[Some("g 1\n")]);
    assert_eq!(
        current(h.points(), t(2.0), SEC, &mode, SEC),
        Ok(1.0),
        "two intervals is fine"
    );
    let e = current(h.points(), t(2.5), SEC, &mode, SEC).unwrap_err();
    assert_eq!(
        e.to_string(),
        "scrape failed: the newest scrape is 2s 500ms old"
    );
}

#[test]
fn history_is_bounded() {
    let mode = ScrapeMode::Gauge(sel("g", &[]));
    let mut h = History::new(3);
    let exp = parse("g 1\n").unwrap();
    for i in 0..10 {
        h.record(t(i as f64), Ok(&exp), &selections(&mode, None));
    }
    let points = h.points();
    assert_eq!(points.len(), 3);
    assert_eq!(points[0].at, t(7.0));
}

#[test]
fn baseline_is_the_mean_over_the_window_before_the_deployment() {
    let mode = ScrapeMode::Gauge(sel("g", &[]));
    let texts = ["g 100\n", "g 1\n", "g 2\n", "g 3\n", "g 50\n"];
    let mut h = history(&mode, &texts.map(Some));
    let points = h.points();
    assert_eq!(baseline(points, t(1.0), t(3.0), &mode, SEC), Ok(2.0));
    assert_eq!(
        baseline(points, t(10.0), t(20.0), &mode, SEC),
        Err(ScrapeError::NoBaseline)
    );
    // Failed scrapes are left out, not zeros.
    let mut h = history(&mode, &[Some("g 4\n"), None, Some("g 6\n")]);
    assert_eq!(baseline(h.points(), t(0.0), t(2.0), &mode, SEC), Ok(5.0));
}

#[test]
fn rate_and_ratio_baselines_average_the_values_they_could_compute() {
    let rate = ScrapeMode::Rate(sel("c_total", &[]));
    let texts: Vec<String> = [0, 10, 30, 60]
        .iter()
        .map(|v| format!("c_total {v}\n"))
        .collect();
    let mut h = history(
        &rate,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    // Rates over 1s at t=1,2,3: 10, 20, 30 (t=0 has none).
    assert_eq!(baseline(h.points(), t(0.0), t(3.0), &rate, SEC), Ok(20.0));
    let ratio = errors_ratio();
    let texts = [
        requests(0, 0),
        requests(9, 1),
        requests(9, 1),
        requests(12, 4),
    ];
    let mut h = history(
        &ratio,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    // Ratios over 1s: 0.1 at t=1, no traffic at t=2 (left out), 0.5 at t=3.
    let b = baseline(h.points(), t(0.0), t(3.0), &ratio, SEC).unwrap();
    assert!((b - 0.3).abs() < 1e-12, "{b}");
}

#[test]
fn descriptions_are_promql() {
    assert_eq!(
        describe(&errors_ratio(), 60 * SEC),
        "sum(increase(http_requests_total{code=\"500\"}[1m])) / sum(increase(http_requests_total[1m]))"
    );
    assert_eq!(
        describe(
            &ScrapeMode::Rate(sel("c_total", &[("b", "x\"y"), ("a", "1")])),
            90 * SEC
        ),
        "sum(rate(c_total{a=\"1\",b=\"x\\\"y\"}[1m30s]))"
    );
    assert_eq!(describe(&ScrapeMode::Gauge(sel("g", &[])), SEC), "sum(g)");
}

#[test]
fn label_matchers_beyond_equality_are_anchored_like_promql() {
    use crate::config::LabelMatch;
    let exp = parse(
        "h_total{code=\"200\"} 1\nh_total{code=\"500\"} 2\nh_total{code=\"503\"} 4\nh_total{code=\"1503\"} 8\nh_total 16\n",
    )
    .unwrap();
    let with = |m: LabelMatch| SeriesSelector {
        metric: "h_total".into(),
        labels: [("code".to_string(), m)].into(),
    };
    let sum = |s: &SeriesSelector| select(&exp, s).unwrap().values().sum::<f64>();
    let re = |p: &str| LabelMatch::anchored(p).unwrap();
    assert_eq!(
        sum(&with(LabelMatch::Re(re("5..")))),
        6.0,
        "all 5xx, not 1503"
    );
    assert_eq!(
        sum(&with(LabelMatch::NotRe(re("2..")))),
        30.0,
        "the unlabelled series too"
    );
    assert_eq!(sum(&with(LabelMatch::Ne("200".into()))), 30.0);
    assert_eq!(
        sum(&with(LabelMatch::Eq("".into()))),
        16.0,
        "\"\" is a missing label"
    );
    assert_eq!(
        selector_text(&with(LabelMatch::Re(re("5..")))),
        "h_total{code=~\"5..\"}"
    );
}

#[test]
fn a_resumed_history_keeps_its_baseline_and_rates_do_not_span_the_restart() {
    let mode = ScrapeMode::Rate(sel("c_total", &[]));
    // 10/s for t=0..5, stored; backstop down until t=20; the counter went on at 10/s.
    let texts: Vec<String> = (0..6).map(|i| format!("c_total {}\n", i * 10)).collect();
    let mut before = history(
        &mode,
        &texts.iter().map(|s| Some(s.as_str())).collect::<Vec<_>>(),
    );
    let stored = before.points().to_vec();
    let mut h = History::resume(1000, stored.clone());
    assert_eq!(h.points(), &stored[..]);
    assert_eq!(
        baseline(h.points(), t(0.0), t(5.0), &mode, 60 * SEC),
        Ok(10.0)
    );
    let sels = selections(&mode, None);
    for (secs, v) in [(20.0, 200), (21.0, 210)] {
        h.record(
            t(secs),
            Ok(&parse(&format!("c_total {v}\n")).unwrap()),
            &sels,
        );
    }
    assert_eq!(h.points()[6].measures.as_ref().unwrap()[0].increase, None);
    // Over a 60s window: 10/s from the two scrapes since the restart, not 160/21s with the
    // 15s gap counted as no traffic.
    assert_eq!(current(h.points(), t(21.0), SEC, &mode, 60 * SEC), Ok(10.0));
    let one = &h.points()[..7];
    assert_eq!(
        value(one, &mode, 60 * SEC),
        Err(ScrapeError::TooFewScrapes(60 * SEC)),
        "one scrape since the restart is not a rate"
    );
}

#[test]
fn resuming_keeps_the_newest_points_within_capacity() {
    let mode = ScrapeMode::Gauge(sel("g", &[]));
    let mut h = history(&mode, &[Some("g 1\n"), Some("g 2\n"), Some("g 3\n")]);
    let mut small = History::resume(2, h.points().to_vec());
    assert_eq!(small.points(), &h.points()[1..]);
}

#[test]
fn recent_points_are_those_within_keep_in_time_order() {
    let mode = ScrapeMode::Gauge(sel("g", &[]));
    let mut h = history(
        &mode,
        &[Some("g 0\n"), Some("g 1\n"), Some("g 2\n"), Some("g 3\n")],
    );
    let mut points = h.points().to_vec();
    points.swap(1, 2);
    let kept = recent(points, t(2.0), SEC);
    // t=0 is older than 1s; t=3 lies after "now" (the clock was set back).
    assert_eq!(kept, h.points()[1..3].to_vec());
}

#[path = "maths_quantile_tests.rs"]
mod quantile;
