//! The configurations of backstop's rows: what a user writes, as TOML the daemon would load.
//! Timing keys are never set: every row runs backstop's defaults (warmup 15s, window 10m,
//! interval 10s, fast 2s for 2m, failure_limit 3 over ≥ 4s, error_limit 5).

/// The deployer and the watch every configuration shares; a replay never calls the deployer.
const WATCH: &str = r#"[deployers.octo]
kind = "octopus"
url = "http://octopus.invalid"
space = "Spaces-1"
api_key_file = "api-key"

[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"

[[watch.check]]
name = "health"
kind = "http"
url = "http://app.invalid/health"
"#;

const ERRORS: &str = r#"
[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://prometheus.invalid:9090"
query = 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
max = 0.05
"#;

const LATENCY: &str = r#"
[[watch.check]]
name = "latency"
kind = "prometheus"
url = "http://prometheus.invalid:9090"
query = 'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))'
baseline_window = "10m"
max_ratio = 2.0
"#;

/// The README's advice for a quiet service, on any Prometheus check.
const MIN_TRAFFIC: &str =
    "min_traffic = { query = \"sum(rate(http_requests_total[1m]))\", min = 1.0 }\n";

/// backstop's rows. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// The checks of the shipped example config (`config/backstop.example.toml`, what the
    /// package installs): `/health`, the 5xx ratio under an absolute 5% ceiling, the p90 at
    /// most twice its 10-minute baseline.
    Defaults,
    /// The fifth policy of the table, backstop as a careful user configures it: the defaults
    /// plus `compare = "mann-whitney"` on latency (the README's worked example; every compare
    /// key at its default), its answer to the regressions no fixed threshold sees.
    CompareLatency,
    /// Diagnostic: `CompareLatency` plus the rest of the README's advice, its error check
    /// (the scrape example: `max = 0.05`, `max_ratio = 3`) and `min_traffic` of 1 request per
    /// second on both Prometheus checks ("two errors out of three requests at night prove
    /// nothing").
    Readme,
    /// Diagnostic: `Readme` with `min_failure_for = "1m"` on both Prometheus checks, so a
    /// failure run must span the queries' own 1 m window rather than three fast rounds that
    /// read one Prometheus state. Shows what the default `min_failure_for` costs.
    ReadmeSlowConfirm,
    /// Diagnostic: `CompareLatency` with `compare` on the error ratio too (the README gives
    /// `direction = "increase"` for "latency, errors"): the comparison on a signal of a few
    /// Poisson counts per window.
    CompareErrors,
}

impl Config {
    pub fn toml(self) -> String {
        let compare = "compare = \"mann-whitney\"\n";
        let slow = "min_failure_for = \"1m\"\n";
        let readme_errors = format!("max_ratio = 3\n{MIN_TRAFFIC}");
        let (errors, latency) = match self {
            Config::Defaults => (String::new(), String::new()),
            Config::CompareLatency => (String::new(), compare.to_string()),
            Config::Readme => (readme_errors, format!("{compare}{MIN_TRAFFIC}")),
            Config::ReadmeSlowConfirm => (
                format!("{readme_errors}{slow}"),
                format!("{compare}{MIN_TRAFFIC}{slow}"),
            ),
            Config::CompareErrors => (compare.to_string(), compare.to_string()),
        };
        format!("{WATCH}{ERRORS}{errors}{LATENCY}{latency}")
    }
}
