//! Scrape checks: every mode parses with its defaults; every mistake is named by its key.

use super::*;

/// The minimal config plus one scrape check (`check[1]`) per body.
fn with_scrapes(bodies: &[&str]) -> String {
    let mut toml = minimal("interval = \"10s\"", "");
    for (i, body) in bodies.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[watch.check]]\nname = \"s{i}\"\nkind = \"scrape\"\nurl = \"http://app:9100/metrics\"\n{body}\n"
        ));
    }
    toml
}

fn selector(metric: &str, labels: &[(&str, &str)]) -> SeriesSelector {
    SeriesSelector {
        metric: metric.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), crate::config::LabelMatch::Eq(v.to_string())))
            .collect(),
    }
}

fn scrape_probe(c: &Config, check: usize) -> ScrapeProbe {
    match &c.watches[0].checks[check].probe {
        Probe::Scrape(p) => p.clone(),
        other => panic!("not a scrape probe: {other:?}"),
    }
}

#[test]
fn every_mode_parses_with_its_defaults() {
    let dir = secrets();
    let toml = with_scrapes(&[
        r#"metric = "queue_depth"
max = 100"#,
        r#"mode = "rate"
metric = "orders_total"
labels = { shop = "eu", code = 200 }
min_ratio = 0.5
timeout = "2s""#,
        r#"mode = "ratio"
numerator = { metric = "http_requests_total", labels = { code = "500" } }
denominator = { metric = "http_requests_total" }
rate_window = "2m"
baseline_window = "30m"
max = 0.05
max_ratio = 3"#,
    ]);
    let c = load_str(&toml, dir.path()).unwrap();
    let gauge = scrape_probe(&c, 1);
    assert_eq!(gauge.url, "http://app:9100/metrics");
    assert_eq!(gauge.mode, ScrapeMode::Gauge(selector("queue_depth", &[])));
    // min(5s, 0.8 x fast_interval (10s / 5 = 2s)).
    assert_eq!(gauge.timeout, Duration::from_millis(1600));
    assert_eq!(gauge.baseline_window, None);
    assert_eq!(c.watches[0].checks[1].rules, vec![Rule::Max(100.0)]);

    let rate = scrape_probe(&c, 2);
    assert_eq!(
        rate.mode,
        ScrapeMode::Rate(selector("orders_total", &[("code", "200"), ("shop", "eu")]))
    );
    assert_eq!(rate.rate_window, Duration::from_secs(60));
    assert_eq!(rate.baseline_window, Some(Duration::from_secs(600)));
    assert_eq!(rate.timeout, Duration::from_secs(2));

    let ratio = scrape_probe(&c, 3);
    assert_eq!(
        ratio.mode,
        ScrapeMode::Ratio {
            numerator: selector("http_requests_total", &[("code", "500")]),
            denominator: selector("http_requests_total", &[]),
        }
    );
    assert_eq!(ratio.rate_window, Duration::from_secs(120));
    assert_eq!(ratio.baseline_window, Some(Duration::from_secs(1800)));
    assert_eq!(
        c.watches[0].checks[3].rules,
        vec![Rule::Max(0.05), Rule::MaxRatio(3.0)]
    );
    assert!(c.watches[0].needs_baseline());
}

#[test]
fn scrape_mistakes_are_named_by_key() {
    let dir = secrets();
    let toml = with_scrapes(&[
        // check[1]: ratio without its tables' required keys, and a stray metric.
        r#"mode = "ratio"
metric = "x"
numerator = { labels = { code = "500" }, lables = {} }
max = 1"#,
        // check[2]: no denominator, no rule, a window shorter than two intervals.
        r#"mode = "ratio"
numerator = { metric = "a_total" }
rate_window = "15s""#,
        // check[3]: a gauge with rate-only keys and bad names.
        r#"metric = "9lives"
labels = { "bad-label" = "x" }
rate_window = "1m"
denominator = { metric = "y" }
max = 1"#,
        // check[4]: unknown mode; keys of other kinds.
        r#"mode = "histogram"
metric = "x"
query = "up"
expect_status = [200]
max = 1"#,
        // check[5]: labels that are not a table, a rate without a metric.
        r#"mode = "rate"
labels = "code=500"
max = 1"#,
    ]);
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].check[1].metric: does not apply to mode = \"ratio\"",
        "watch[0].check[1].numerator.metric: is required",
        "watch[0].check[1].numerator.lables: unknown key",
        "watch[0].check[1].denominator: is required with mode = \"ratio\"",
        "watch[0].check[2].denominator: is required with mode = \"ratio\"",
        "watch[0].check[2].max: a scrape check needs a rule",
        "watch[0].check[2].rate_window: 15s is shorter than two intervals (20s)",
        "watch[0].check[3].metric: \"9lives\" is not a metric name",
        "watch[0].check[3].labels.bad-label: is not a label name",
        "watch[0].check[3].rate_window: only applies to mode = \"rate\", \"ratio\" or \"quantile\", or with min_traffic",
        "watch[0].check[3].denominator: only applies to mode = \"ratio\"",
        "watch[0].check[4].mode: unknown value \"histogram\"",
        "watch[0].check[4].query: is not a setting of scrape checks",
        "watch[0].check[4].expect_status: is not a setting of scrape checks",
        "watch[0].check[5].labels: expected a table, found a string",
        "watch[0].check[5].metric: is required",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    for key in ["check[3].denominator", "check[4].metric"] {
        assert!(
            !joined.contains(&format!("{key}: unknown key")),
            "{key} is reported once:\n{joined}"
        );
    }
}

#[test]
fn the_default_rate_window_must_fit_two_intervals() {
    let dir = secrets();
    let toml = with_scrapes(&["mode = \"rate\"\nmetric = \"a_total\"\nmax = 1"])
        .replace("interval = \"10s\"", "interval = \"45s\"\nwindow = \"10m\"");
    let joined = errors(&toml, dir.path()).join("\n");
    assert!(
        joined.contains(
            "watch[0].check[1].rate_window: the default 1m is shorter than two intervals (1m 30s)"
        ),
        "{joined}"
    );
}

#[test]
fn scrape_keys_on_other_kinds_are_named() {
    let dir = secrets();
    let toml = minimal("", "").replace(
        "url = \"http://app/health\"",
        "url = \"http://app/health\"\nmetric = \"x\"\nlabels = { a = \"b\" }\nnumerator = { metric = \"y\" }\nmode = \"rate\"",
    );
    let joined = errors(&toml, dir.path()).join("\n");
    for key in ["metric", "labels", "numerator", "mode"] {
        let needle = format!("watch[0].check[0].{key}: is not a setting of http checks");
        assert!(joined.contains(&needle), "missing {needle:?} in:\n{joined}");
        assert!(
            !joined.contains(&format!("check[0].{key}: unknown key")),
            "{joined}"
        );
    }
}

#[test]
fn label_matchers_parse_and_bad_ones_are_named() {
    use crate::config::LabelMatch;
    let dir = secrets();
    let toml = with_scrapes(&[r#"mode = "ratio"
numerator = { metric = "http_requests_total", labels = { code = { regex = "5.." }, path = { not = "/health" } } }
denominator = { metric = "http_requests_total", labels = { code = { not_regex = "1.." } } }
max = 0.05"#]);
    let c = load_str(&toml, dir.path()).unwrap();
    let ScrapeMode::Ratio {
        numerator,
        denominator,
    } = scrape_probe(&c, 1).mode
    else {
        panic!("not a ratio");
    };
    assert!(
        matches!(&numerator.labels["code"], LabelMatch::Re(r) if r.is_match("503") && !r.is_match("1503"))
    );
    assert_eq!(numerator.labels["path"], LabelMatch::Ne("/health".into()));
    assert!(matches!(&denominator.labels["code"], LabelMatch::NotRe(_)));
    let bad = with_scrapes(&[r#"metric = "x"
labels = { code = { regex = "5((" }, path = { like = "/x" }, method = "!=GET", job = "=~shop.*" }
max = 1"#]);
    let err = load_str(&bad, dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("labels.code.regex: is not a valid regex"),
        "{err}"
    );
    assert!(
        err.contains("labels.path: expected a string or one of"),
        "{err}"
    );
    // A PromQL operator in a plain value would select nothing, silently.
    for hint in [
        r#"labels.method: "!=GET" would match the text "!=GET" exactly (a plain string is `=`); for PromQL's method!="GET" write method = { not = "GET" }"#,
        r#"labels.job: "=~shop.*" would match the text "=~shop.*" exactly (a plain string is `=`); for PromQL's job=~"shop.*" write job = { regex = "shop.*" }"#,
    ] {
        assert!(err.contains(hint), "missing {hint:?} in {err}");
    }
}

#[test]
fn quantile_mode_parses_with_every_matcher_kind() {
    use crate::config::LabelMatch;
    let dir = secrets();
    let toml = with_scrapes(&[r#"mode = "quantile"
quantile = 0.9
metric = "http_request_duration_seconds_bucket"
labels = { job = "shop", path = { regex = "/api/.*" }, code = { not = "500" } }
rate_window = "2m"
baseline_window = "30m"
max = 0.5
max_ratio = 2"#]);
    let c = load_str(&toml, dir.path()).unwrap();
    let p = scrape_probe(&c, 1);
    let ScrapeMode::Quantile { quantile, buckets } = &p.mode else {
        panic!("not a quantile: {:?}", p.mode);
    };
    assert_eq!(*quantile, 0.9);
    assert_eq!(buckets.metric, "http_request_duration_seconds_bucket");
    assert_eq!(buckets.labels["job"], LabelMatch::Eq("shop".into()));
    assert!(matches!(&buckets.labels["path"], LabelMatch::Re(r) if r.is_match("/api/x")));
    assert_eq!(buckets.labels["code"], LabelMatch::Ne("500".into()));
    assert_eq!(p.rate_window, Duration::from_secs(120));
    assert_eq!(p.baseline_window, Some(Duration::from_secs(1800)));
    assert_eq!(
        c.watches[0].checks[1].rules,
        vec![Rule::Max(0.5), Rule::MaxRatio(2.0)]
    );
    // The default window, and the bounds of quantile themselves.
    let toml = with_scrapes(&[
        "mode = \"quantile\"\nquantile = 0\nmetric = \"x_bucket\"\nmax = 1",
        "mode = \"quantile\"\nquantile = 1\nmetric = \"x_bucket\"\nmax = 1",
    ]);
    let c = load_str(&toml, dir.path()).unwrap();
    assert_eq!(scrape_probe(&c, 1).rate_window, Duration::from_secs(60));
    assert!(matches!(
        scrape_probe(&c, 2).mode,
        ScrapeMode::Quantile { quantile, .. } if quantile == 1.0
    ));
}

#[test]
fn quantile_mistakes_are_named_by_key() {
    let dir = secrets();
    let toml = with_scrapes(&[
        // check[1]: no quantile.
        "mode = \"quantile\"\nmetric = \"x_bucket\"\nmax = 1",
        // check[2]: out of range.
        "mode = \"quantile\"\nquantile = 1.5\nmetric = \"x_bucket\"\nmax = 1",
        // check[3]: not a number.
        "mode = \"quantile\"\nquantile = \"p90\"\nmetric = \"x_bucket\"\nmax = 1",
        // check[4]: not a bucket series, and le selected.
        "mode = \"quantile\"\nquantile = 0.9\nmetric = \"http_request_duration_seconds\"\nlabels = { le = \"0.5\" }\nmax = 1",
        // check[5]: quantile on another mode.
        "mode = \"rate\"\nquantile = 0.9\nmetric = \"x_total\"\nmax = 1",
        // check[6]: a window shorter than two intervals; a negative quantile.
        "mode = \"quantile\"\nquantile = -0.1\nmetric = \"x_bucket\"\nrate_window = \"15s\"\nmax = 1",
        // check[7]: quantile on a gauge.
        "metric = \"g\"\nquantile = 0.5\nmax = 1",
    ]);
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].check[1].quantile: is required with mode = \"quantile\"",
        "watch[0].check[2].quantile: must be a number from 0 to 1 (0.9 for p90), found 1.5",
        "watch[0].check[3].quantile: expected a finite number",
        "watch[0].check[4].metric: \"http_request_duration_seconds\" is not a histogram's bucket series",
        "(e.g. http_request_duration_seconds_bucket)",
        "watch[0].check[4].labels.le: cannot be selected with mode = \"quantile\"",
        "watch[0].check[5].quantile: only applies to mode = \"quantile\"",
        "watch[0].check[6].rate_window: 15s is shorter than two intervals (20s)",
        "watch[0].check[6].quantile: must be a number from 0 to 1 (0.9 for p90), found -0.1",
        "watch[0].check[7].quantile: only applies to mode = \"quantile\"",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("quantile: unknown key"), "{joined}");
    // On another kind, quantile is misplaced, not unknown.
    let toml = minimal("", "").replace(
        "url = \"http://app/health\"",
        "url = \"http://app/health\"\nquantile = 0.9",
    );
    let joined = errors(&toml, dir.path()).join("\n");
    assert!(
        joined.contains("watch[0].check[0].quantile: is not a setting of http checks"),
        "{joined}"
    );
    assert!(!joined.contains("quantile: unknown key"), "{joined}");
}

#[test]
fn min_traffic_on_scrape_checks_is_a_counter_selector() {
    use crate::config::{LabelMatch, MinTraffic, TrafficSource};
    let dir = secrets();
    let toml = with_scrapes(&[
        // A gauge may take rate_window: the traffic rate is taken over it.
        r#"metric = "queue_depth"
max = 100
rate_window = "30s"
min_traffic = { metric = "http_requests_total", labels = { code = { not_regex = "5.." } }, min = 0.5 }"#,
        r#"mode = "quantile"
quantile = 0.99
metric = "lat_bucket"
max = 1
min_traffic = { metric = "http_requests_total", min = 2 }"#,
    ]);
    let c = load_str(&toml, dir.path()).unwrap();
    let m = c.watches[0].checks[1].min_traffic.clone().unwrap();
    assert_eq!(m.min, 0.5);
    let TrafficSource::Series(s) = &m.source else {
        panic!("not a series: {m:?}");
    };
    assert_eq!(s.metric, "http_requests_total");
    assert!(matches!(&s.labels["code"], LabelMatch::NotRe(r) if r.is_match("503")));
    assert_eq!(scrape_probe(&c, 1).rate_window, Duration::from_secs(30));
    assert_eq!(
        c.watches[0].checks[2].min_traffic,
        Some(MinTraffic {
            min: 2.0,
            source: TrafficSource::Series(selector("http_requests_total", &[])),
        })
    );

    let toml = with_scrapes(&[
        // check[1]: a prometheus query on a scrape check, no metric, no min.
        r#"mode = "rate"
metric = "x_total"
max = 1
min_traffic = { query = "sum(rate(x_total[1m]))" }"#,
        // check[2]: a bad metric name and label name.
        r#"mode = "rate"
metric = "x_total"
max = 1
min_traffic = { metric = "9x", labels = { "a-b" = "1" }, min = 1 }"#,
        // check[3]: a gauge whose default rate_window cannot hold two intervals of 45s.
        r#"metric = "g"
max = 1
min_traffic = { metric = "x_total", min = 1 }"#,
    ])
    .replace("interval = \"10s\"", "interval = \"45s\"\nwindow = \"10m\"");
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].check[1].min_traffic.query: scrape checks take metric and labels",
        "watch[0].check[1].min_traffic.metric: is required",
        "watch[0].check[1].min_traffic.min: is required",
        "watch[0].check[2].min_traffic.metric: \"9x\" is not a metric name",
        "watch[0].check[2].min_traffic.labels.a-b: is not a label name",
        "watch[0].check[3].rate_window: the default 1m is shorter than two intervals (1m 30s)",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("unknown key"), "{joined}");
}
