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
    /// As a careful user configures it following the README: the error check of its scrape
    /// example (`max = 0.05`, `max_ratio = 3`, `min_traffic` of 1 request per second: "two
    /// errors out of three requests at night prove nothing"), and its answer to regressions
    /// no fixed threshold sees, `compare = "mann-whitney"` on latency (its worked example,
    /// every compare key at its default), with the same `min_traffic`.
    Careful,
    /// Diagnostic, not a recommendation: `Careful` with `compare` on the error ratio too (the
    /// README gives `direction = "increase"` for "latency, errors"). Shows the comparison on a
    /// signal of a few Poisson counts per window.
    CompareErrors,
    /// Diagnostic, not a recommendation: `Careful` with `min_failure_for = "1m"` on both
    /// Prometheus checks, so a failure run must span the queries' own 1 m window instead of
    /// three fast rounds reading one Prometheus state. Shows what the default costs.
    SlowConfirm,
}

impl Config {
    pub fn toml(self) -> String {
        let careful_errors = "max_ratio = 3\n".to_string() + MIN_TRAFFIC;
        let careful_latency = "compare = \"mann-whitney\"\n".to_string() + MIN_TRAFFIC;
        let (errors, latency) = match self {
            Config::Defaults => (String::new(), String::new()),
            Config::Careful => (careful_errors, careful_latency),
            Config::CompareErrors => (
                careful_errors + "compare = \"mann-whitney\"\n",
                careful_latency,
            ),
            Config::SlowConfirm => (
                careful_errors + "min_failure_for = \"1m\"\n",
                careful_latency + "min_failure_for = \"1m\"\n",
            ),
        };
        format!("{WATCH}{ERRORS}{errors}{LATENCY}{latency}")
    }
}
