//! Slo checks: every key parses with its default; every mistake is named by its key.

use super::*;

const GOOD: &str = r#"good = 'sum(increase(http_requests_total{code!~"5.."}[$window]))'"#;
const TOTAL: &str = r#"total = 'sum(increase(http_requests_total[$window]))'"#;

/// The minimal config plus one slo check (`check[1]`) per body.
fn with_slos(bodies: &[&str]) -> String {
    let mut toml = minimal("interval = \"10s\"", "");
    for (i, body) in bodies.iter().enumerate() {
        toml.push_str(&format!(
            "\n[[watch.check]]\nname = \"s{i}\"\nkind = \"slo\"\n{body}\n"
        ));
    }
    toml
}

fn slo_probe(c: &Config, check: usize) -> SloProbe {
    match &c.watches[0].checks[check].probe {
        Probe::Slo(p) => p.clone(),
        other => panic!("not an slo probe: {other:?}"),
    }
}

#[test]
fn slo_checks_parse_with_their_defaults() {
    let dir = secrets();
    let toml = with_slos(&[
        &format!("url = \"http://prom:9090/\"\nobjective = 0.999\n{GOOD}\n{TOTAL}"),
        &format!(
            "url = \"http://prom:9090\"\nobjective = 0.99\n{GOOD}\n{TOTAL}\nburn_rate = 6\nlong_window = \"30m\"\nno_data = \"pass\"\ntimeout = \"1s\""
        ),
    ]);
    let c = load_str(&toml, dir.path()).unwrap();
    let p = slo_probe(&c, 1);
    assert_eq!(p.url, "http://prom:9090");
    assert_eq!(p.objective, 0.999);
    assert!(matches!(&p.events, SloEvents::Query { good, .. } if good.contains("[$window]")));
    assert!(!c.watches[0].checks[1].probe.reads_the_app());
    assert_eq!(p.long_window, Duration::from_secs(3600));
    let check = &c.watches[0].checks[1];
    assert_eq!(check.rules, vec![Rule::BurnRate(14.4)]);
    assert_eq!(check.failure_limit, 3);
    assert_eq!(check.no_data, NoData::Error);
    let p = slo_probe(&c, 2);
    assert_eq!(p.objective, 0.99);
    assert_eq!(p.long_window, Duration::from_secs(1800));
    assert_eq!(p.timeout, Duration::from_secs(1));
    let check = &c.watches[0].checks[2];
    assert_eq!(check.rules, vec![Rule::BurnRate(6.0)]);
    assert_eq!(check.no_data, NoData::Pass);
}

#[test]
fn the_window_is_substituted_in_whole_seconds() {
    assert_eq!(
        crate::config::slo::with_window(
            "sum(increase(x[$window])) / sum(increase(y[$window]))",
            Duration::from_secs(240)
        ),
        "sum(increase(x[240s])) / sum(increase(y[240s]))"
    );
}

#[test]
fn slo_mistakes_are_named_by_key() {
    let dir = secrets();
    let toml = with_slos(&[
        // s0: nothing but the kind.
        "",
        // s1: objectives out of range, queries without the window or invalid.
        r#"url = "http://prom"
objective = 99.9
good = 'sum(increase(ok_total[5m]))'
total = 'sum(increase(all_total[$window])'"#,
        // s2: zero objective, bad burn_rate and long_window.
        &format!("url = \"http://prom\"\nobjective = 0\n{GOOD}\n{TOTAL}\nburn_rate = -1\nlong_window = \"500ms\""),
        // s3: a burn rate no error ratio can reach; other kinds' keys.
        &format!(
            "url = \"http://prom\"\nobjective = 0.9\n{GOOD}\n{TOTAL}\nburn_rate = 11\nmax = 1\nquery = \"up\"\nunreachable = \"fail\"\nbaseline_window = \"5m\"\nlabels = {{ a = \"b\" }}\nmin_traffic = {{ query = \"x\", min = 1 }}"
        ),
        // s4: objective of 1 and a string objective.
        &format!("url = \"ftp://prom\"\nobjective = 1\n{GOOD}\n{TOTAL}"),
    ]);
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].check[1].objective: is required",
        "watch[0].check[1].good: ",
        "watch[0].check[1].total: ",
        "watch[0].check[1].url: ",
        "watch[0].check[2].objective: 99.9 is not between 0 and 1",
        "watch[0].check[2].good: must use $window as its range",
        "watch[0].check[2].total: is not valid PromQL",
        "watch[0].check[3].objective: 0 is not between 0 and 1",
        "watch[0].check[3].burn_rate: -1 must be greater than zero",
        "watch[0].check[3].long_window: must be at least 1s",
        "watch[0].check[4].burn_rate: 11 can never be reached with objective 0.9: even 100% errors burn the budget only 10x too fast",
        "watch[0].check[4].max: is not a setting of slo checks",
        "watch[0].check[4].query: is not a setting of slo checks",
        "watch[0].check[4].unreachable: only applies when good and total are scrape selections",
        "watch[0].check[4].baseline_window: is not a setting of slo checks",
        "watch[0].check[4].labels: is not a setting of slo checks",
        "watch[0].check[4].min_traffic: applies to prometheus and scrape checks only",
        "watch[0].check[5].objective: 1 is not between 0 and 1",
        "watch[0].check[5].url: \"ftp://prom\" must start with http:// or https://",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("unknown key"), "{joined}");
}

#[test]
fn slo_urls_are_masked_in_debug() {
    let dir = secrets();
    let toml = with_slos(&[&format!(
        "url = \"https://user:s3cr3t@prom:9090?token=s3cr3t\"\nobjective = 0.999\n{GOOD}\n{TOTAL}"
    )]);
    let c = load_str(&toml, dir.path()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("s3cr3t"), "{debug}");
    assert!(debug.contains("SloProbe"), "{debug}");
}

const GOOD_SCRAPED: &str =
    r#"good = { metric = "http_requests_total", labels = { code = { not_regex = "5.." } } }"#;
const TOTAL_SCRAPED: &str = r#"total = { metric = "http_requests_total" }"#;

#[test]
fn good_and_total_may_be_scrape_selections() {
    let dir = secrets();
    let toml = with_slos(&[
        &format!("url = \"http://app:8080/metrics\"\nobjective = 0.999\n{GOOD_SCRAPED}\n{TOTAL_SCRAPED}"),
        "url = \"http://app:8080/metrics\"\nobjective = 0.99\ngood = { metric = \"jobs_total\", labels = { outcome = \"ok\", queue = { not = \"test\" } } }\ntotal = { metric = \"jobs_total\", labels = { queue = { regex = \"a|b\" } } }\nunreachable = \"error\"\nlong_window = \"30m\"",
    ]);
    let c = load_str(&toml, dir.path()).unwrap();
    let p = slo_probe(&c, 1);
    assert_eq!(p.url, "http://app:8080/metrics");
    let SloEvents::Scrape { good, total } = &p.events else {
        panic!("expected scrape selections: {p:?}");
    };
    assert_eq!(
        crate::checks::scrape::selector_text(good),
        r#"http_requests_total{code!~"5.."}"#
    );
    assert_eq!(
        crate::checks::scrape::selector_text(total),
        "http_requests_total"
    );
    let check = &c.watches[0].checks[1];
    assert_eq!(check.rules, vec![Rule::BurnRate(14.4)]);
    assert_eq!(check.unreachable, Unreachable::Fail);
    assert!(
        check.probe.reads_the_app(),
        "the service not answering is the app down"
    );
    let p = slo_probe(&c, 2);
    let SloEvents::Scrape { good, total } = &p.events else {
        panic!("expected scrape selections: {p:?}");
    };
    assert_eq!(
        crate::checks::scrape::selector_text(good),
        r#"jobs_total{outcome="ok",queue!="test"}"#
    );
    assert_eq!(
        crate::checks::scrape::selector_text(total),
        r#"jobs_total{queue=~"a|b"}"#
    );
    assert_eq!(p.long_window, Duration::from_secs(1800));
    assert_eq!(c.watches[0].checks[2].unreachable, Unreachable::Error);
}

#[test]
fn scrape_selection_mistakes_are_named_by_key() {
    let dir = secrets();
    let toml = with_slos(&[
        // s0, s1: a table beside a string, either way round.
        &format!("url = \"http://app/metrics\"\nobjective = 0.999\n{GOOD_SCRAPED}\n{TOTAL}"),
        &format!("url = \"http://prom\"\nobjective = 0.999\n{GOOD}\n{TOTAL_SCRAPED}"),
        // s2: the same series twice; unreachable is fine here.
        &format!("url = \"http://app/metrics\"\nobjective = 0.999\ngood = {{ metric = \"http_requests_total\" }}\n{TOTAL_SCRAPED}\nunreachable = \"fail\""),
        // s3: a bad metric name, a misspelt key, a PromQL operator in a plain label value.
        "url = \"http://app/metrics\"\nobjective = 0.999\ngood = { metric = \"2xx\", lables = {} }\ntotal = { metric = \"http_requests_total\", labels = { code = \"!~5..\" } }",
        // s4: neither a string nor a table, and a missing total; s5: unreachable with PromQL.
        "url = \"http://prom\"\nobjective = 0.999\ngood = [\"a\"]",
        &format!("url = \"http://prom\"\nobjective = 0.999\n{GOOD}\n{TOTAL}\nunreachable = \"error\""),
        // s6: a table without a metric.
        &format!("url = \"http://app/metrics\"\nobjective = 0.999\ngood = {{ labels = {{ code = \"200\" }} }}\n{TOTAL_SCRAPED}"),
    ]);
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].check[1].total: is a PromQL string but good is a scrape selection (a table): give both as PromQL over $window (url is then the Prometheus) or both as scrape selections such as { metric = \"http_requests_total\" } (url is then the service's /metrics)",
        "watch[0].check[2].total: is a scrape selection (a table) but good is a PromQL string",
        "watch[0].check[3].total: selects the same series as good: no event could ever be bad",
        "watch[0].check[4].good.metric: \"2xx\" is not a metric name",
        "watch[0].check[4].good.lables: unknown key",
        "watch[0].check[4].total.labels.code: \"!~5..\" would match the text \"!~5..\" exactly (a plain string is `=`); for PromQL's code!~\"5..\" write code = { not_regex = \"5..\" }",
        "watch[0].check[5].good: expected a string, found an array",
        "watch[0].check[5].total: is required: PromQL counting the events over $window",
        "watch[0].check[6].unreachable: only applies when good and total are scrape selections",
        "watch[0].check[7].good.metric: is required",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("check[3].unreachable"), "{joined}");
    assert!(!joined.contains("check[1].good"), "{joined}");
}
