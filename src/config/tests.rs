//! Config validation: the example is valid, and every kind of mistake is named by key.

use std::path::Path;
use std::time::Duration;

use super::*;

/// A directory holding the secret files the example config names, by relative path.
fn secrets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["token", "octopus-api-key", "hook-secret"] {
        std::fs::write(dir.path().join(f), format!("{f}-value\n")).unwrap();
    }
    dir
}

/// The shipped example with its absolute secret paths made relative to the test directory.
fn example() -> String {
    include_str!("../../config/backstop.example.toml").replace("/etc/backstop/", "")
}

fn errors(toml: &str, dir: &Path) -> Vec<String> {
    match load_str(toml, dir) {
        Ok(_) => panic!("config unexpectedly valid"),
        Err(LoadError::Invalid(errs)) => errs.iter().map(|e| e.to_string()).collect(),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[test]
fn example_config_is_valid() {
    let dir = secrets();
    let c = load_str(&example(), dir.path()).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:9870");
    assert_eq!(c.server.token.as_ref().unwrap().expose(), "token-value");
    let w = &c.watches[0];
    assert_eq!(w.name, "shop");
    assert_eq!(w.poll, Some(Duration::from_secs(30)));
    assert_eq!(w.window, Duration::from_secs(600));
    assert_eq!(w.on_failure, OnFailure::Rollback);
    assert_eq!(w.checks.len(), 3);
    assert_eq!(w.checks[0].rules, vec![Rule::ExpectStatus(vec![200])]);
    assert_eq!(
        w.checks[1].rules,
        vec![Rule::Max(0.05), Rule::MaxRatio(3.0)]
    );
    assert_eq!(w.checks[1].baseline_floor, Some(0.01));
    assert_eq!(
        w.checks[1].min_failure_for,
        Duration::from_secs(30),
        "half the query's 1m look-back"
    );
    assert!(w.checks[1].min_traffic.is_some() && w.checks[2].min_traffic.is_some());
    assert_eq!(w.checks[2].rules, vec![Rule::MaxRatio(2.0)]);
    assert!(matches!(
        &w.checks[2].probe,
        Probe::Prometheus { baseline_window: Some(d), .. } if *d == Duration::from_secs(600)
    ));
    let DeployerConfig::Octopus(o) = &c.deployers["octo"] else {
        panic!("octopus deployer expected")
    };
    assert_eq!(o.api_key.expose(), "octopus-api-key-value");
    assert_eq!(o.webhook_header.as_deref(), Some("X-Backstop-Secret"));
}

#[test]
fn debug_output_never_shows_secrets() {
    let dir = secrets();
    let c = load_str(&example(), dir.path()).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("-value"), "{debug}");
}

#[test]
fn all_errors_are_reported_at_once_with_their_keys() {
    let dir = secrets();
    let bad = example()
        .replace("interval = \"10s\"", "interval = \"10 parsecs\"")
        .replace("deployer = \"octo\"", "deployer = \"jenkins\"")
        .replace("on_failure = \"rollback\"", "on_failure = \"panic\"")
        .replace("max = 0.05", "maxx = 0.05")
        .replace("max_ratio = 2.0", "max_ratio_typo = 2.0")
        .replace("[state]", "[state]\ncolour = \"blue\"");
    let errs = errors(&bad, dir.path());
    let joined = errs.join("\n");
    for needle in [
        "watch[0].interval: malformed duration",
        "watch[0].deployer: no [deployers.jenkins] table",
        "watch[0].on_failure: unknown value \"panic\"",
        "watch[0].check[1].maxx: unknown key",
        "watch[0].check[2].max_ratio_typo: unknown key",
        "watch[0].check[2].max: a prometheus check needs a rule",
        "state.colour: unknown key",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn missing_required_keys_are_named() {
    let dir = secrets();
    let toml = r#"
[deployers.o]
kind = "octopus"
url = "http://x"
[[watch]]
name = "w"
[[watch.check]]
kind = "prometheus"
url = "http://p"
max = 1
[[watch]]
name = "v"
deployer = "o"
[[watch.check]]
name = "h"
kind = "http"
url = "http://app"
"#;
    let joined = errors(toml, dir.path()).join("\n");
    for needle in [
        "deployers.o.space: is required",
        "deployers.o.api_key_file: an API key is required",
        "watch[0].deployer: is required",
        "watch[1].project: is required",
        "watch[1].environment: is required",
        "watch[0].check[0].name: is required",
        "watch[0].check[0].query: is required",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn inline_secrets_are_refused() {
    let dir = secrets();
    let bad = example().replace("token_file = \"token\"", "token = \"hunter2\"");
    let joined = errors(&bad, dir.path()).join("\n");
    assert!(joined.contains("server.token: secrets are never written inline"));
    assert!(!joined.contains("hunter2"));
}

#[test]
fn unreadable_secret_names_the_key_and_path() {
    let dir = secrets();
    std::fs::remove_file(dir.path().join("octopus-api-key")).unwrap();
    let joined = errors(&example(), dir.path()).join("\n");
    assert!(joined.contains("deployers.octo.api_key_file: cannot read secret file"));
}

#[test]
fn rule_and_timing_mistakes() {
    let dir = secrets();
    let bad = example()
        .replace("timeout = \"2s\"", "timeout = \"20s\"")
        .replace("max_ratio = 2.0", "max_ratio = -1")
        .replace("failure_limit = 3       #", "failure_limit = 0       #")
        .replace("expect_status = [200]", "expect_status = [200, 999]");
    let joined = errors(&bad, dir.path()).join("\n");
    for needle in [
        "watch[0].check[0].timeout: 20s is not shorter than the watch interval 10s",
        "watch[0].check[2].max_ratio: must be greater than zero",
        "watch[0].check[0].failure_limit: expected a whole number of at least 1",
        "watch[0].check[0].expect_status: 999 is not an HTTP status code",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn duplicate_names_and_wrong_kinds() {
    let dir = secrets();
    let mut bad = example();
    bad.push_str(
        r#"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-2"
environment = "Environments-1"
[[watch.check]]
name = "x"
kind = "ftp"
url = "http://x"
"#,
    );
    let joined = errors(&bad, dir.path()).join("\n");
    assert!(joined.contains("watch[1].name: duplicate watch name \"shop\""));
    assert!(joined.contains("watch[1].check[0].kind: unknown check kind \"ftp\""));
}

#[test]
fn defaults_apply() {
    let dir = secrets();
    let toml = r#"
[deployers.o]
kind = "octopus"
url = "http://octo/"
space = "Spaces-1"
api_key_file = "octopus-api-key"
[[watch]]
name = "w"
deployer = "o"
project = "Projects-1"
environment = "Environments-1"
[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"
"#;
    let c = load_str(toml, dir.path()).unwrap();
    assert!(c.server.token.is_none());
    assert!(c.server.ui, "the dashboard is on by default");
    let off = load_str(&format!("[server]\nui = false\n{toml}"), dir.path()).unwrap();
    assert!(!off.server.ui);
    assert_eq!(c.state.dir, std::path::PathBuf::from("/var/lib/backstop"));
    let w = &c.watches[0];
    assert_eq!(
        (w.warmup, w.window, w.interval, w.error_limit),
        (
            Duration::from_secs(15),
            Duration::from_secs(600),
            Duration::from_secs(10),
            5
        )
    );
    assert_eq!(w.checks[0].failure_limit, 3);
    let DeployerConfig::Octopus(o) = &c.deployers["o"] else {
        panic!("octopus deployer expected")
    };
    assert_eq!(o.url, "http://octo");
}

#[test]
fn malformed_toml_is_a_read_error() {
    let dir = secrets();
    assert!(matches!(
        load_str("[server\nlisten=", dir.path()),
        Err(LoadError::Read { .. })
    ));
}

#[test]
fn environment_overrides_keys_with_double_underscore_only() {
    let dir = secrets();
    let path = dir.path().join("backstop.toml");
    std::fs::write(&path, example()).unwrap();
    // Only this test sets these variables; configs loaded elsewhere meanwhile would see them.
    let _env = super::TEST_ENV.lock().unwrap_or_else(|e| e.into_inner());
    std::env::set_var("BACKSTOP_STATE__DIR", "/tmp/backstop-env-override");
    std::env::set_var("BACKSTOP_TOKEN", "a secret for token_env, not a key");
    let c = load(&path);
    std::env::remove_var("BACKSTOP_STATE__DIR");
    std::env::remove_var("BACKSTOP_TOKEN");
    let c = c.unwrap();
    assert_eq!(
        c.state.dir,
        std::path::PathBuf::from("/tmp/backstop-env-override")
    );
}

/// One watch with one check whose body is given, and extra keys of the watch; the secret files
/// are those of [`secrets`].
fn one_check(watch_extra: &str, check: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
token_file = "token"
[deployers.octo]
kind = "octopus"
url = "http://127.0.0.1:1"
space = "Spaces-1"
api_key_file = "octopus-api-key"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
{watch_extra}
[[watch.check]]
{check}
"#
    )
}

/// A minimal valid config with one watch whose extra keys and extra tables are given.
fn minimal(watch_extra: &str, tables: &str) -> String {
    format!(
        r#"
{tables}
[deployers.o]
kind = "octopus"
url = "http://octo"
space = "Spaces-1"
api_key_file = "octopus-api-key"

[[watch]]
name = "w"
deployer = "o"
project = "Projects-1"
environment = "Environments-1"
{watch_extra}

[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"
"#
    )
}

#[test]
fn policies_guards_and_sinks_parse() {
    let dir = secrets();
    std::fs::write(
        dir.path().join("slack-url"),
        "https://hooks.slack.example/T/B/X",
    )
    .unwrap();
    let toml = minimal(
        r#"on_failure = "retry"
then = "notify"
dry_run = true
max_actions = 2
max_actions_period = "30m"
notify = ["chat", "am"]
[watch.command]
argv = ["/usr/local/bin/page-dba", "--sev", "1"]
timeout = "20s"
when = "after""#,
        r#"[notify.chat]
kind = "slack"
url_file = "slack-url"
[notify.am]
kind = "alertmanager"
url = "http://127.0.0.1:9093"
labels = { team = "shop" }"#,
    );
    let c = load_str(&toml, dir.path()).unwrap();
    let w = &c.watches[0];
    assert_eq!(
        w.on_failure,
        OnFailure::Retry {
            then: Fallback::Notify
        }
    );
    assert!(w.dry_run);
    assert_eq!(
        (w.max_actions, w.max_actions_period),
        (2, Duration::from_secs(1800))
    );
    assert_eq!(w.notify, vec!["chat".to_string(), "am".to_string()]);
    let hook = w.command.as_ref().unwrap();
    assert_eq!(hook.argv[0], "/usr/local/bin/page-dba");
    assert_eq!(
        (hook.timeout, hook.when),
        (Duration::from_secs(20), HookWhen::After)
    );
    assert!(
        matches!(&c.sinks["chat"], SinkConfig::Slack { url, .. } if url.expose().contains("slack"))
    );
    assert!(
        !format!("{:?}", c.sinks).contains("hooks.slack"),
        "the Slack URL is a secret"
    );
    let SinkConfig::Alertmanager { labels, .. } = &c.sinks["am"] else {
        panic!("alertmanager sink expected")
    };
    assert_eq!(labels["team"], "shop");
}

#[test]
fn policy_mistakes_are_named() {
    let dir = secrets();
    let toml = minimal(
        r#"on_failure = "command"
then = "rollback"
notify = ["nowhere"]
max_actions = 0"#,
        r#"[notify.bad]
kind = "pager"
[notify.am]
kind = "alertmanager"
url = "ftp://am:s3cr3t@x"
labels = { "bad-label" = "x" }"#,
    );
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].on_failure: \"command\" needs a [watch.command] table",
        "watch[0].then: only applies to on_failure = \"retry\"",
        "watch[0].notify: no [notify.nowhere] table",
        "watch[0].max_actions: expected a whole number of at least 1",
        "notify.bad.kind: unknown notify kind \"pager\"",
        "notify.am.url: \"ftp://***@x/\" must start with http",
        "notify.am.labels.bad-label: is not a valid Prometheus label name",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    assert!(!joined.contains("s3cr3t"), "{joined}");
    let toml = minimal(
        "on_failure = \"retry\"\nthen = \"pray\"\n[watch.command]\nwhen = \"during\"",
        "",
    );
    let joined = errors(&toml, dir.path()).join("\n");
    for needle in [
        "watch[0].then: unknown value \"pray\"",
        "watch[0].command.argv: is required",
        "watch[0].command.when: unknown value \"during\"",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[test]
fn other_deployer_kinds_parse_and_their_mistakes_are_named() {
    let dir = secrets();
    std::fs::write(dir.path().join("argo-token"), "tok").unwrap();
    std::fs::write(dir.path().join("cd-token"), "Bearer x").unwrap();
    let toml = r#"
[deployers.cd]
kind = "webhook"
url = "https://cd.example/deploy/{{watch}}"
body = '{"release": "{{target_release}}", "why": "{{action}}"}'
status_url = "https://cd.example/status/{{idempotency_key}}"
headers = { "X-Team" = "shop" }
secret_headers = { Authorization = "cd-token" }

[deployers.script]
kind = "command"
argv = ["/usr/local/bin/deploy", "{{target_release}}"]

[deployers.argo]
kind = "argocd"
url = "https://argocd.example"
token_file = "argo-token"

[[watch]]
name = "a"
deployer = "argo"
application = "shop"
[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"

[[watch]]
name = "b"
deployer = "cd"
[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"
"#;
    let c = load_str(toml, dir.path()).unwrap();
    assert_eq!(c.deployers["cd"].kind(), "webhook");
    assert_eq!(c.deployers["script"].kind(), "command");
    assert_eq!(c.watches[0].application.as_deref(), Some("shop"));
    let DeployerConfig::Webhook(w) = &c.deployers["cd"] else {
        panic!("webhook expected")
    };
    assert_eq!(w.method, "POST");
    assert_eq!(w.success_status, vec![200, 201, 202, 204]);
    assert_eq!(w.secret_headers["Authorization"].expose(), "Bearer x");
    assert!(!format!("{w:?}").contains("Bearer x"));

    let bad = r#"
[deployers.cd]
kind = "webhook"
url = "https://cd.example/{{nope}}"
body = '{"release": {{target_release}}'
method = "DELETE"
[deployers.script]
kind = "command"
[deployers.argo]
kind = "argocd"
url = "https://argocd.example"
[deployers.x]
kind = "jenkins"
[[watch]]
name = "a"
deployer = "argo"
poll = "30s"
[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"
"#;
    let joined = errors(bad, dir.path()).join("\n");
    for needle in [
        "deployers.cd.url: unknown placeholder {{nope}}",
        "deployers.cd.body: is not a JSON template",
        "deployers.cd.method: \"DELETE\" is not one of",
        "deployers.script.argv: is required",
        "deployers.argo.token_file: a bearer token is required",
        "deployers.x.kind: unknown deployer kind \"jenkins\"",
        "watch[0].application: is required",
        "watch[0].poll: polling for deployments is supported for octopus deployers only",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
}

#[path = "scrape_tests.rs"]
mod scrape;

#[test]
fn absurd_durations_are_refused_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(dir.path().join("api-key"), "k").unwrap();
    let toml = r#"
[server]
listen = "127.0.0.1:0"
token_file = "token"
[deployers.octo]
kind = "octopus"
url = "http://127.0.0.1:1"
space = "Spaces-1"
api_key_file = "api-key"
task_timeout = "400000years"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
[[watch.check]]
name = "health"
kind = "http"
url = "http://127.0.0.1:1/health"
expect_status = [200]
"#;
    let err = crate::config::load_str(toml, dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("task_timeout"), "{err}");
    assert!(err.contains("10 years"), "{err}");
}

#[test]
fn unreachable_is_a_setting_of_app_checks_only() {
    let dir = secrets();
    let cfg = |check: &str| one_check("", check);
    let http =
        "name = \"h\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nunreachable = \"error\"";
    let c = crate::config::load_str(&cfg(http), dir.path()).unwrap();
    assert_eq!(
        c.watches[0].checks[0].unreachable,
        crate::config::Unreachable::Error
    );
    let default = "name = \"h\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"";
    let c = crate::config::load_str(&cfg(default), dir.path()).unwrap();
    assert_eq!(
        c.watches[0].checks[0].unreachable,
        crate::config::Unreachable::Fail
    );
    let prom = "name = \"p\"\nkind = \"prometheus\"\nurl = \"http://127.0.0.1:1\"\nquery = \"up\"\nmax = 1\nunreachable = \"fail\"";
    let err = crate::config::load_str(&cfg(prom), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unreachable") && err.contains("not a setting of prometheus"),
        "{err}"
    );
    let bad =
        "name = \"h\"\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nunreachable = \"maybe\"";
    let err = crate::config::load_str(&cfg(bad), dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("expected \"fail\" or \"error\""), "{err}");
}

#[test]
fn a_query_looking_back_further_than_warmup_is_a_warning_and_invalid_promql_an_error() {
    let dir = secrets();
    let cfg = |query: &str| {
        one_check(
            "warmup = \"3s\"",
            &format!(
                r#"name = "p"
kind = "prometheus"
url = "http://127.0.0.1:1"
query = '{query}'
max = 1"#
            ),
        )
    };
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg("sum(rate(errors_total[20s]))")).unwrap();
    let (c, warnings) = crate::config::check(&path).unwrap();
    match &c.watches[0].checks[0].probe {
        crate::config::Probe::Prometheus { lookback, .. } => {
            assert_eq!(*lookback, Duration::from_secs(20))
        }
        other => panic!("{other:?}"),
    }
    let w: Vec<String> = warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        w.iter()
            .any(|w| w.contains("watch[0].check[0].query") && w.contains("looks back 20s")),
        "{w:?}"
    );
    std::fs::write(&path, cfg("sum(rate(errors_total[20s])")).unwrap();
    let err = crate::config::check(&path).unwrap_err().to_string();
    assert!(err.contains("is not valid PromQL"), "{err}");
}

#[test]
fn no_data_and_min_samples_are_validated() {
    let dir = secrets();
    let cfg = |extra: &str| {
        one_check(
            "window = \"60s\"\ninterval = \"10s\"",
            &format!(
                r#"name = "p"
kind = "prometheus"
url = "http://127.0.0.1:1"
query = "up"
max = 1
{extra}"#
            ),
        )
    };
    let c = crate::config::load_str(&cfg(""), dir.path()).unwrap();
    let check = &c.watches[0].checks[0];
    assert_eq!(check.no_data, crate::config::NoData::Error);
    assert_eq!(check.min_samples, 3, "half of the window's 6 rounds");
    let c =
        crate::config::load_str(&cfg("no_data = \"pass\"\nmin_samples = 6"), dir.path()).unwrap();
    assert_eq!(c.watches[0].checks[0].no_data, crate::config::NoData::Pass);
    assert_eq!(c.watches[0].checks[0].min_samples, 6);
    let err = crate::config::load_str(&cfg("no_data = \"zero\"\nmin_samples = 7"), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no_data") && err.contains("min_samples"),
        "{err}"
    );
}

#[test]
fn min_traffic_is_a_query_and_a_minimum_on_prometheus_checks() {
    let dir = secrets();
    let cfg = |check: &str| {
        one_check(
            "",
            &format!(
                r#"name = "p"
{check}"#
            ),
        )
    };
    let ok = "kind = \"prometheus\"\nurl = \"http://127.0.0.1:1\"\nquery = \"up\"\nmax = 1\nmin_traffic = { query = \"sum(rate(requests_total[1m]))\", min = 1.5 }";
    let c = crate::config::load_str(&cfg(ok), dir.path()).unwrap();
    let m = c.watches[0].checks[0].min_traffic.clone().unwrap();
    assert_eq!(
        m,
        crate::config::MinTraffic {
            min: 1.5,
            source: crate::config::TrafficSource::Query("sum(rate(requests_total[1m]))".into()),
        }
    );
    let bad = "kind = \"prometheus\"\nurl = \"http://127.0.0.1:1\"\nquery = \"up\"\nmax = 1\nmin_traffic = { query = \"sum(\" }";
    let err = crate::config::load_str(&cfg(bad), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("min_traffic.query: is not valid PromQL"),
        "{err}"
    );
    assert!(err.contains("min_traffic.min: is required"), "{err}");
    let http =
        "kind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nmin_traffic = { query = \"x\", min = 1 }";
    let err = crate::config::load_str(&cfg(http), dir.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("min_traffic: applies to prometheus and scrape checks only"),
        "{err}"
    );
    // A scrape check's counter given to a prometheus check: named, not "unknown key".
    let series = "kind = \"prometheus\"\nurl = \"http://127.0.0.1:1\"\nquery = \"up\"\nmax = 1\nmin_traffic = { metric = \"requests_total\", labels = { code = { regex = \"2..\" } }, min = 1 }";
    let err = crate::config::load_str(&cfg(series), dir.path())
        .unwrap_err()
        .to_string();
    for key in ["metric", "labels"] {
        assert!(
            err.contains(&format!("min_traffic.{key}: prometheus checks take query")),
            "{err}"
        );
        assert!(
            !err.contains(&format!("min_traffic.{key}: unknown key")),
            "{err}"
        );
    }
    assert!(err.contains("min_traffic.query: is required"), "{err}");
}

#[test]
fn the_fast_cadence_defaults_fit_the_checks_and_an_explicit_one_is_checked() {
    let dir = secrets();
    let cfg = |watch: &str, check: &str| {
        one_check(
            &format!("interval = \"10s\"\n{watch}"),
            &format!(
                r#"name = "h"
kind = "http"
url = "http://127.0.0.1:1/"
failure_limit = 3
{check}"#
            ),
        )
    };
    let c = crate::config::load_str(&cfg("", ""), dir.path()).unwrap();
    let w = &c.watches[0];
    assert_eq!(
        w.fast_interval,
        Duration::from_secs(2),
        "max(1s, interval / 5)"
    );
    assert_eq!(w.fast_for, Duration::from_secs(120));
    assert_eq!(
        w.checks[0].min_failure_for,
        Duration::from_secs(4),
        "(failure_limit - 1) x fast"
    );
    match &w.checks[0].probe {
        crate::config::Probe::Http { timeout, .. } => {
            assert_eq!(
                *timeout,
                Duration::from_millis(1600),
                "min(5s, 0.8 x fast_interval)"
            )
        }
        other => panic!("{other:?}"),
    }
    // An older config with a 2s timeout stays valid: the default fast cadence makes room.
    let c = crate::config::load_str(&cfg("", "timeout = \"2s\""), dir.path()).unwrap();
    assert_eq!(c.watches[0].fast_interval, Duration::from_millis(2500));
    // An explicit fast_interval is checked against the timeouts.
    let err = crate::config::load_str(
        &cfg("fast_interval = \"1s\"", "timeout = \"2s\""),
        dir.path(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("fast_interval 1s"), "{err}");
    let err = crate::config::load_str(&cfg("fast_interval = \"20s\"", ""), dir.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be faster"), "{err}");
}

#[test]
fn deploy_failure_policies_and_the_hook_parse_and_their_mistakes_are_named() {
    let dir = secrets();
    let c = load_str(&minimal("", ""), dir.path()).unwrap();
    assert_eq!(c.watches[0].on_deploy_failure, OnDeployFailure::Observe);
    assert!(c.watches[0].hooks.deploy_failed.is_none());
    let toml = minimal(
        "on_deploy_failure = \"retry\"\non_deploy_failure_then = \"rollback\"\n[watch.hooks.deploy_failed]\nargv = [\"/bin/ticket\", \"x\"]\ntimeout = \"5s\"",
        "",
    );
    let w = &load_str(&toml, dir.path()).unwrap().watches[0];
    assert_eq!(
        w.on_deploy_failure,
        OnDeployFailure::Retry {
            then: Fallback::Rollback
        }
    );
    let hook = w.hooks.deploy_failed.as_ref().unwrap();
    assert_eq!((hook.argv.len(), hook.timeout), (2, Duration::from_secs(5)));
    let retry = minimal("on_deploy_failure = \"retry\"", "");
    assert_eq!(
        load_str(&retry, dir.path()).unwrap().watches[0].on_deploy_failure,
        OnDeployFailure::Retry {
            then: Fallback::Notify
        },
        "a second failure notifies by default"
    );
    let bad = minimal(
        "on_deploy_failure = \"pray\"\non_deploy_failure_then = \"retry\"\n[watch.hooks.deploy_failed]\ntimeout = \"5s\"\n[watch.hooks.nope]\nargv = []",
        "",
    );
    let joined = errors(&bad, dir.path()).join("\n");
    for needle in [
        "watch[0].on_deploy_failure: unknown value \"pray\"; expected \"observe\", \"retry\", \"rollback\" or \"notify\"",
        "watch[0].on_deploy_failure_then: unknown value \"retry\"",
        "watch[0].hooks.deploy_failed.argv: is required",
        "watch[0].hooks.nope",
    ] {
        assert!(joined.contains(needle), "missing {needle:?} in:\n{joined}");
    }
    let misplaced = minimal("on_deploy_failure_then = \"rollback\"", "");
    let joined = errors(&misplaced, dir.path()).join("\n");
    assert!(
        joined.contains("on_deploy_failure_then: only applies to on_deploy_failure = \"retry\""),
        "{joined}"
    );
}

#[path = "alert_tests.rs"]
mod alert;

#[path = "slo_tests.rs"]
mod slo;

#[test]
fn fleet_defaults_to_the_host_name_and_a_15s_lease() {
    let dir = secrets();
    let c = load_str(&example(), dir.path()).unwrap();
    assert_eq!(c.fleet.node, super::fleet::host_name());
    assert_eq!(c.fleet.lease, Duration::from_secs(15));
    let set = load_str(
        &format!("[fleet]\nnode = \"db-1\"\nlease = \"30s\"\n{}", example()),
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        (set.fleet.node.as_str(), set.fleet.lease),
        ("db-1", Duration::from_secs(30))
    );
    let errs = errors(
        &format!(
            "[fleet]\nnode = \" \"\nlease = \"1s\"\nleas = 2\n{}",
            example()
        ),
        dir.path(),
    )
    .join("\n");
    for needle in [
        "fleet.node: must be 1 to 200 printable characters",
        "fleet.lease: must be at least 3s",
        "fleet.leas: unknown key",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
}

#[test]
fn metrics_are_bounded_unless_per_check_is_asked_for() {
    let dir = secrets();
    assert!(!load_str(&example(), dir.path()).unwrap().metrics.per_check);
    let on = load_str(
        &format!("[metrics]\nper_check = true\n{}", example()),
        dir.path(),
    )
    .unwrap();
    assert!(on.metrics.per_check);
    let errs = errors(
        &format!("[metrics]\nper_check = 1\nper_watch = true\n{}", example()),
        dir.path(),
    )
    .join("\n");
    for needle in [
        "metrics.per_check: expected true or false",
        "metrics.per_watch: unknown key",
    ] {
        assert!(errs.contains(needle), "missing {needle:?} in:\n{errs}");
    }
}
