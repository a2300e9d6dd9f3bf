//! Alert checks: both sources parse with their defaults; every mistake is named by its key.

use super::*;

/// The minimal config plus one alert check (`check[1]`) per body.
fn with_alerts(bodies: &[&str]) -> String {
    let mut toml = minimal("interval = \"10s\"", "");
    for (i, body) in bodies.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[watch.check]]\nname = \"a{i}\"\nkind = \"alert\"\n{body}\n"
        ));
    }
    toml
}

fn alert_probe(c: &Config, check: usize) -> AlertProbe {
    match &c.watches[0].checks[check].probe {
        Probe::Alert(p) => p.clone(),
        other => panic!("not an alert probe: {other:?}"),
    }
}

#[test]
fn both_sources_parse_with_their_defaults() {
    let dir = secrets();
    let toml = with_alerts(&[
        r#"source = "prometheus"
url = "http://prom:9090/"
labels = { service = "shop", severity = "page" }"#,
        r#"source = "alertmanager"
url = "https://am:9093"
labels = { service = "shop" }
include_silenced = true
failure_limit = 2
timeout = "1s""#,
    ]);
    let c = load_str(&toml, dir.path()).unwrap();
    let p = alert_probe(&c, 1);
    assert_eq!(p.source, AlertSource::Prometheus);
    assert_eq!(p.url, "http://prom:9090");
    assert_eq!(p.labels.len(), 2);
    assert!(!p.include_silenced);
    let check = &c.watches[0].checks[1];
    assert_eq!(check.rules, vec![Rule::NoNewAlert]);
    assert_eq!(check.failure_limit, 1, "the alert's own `for` confirms it");
    assert_eq!(check.min_failure_for, Duration::ZERO);
    let p = alert_probe(&c, 2);
    assert_eq!(p.source, AlertSource::Alertmanager);
    assert!(p.include_silenced);
    assert_eq!(p.timeout, Duration::from_secs(1));
    assert_eq!(c.watches[0].checks[2].failure_limit, 2);
}

#[test]
fn alert_mistakes_are_named_by_key() {
    let dir = secrets();
    let toml = with_alerts(&[
        // a0: nothing but the kind.
        "",
        // a1: an unknown source, no labels at all.
        r#"source = "grafana"
url = "http://g""#,
        // a2: empty labels; include_silenced on prometheus.
        r#"source = "prometheus"
url = "ftp://prom"
labels = {}
include_silenced = true"#,
        // a3: thresholds, query and other kinds' keys.
        r#"source = "prometheus"
url = "http://prom"
labels = { service = "shop" }
max = 1
min_ratio = 0.5
query = "up"
expect_status = [200]
unreachable = "fail"
no_data = "pass"
min_traffic = { query = "x", min = 1 }"#,
        // a4: bad label names and values.
        r#"source = "alertmanager"
url = "http://am"
labels = { "bad-name" = "x", service = "", n = 1 }"#,
    ]);
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].check[1].source: is required",
        "watch[0].check[1].url: ",
        "watch[0].check[1].labels: is required",
        "watch[0].check[2].source: unknown value \"grafana\"",
        "watch[0].check[2].labels: is required",
        "watch[0].check[3].url: \"ftp://prom\" must start with http:// or https://",
        "watch[0].check[3].labels: needs at least one label: an alert check matching every alert would condemn every release",
        "watch[0].check[3].include_silenced: only applies to source = \"alertmanager\"",
        "watch[0].check[4].max: is not a setting of alert checks",
        "watch[0].check[4].min_ratio: is not a setting of alert checks",
        "watch[0].check[4].query: is not a setting of alert checks",
        "watch[0].check[4].expect_status: is not a setting of alert checks",
        "watch[0].check[4].unreachable: is not a setting of alert checks",
        "watch[0].check[4].no_data: does not apply to alert checks",
        "watch[0].check[4].min_traffic: applies to prometheus and scrape checks only",
        "watch[0].check[5].labels.bad-name: is not a Prometheus label name",
        "watch[0].check[5].labels.service: must not be empty",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("unknown key"), "{joined}");
}

#[test]
fn alert_urls_are_masked_in_debug_and_errors() {
    let dir = secrets();
    let toml = with_alerts(&[r#"source = "alertmanager"
url = "https://user:s3cr3t@am:9093?token=s3cr3t"
labels = { service = "shop" }"#]);
    let c = load_str(&toml, dir.path()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("AlertProbe"), "{debug}");
    let toml = with_alerts(&[r#"source = "alertmanager"
url = "hxxp://user:s3cr3t@am:9093"
labels = { service = "shop" }"#]);
    let joined = errors(&toml, dir.path()).join("\n");
    assert!(!joined.contains("s3cr3t"), "{joined}");
}
