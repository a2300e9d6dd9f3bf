//! The configurations of backstop's rows: what a user writes, as TOML the daemon would load.
//! Timing keys are never set: every row runs backstop's defaults (warmup 15s, window 10m,
//! interval 10s, fast 2s for 2m, failure_limit 3 over ≥ 4s and, on a 1-minute query, ≥ 30s;
//! error_limit 5 over ≥ 40s).

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

/// The error check of the shipped example config: the 5xx share (0 while no 5xx series
/// exists yet, not an empty result), at most 3 × its baseline and never judged against a
/// baseline under 1% (so the limit is never below 3%), under an absolute 5% ceiling, and no
/// data below 1 request per second.
const ERRORS: &str = r#"
[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://prometheus.invalid:9090"
query = '(sum(rate(http_requests_total{code=~"5.."}[1m])) or vector(0)) / sum(rate(http_requests_total[1m]))'
max = 0.05
max_ratio = 3
baseline_floor = 0.01
min_traffic = { query = "sum(rate(http_requests_total[1m]))", min = 1.0 }
"#;

/// The example's latency check: the p90 at most twice its 10-minute baseline, no data below
/// 1 request per second.
const LATENCY: &str = r#"
[[watch.check]]
name = "latency"
kind = "prometheus"
url = "http://prometheus.invalid:9090"
query = 'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))'
baseline_window = "10m"
max_ratio = 2.0
min_traffic = { query = "sum(rate(http_requests_total[1m]))", min = 1.0 }
"#;

/// The example's checks before benchmark 4: an absolute 5% ceiling on the 5xx share (empty
/// while no 5xx series exists), the p90 at most twice its baseline, no `min_traffic`.
const PREVIOUS: &str = r#"
[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://prometheus.invalid:9090"
query = 'sum(rate(http_requests_total{code=~"5.."}[1m])) / sum(rate(http_requests_total[1m]))'
max = 0.05

[[watch.check]]
name = "latency"
kind = "prometheus"
url = "http://prometheus.invalid:9090"
query = 'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))'
baseline_window = "10m"
max_ratio = 2.0
"#;

/// backstop's rows. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Config {
    /// The checks of the shipped example config (`config/backstop.example.toml`, what the
    /// package installs): `/health`, the 5xx share relative to its baseline with a floor, the
    /// p90 at most twice its 10-minute baseline, `min_traffic` on both.
    Defaults,
    /// The fifth policy of the table, backstop as a careful user configures it: the defaults
    /// plus `compare = "mann-whitney"` on latency (the README's worked example; every compare
    /// key at its default), its answer to the regressions no fixed threshold sees.
    CompareLatency,
    /// Diagnostic: the example's checks before benchmark 4 ([`PREVIOUS`]), on today's core:
    /// what the example's new error check and `min_traffic` buy.
    Previous,
    /// Diagnostic: `CompareLatency` with `min_failure_for = "1m"` on both Prometheus checks,
    /// a failure run spanning the queries' whole 1 m window rather than the default half:
    /// what the default's trade of detection time for false rollbacks leaves out.
    SlowConfirm,
    /// Diagnostic: `CompareLatency` with `compare` on the error ratio too (the README gives
    /// `direction = "increase"` for "latency, errors"): the comparison on a signal of a few
    /// Poisson counts per window.
    CompareErrors,
}

impl Config {
    pub fn toml(self) -> String {
        let compare = "compare = \"mann-whitney\"\n";
        let slow = "min_failure_for = \"1m\"\n";
        let (errors, latency) = match self {
            Config::Previous => return format!("{WATCH}{PREVIOUS}"),
            Config::Defaults => (String::new(), String::new()),
            Config::CompareLatency => (String::new(), compare.to_string()),
            Config::SlowConfirm => (slow.to_string(), format!("{compare}{slow}")),
            Config::CompareErrors => (compare.to_string(), compare.to_string()),
        };
        format!("{WATCH}{ERRORS}{errors}{LATENCY}{latency}")
    }
}
