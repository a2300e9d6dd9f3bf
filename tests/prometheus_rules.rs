//! Holds the monitoring artifacts shipped in `config/` to backstop's real metrics.
//!
//! The alert rules (`config/prometheus/backstop.rules.yml`), their unit tests, the scrape job
//! (`config/prometheus/scrape.yml`) and the Grafana dashboard (`config/grafana/backstop.json`)
//! are written by hand against the metric names in `src/metrics.rs`. A typo or a renamed metric
//! would not break anything visibly: the alert would just never fire and the panel stay empty.
//! So this test runs `promtool` on the rules, their unit tests and the scrape job, and checks
//! that every PromQL expression (rules and dashboard) names only metrics backstop exports.
//!
//! `promtool` is required, not optional: a missing promtool fails the test (tests/run-all.sh
//! installs it with the Debian `prometheus` package). Set `PROMTOOL` to use another binary.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

/// Every metric backstop exports under its own prefix (see README "Metrics").
const METRICS: &[&str] = &[
    "backstop_fleet_nodes",
    "backstop_fleet_unowned_watches",
    "backstop_lease_takeovers_total",
    "backstop_watches_owned",
    "backstop_build_info",
    "backstop_checks_total",
    "backstop_check_value",
    "backstop_check_threshold",
    "backstop_check_baseline",
    "backstop_watch_state",
    "backstop_verdicts_total",
    "backstop_rollbacks_total",
    "backstop_deployer_api_errors_total",
    "backstop_deployer_polls_total",
    "backstop_deployments_seen_total",
    "backstop_observation_duration_seconds",
    "backstop_observation_started_timestamp_seconds",
    "backstop_config_reloads_total",
    "backstop_start_time_seconds",
    "backstop_scheduler_lag_seconds",
];

/// The histograms among [`METRICS`]: only these have `_bucket`, `_sum` and `_count` series.
const HISTOGRAMS: &[&str] = &["backstop_observation_duration_seconds"];

const SEVERITIES: &[&str] = &["page", "ticket", "warning"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    let path = root().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Runs promtool from the repository root; panics with its output unless it succeeds.
fn promtool(args: &[&str]) -> String {
    let bin = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_string());
    let out = match Command::new(&bin).args(args).current_dir(root()).output() {
        Ok(out) => out,
        Err(e) => panic!(
            "cannot run `{bin}` ({e}). promtool is required to test the Prometheus rules: \
             install it (Debian: `apt-get install prometheus`; tests/run-all.sh does this) \
             or point PROMTOOL at the binary"
        ),
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "`{bin} {}` failed ({}):\n{text}",
        args.join(" "),
        out.status
    );
    text
}

/// A scratch directory of this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("backstop-prometheus-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The `backstop_*` identifiers in a PromQL expression.
fn backstop_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    let mut prev: Option<char> = None;
    while let Some(at) = rest.find("backstop_") {
        let before = rest[..at].chars().next_back().or(prev);
        let tail = &rest[at..];
        let len = tail.find(|c: char| !is_name_char(c)).unwrap_or(tail.len());
        if !before.is_some_and(is_name_char) {
            names.push(tail[..len].to_string());
        }
        prev = tail[..len].chars().next_back();
        rest = &tail[len..];
    }
    names
}

fn is_known_metric(name: &str) -> bool {
    METRICS.contains(&name)
        || HISTOGRAMS.iter().any(|h| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| name == format!("{h}{suffix}"))
        })
}

/// Panics unless every `backstop_*` name in `expr` is an exported metric; returns how many
/// names it found.
fn assert_known_metrics(what: &str, expr: &str) -> usize {
    let names = backstop_names(expr);
    for name in &names {
        assert!(
            is_known_metric(name),
            "{what} uses `{name}`, which backstop does not export:\n{expr}"
        );
    }
    names.len()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// One alerting rule of the rules file, read line by line (the crate has no YAML parser).
#[derive(Debug)]
struct AlertRule {
    name: String,
    expr: String,
    /// The rule's text from `- alert:` up to the next rule.
    text: String,
}

fn alert_rules(yaml: &str) -> Vec<AlertRule> {
    let lines: Vec<&str> = yaml.lines().collect();
    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("- alert:"))
        .map(|(i, _)| i)
        .collect();
    let mut rules = Vec::new();
    for (n, &start) in starts.iter().enumerate() {
        let end = starts.get(n + 1).copied().unwrap_or(lines.len());
        let block = &lines[start..end];
        let name = block[0].trim_start()["- alert:".len()..].trim().to_string();
        let (at, line) = block
            .iter()
            .enumerate()
            .find(|(_, l)| l.trim_start().starts_with("expr:"))
            .unwrap_or_else(|| panic!("alert {name} has no expr"));
        let inline = line.trim_start()["expr:".len()..].trim();
        let expr = if inline.starts_with('|') || inline.starts_with('>') {
            // a block scalar: the following lines indented deeper than `expr:`
            block[at + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || indent(l) > indent(line))
                .map(|l| l.trim())
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            inline.to_string()
        };
        assert!(!expr.trim().is_empty(), "alert {name} has an empty expr");
        rules.push(AlertRule {
            name,
            expr,
            text: block.join("\n"),
        });
    }
    rules
}

/// For each alertname of a `promtool test rules` file: (tested not firing, tested firing).
fn tested_alerts(yaml: &str) -> std::collections::BTreeMap<String, (bool, bool)> {
    let mut seen = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in yaml.lines() {
        let t = line.trim_start().trim_start_matches("- ");
        if let Some(name) = t.strip_prefix("alertname:") {
            let name = name.trim().to_string();
            seen.entry(name.clone()).or_insert((false, false));
            current = Some(name);
        } else if t.starts_with("eval_time:") || t.starts_with("input_series:") {
            current = None;
        } else if let (Some(name), Some(rest)) = (&current, t.strip_prefix("exp_alerts:")) {
            let entry = seen.get_mut(name).expect("entry");
            if rest.trim() == "[]" {
                entry.0 = true;
            } else {
                entry.1 = true;
            }
        }
    }
    seen
}

#[test]
fn rules_pass_promtool_check() {
    let out = promtool(&["check", "rules", "config/prometheus/backstop.rules.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn rules_pass_their_unit_tests() {
    let out = promtool(&["test", "rules", "config/prometheus/backstop.rules.test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn rules_use_only_exported_metrics_and_are_well_formed() {
    let rules = alert_rules(&read("config/prometheus/backstop.rules.yml"));
    let names: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    let expected = [
        "BackstopDown",
        "BackstopConfigReloadFailed",
        "BackstopRolledBack",
        "BackstopDeploymentsFailing",
        "BackstopRollbackFailed",
        "BackstopWatchFailed",
        "BackstopRollbackStuck",
        "BackstopWatchBlind",
        "BackstopDeployerErrors",
        "BackstopObservationStuck",
        "BackstopLate",
        "BackstopWatchUnowned",
        "BackstopFleetLostNode",
    ];
    assert_eq!(names, expected.into_iter().collect(), "alert names");
    let mut metric_refs = 0;
    for rule in &rules {
        metric_refs += assert_known_metrics(&format!("alert {}", rule.name), &rule.expr);
        let severity = rule
            .text
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .unwrap_or_else(|| panic!("alert {} has no severity label", rule.name))
            .trim();
        assert!(
            SEVERITIES.contains(&severity),
            "alert {}: severity {severity:?} is not one of {SEVERITIES:?}",
            rule.name
        );
        for key in ["summary:", "description:"] {
            assert!(
                rule.text.lines().any(|l| l.trim().starts_with(key)),
                "alert {} has no {key} annotation",
                rule.name
            );
        }
    }
    // all rules but the two on `up` read backstop's own metrics
    assert!(metric_refs >= rules.len() - 2, "{rules:#?}");
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let rules = alert_rules(&read("config/prometheus/backstop.rules.yml"));
    let tested = tested_alerts(&read("config/prometheus/backstop.rules.test.yml"));
    for rule in &rules {
        let (quiet, firing) = tested
            .get(&rule.name)
            .copied()
            .unwrap_or_else(|| panic!("alert {} has no unit test", rule.name));
        assert!(quiet, "alert {} is never tested not firing", rule.name);
        assert!(firing, "alert {} is never tested firing", rule.name);
    }
    for name in tested.keys() {
        assert!(
            rules.iter().any(|r| &r.name == name),
            "the unit tests test {name}, which is no alert of the rules file"
        );
    }
}

#[test]
fn scrape_job_makes_a_valid_prometheus_config() {
    let snippet = read("config/prometheus/scrape.yml");
    for needle in [
        "job_name: backstop",
        "127.0.0.1:9870",
        "metrics_path: /metrics",
        "scrape_interval: 15s",
    ] {
        assert!(snippet.contains(needle), "scrape.yml lacks {needle:?}");
    }
    let rules = root().join("config/prometheus/backstop.rules.yml");
    let rules = serde_json::to_string(rules.to_str().expect("utf-8 path")).expect("json string");
    let config = format!(
        "global:\n  scrape_interval: 1m\n  evaluation_interval: 1m\n\
         rule_files:\n  - {rules}\n\n{snippet}"
    );
    let dir = TempDir::new("config");
    let path = dir.write("prometheus.yml", &config);
    let out = promtool(&["check", "config", path.to_str().expect("utf-8 path")]);
    assert!(out.contains("is valid prometheus config"), "{out}");
    assert!(
        out.contains("rules found"),
        "the rule file was not checked:\n{out}"
    );
}

/// Every PromQL expression of the dashboard, with where it is.
fn dashboard_exprs(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let here = format!("{at}.{key}");
                match (key.as_str(), v) {
                    ("expr", Value::String(expr)) => found.push((here, expr.clone())),
                    _ => dashboard_exprs(v, &here, found),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                dashboard_exprs(v, &format!("{at}[{i}]"), found);
            }
        }
        _ => {}
    }
}

fn dashboard() -> Value {
    serde_json::from_str(&read("config/grafana/backstop.json"))
        .expect("config/grafana/backstop.json is not valid JSON")
}

#[test]
fn dashboard_is_built_on_exported_metrics() {
    let d = dashboard();
    assert!(
        d["title"].is_string() && d["uid"].is_string(),
        "title and uid"
    );
    assert!(
        d["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion: {}",
        d["schemaVersion"]
    );

    let vars = d["templating"]["list"].as_array().expect("templating.list");
    let var = |name: &str| vars.iter().find(|v| v["name"] == name);
    let ds = var("datasource").expect("a datasource variable");
    assert_eq!(ds["type"], "datasource");
    assert_eq!(ds["query"], "prometheus");
    let watch = var("watch").expect("a `watch` template variable");
    let query = watch["definition"].as_str().expect("watch.definition");
    assert!(
        query.starts_with("label_values(backstop_watch_state") && query.ends_with(", watch)"),
        "watch variable query: {query}"
    );
    for v in vars {
        for key in ["definition", "query"] {
            let q = v[key].as_str().or(v[key]["query"].as_str()).unwrap_or("");
            assert_known_metrics(&format!("variable {}", v["name"]), q);
        }
    }

    let panels = d["panels"].as_array().expect("panels");
    assert!(!panels.is_empty(), "the dashboard has no panels");
    let mut ids = BTreeSet::new();
    let mut graphs = 0;
    for p in panels {
        let title = p["title"].as_str().unwrap_or("?");
        assert!(
            ids.insert(p["id"].as_u64().expect("panel id")),
            "duplicate id of {title}"
        );
        if p["type"] == "row" {
            continue;
        }
        graphs += 1;
        assert_eq!(p["datasource"]["uid"], "${datasource}", "panel {title}");
        let targets = p["targets"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        assert!(!targets.is_empty(), "panel {title} has no queries");
        for t in targets {
            let expr = t["expr"].as_str().unwrap_or("");
            assert!(!expr.trim().is_empty(), "panel {title} has an empty query");
        }
    }
    assert!(graphs >= 6, "only {graphs} panels");

    let mut exprs = Vec::new();
    dashboard_exprs(&d, "$", &mut exprs);
    let mut used = BTreeSet::new();
    for (at, expr) in &exprs {
        assert_known_metrics(at, expr);
        used.extend(backstop_names(expr));
    }
    // the panels the issue asks for
    for metric in [
        "backstop_watch_state",
        "backstop_verdicts_total",
        "backstop_check_value",
        "backstop_check_threshold",
        "backstop_check_baseline",
        "backstop_rollbacks_total",
        "backstop_checks_total",
        "backstop_deployer_api_errors_total",
    ] {
        assert!(used.contains(metric), "no panel shows {metric}");
    }
}

/// The dashboard's queries parse: promtool checks them as recording rules, with Grafana's
/// variables replaced by values.
#[test]
fn dashboard_queries_are_valid_promql() {
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard(), "$", &mut exprs);
    assert!(!exprs.is_empty());
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, (at, expr)) in exprs.iter().enumerate() {
        let mut e = expr.clone();
        for (var, value) in [
            ("$__rate_interval", "1m"),
            ("$__interval", "1m"),
            ("$__range", "6h"),
            ("$job", ".*"),
            ("$watch", ".*"),
            ("$check", ".*"),
        ] {
            e = e.replace(var, value);
        }
        assert!(!e.contains('$'), "{at}: unknown variable in {expr}");
        let e = serde_json::to_string(&e).expect("json string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {e}\n"
        ));
    }
    let dir = TempDir::new("dashboard");
    let path = dir.write("dashboard.rules.yml", &rules);
    let out = promtool(&["check", "rules", path.to_str().expect("utf-8 path")]);
    assert!(
        out.contains(&format!("{} rules found", exprs.len())),
        "{out}"
    );
}

#[test]
fn metric_name_extraction() {
    assert_eq!(
        backstop_names(
            r#"sum(increase(backstop_checks_total{job="backstop"}[5m])) / x_backstop_y + backstop_a_bucket"#
        ),
        ["backstop_checks_total", "backstop_a_bucket"]
    );
    assert!(is_known_metric(
        "backstop_observation_duration_seconds_bucket"
    ));
    assert!(!is_known_metric("backstop_verdicts_total_sum"));
    assert!(!is_known_metric("backstop_rollback_total"));
}
