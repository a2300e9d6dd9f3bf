//! Pure judgement: samples in, decisions out. No I/O and no clocks: callers pass the time.
//!
//! - [`Rule`] and [`judge_sample`]: one reading against a check's thresholds and baseline.
//! - [`baseline`]: the pre-deployment reference value.
//! - [`burn`]: error-budget burn rates over two windows (`kind = "slo"`).
//! - [`alerts`]: which alerts a server reports speak against the release (`kind = "alert"`).
//! - [`observation`]: the per-release state machine that turns a stream of sample outcomes into
//!   a verdict (condemned, inconclusive, verified) with its evidence.

pub mod alerts;
pub mod baseline;
pub mod burn;
pub mod compare;
pub mod lookback;
pub mod observation;
pub mod stats;

use std::fmt;

use serde::{Deserialize, Serialize};

/// One threshold of a check. A closed set: each config key is one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "rule", content = "limit", rename_all = "snake_case")]
pub enum Rule {
    /// `expect_status`: the HTTP status must be one of these.
    ExpectStatus(Vec<u16>),
    /// `max`: value must not exceed this.
    Max(f64),
    /// `min`: value must not fall below this.
    Min(f64),
    /// `max_ratio`: value must not exceed ratio x baseline.
    MaxRatio(f64),
    /// `min_ratio`: value must not fall below ratio x baseline.
    MinRatio(f64),
    /// `kind = "alert"`: no matching alert may be firing that became active after the
    /// deployment. Implied by the kind; it has no key of its own.
    NoNewAlert,
    /// `burn_rate` (`kind = "slo"`): the error budget must not burn this many times faster
    /// than the objective allows over both the long and the short window.
    BurnRate(f64),
}

impl Rule {
    /// Whether this rule compares against the pre-deployment baseline.
    pub fn needs_baseline(&self) -> bool {
        matches!(self, Rule::MaxRatio(_) | Rule::MinRatio(_))
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::ExpectStatus(codes) => write!(f, "status in {codes:?}"),
            Rule::Max(m) => write!(f, "value <= {m}"),
            Rule::Min(m) => write!(f, "value >= {m}"),
            Rule::MaxRatio(r) => write!(f, "value <= {r} x baseline"),
            Rule::MinRatio(r) => write!(f, "value >= {r} x baseline"),
            Rule::NoNewAlert => write!(f, "no matching alert firing since after the deployment"),
            Rule::BurnRate(max) => {
                write!(f, "error-budget burn < {}x over both windows", num(*max))
            }
        }
    }
}

/// What a probe measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reading {
    /// An HTTP status code.
    Status(u16),
    /// A metric value.
    Value(f64),
    /// The alerts matching an alert check, classified against the deployment.
    Alerts(alerts::AlertReading),
    /// The good and total counts of an slo check over its two windows.
    Slo(burn::BurnReading),
}

impl Reading {
    /// The reading as a number, for evidence and the check-value metric (an alert check's is
    /// how many matching alerts fired after the deployment).
    pub fn as_f64(&self) -> f64 {
        match self {
            Reading::Status(s) => f64::from(*s),
            Reading::Value(v) => *v,
            Reading::Alerts(a) => a.new as f64,
            Reading::Slo(b) => b.value(),
        }
    }

    /// What the sample should say besides its outcome (an alert check's pending, older or
    /// muted alerts), if anything.
    pub fn note(&self) -> Option<String> {
        match self {
            Reading::Alerts(a) => a.note(),
            Reading::Slo(b) => Some(b.note()),
            Reading::Status(_) | Reading::Value(_) => None,
        }
    }

    /// The matching alerts, for the evidence (empty for other readings).
    pub fn alerts(&self) -> Vec<alerts::SeenAlert> {
        match self {
            Reading::Alerts(a) => a.alerts.clone(),
            Reading::Status(_) | Reading::Value(_) | Reading::Slo(_) => Vec::new(),
        }
    }
}

/// The result of judging one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Every rule held.
    Pass,
    /// A rule was broken; `limit` says which and by how much.
    Fail { limit: String },
    /// The sample could not be judged (target unreachable, no data, no baseline). Errors never
    /// condemn a release: broken telemetry is not a broken application.
    Error {
        reason: String,
        /// backstop itself was late (its scheduler lag above 250 ms): the probe got no answer
        /// because this process could not run it on time. Says nothing about the
        /// application or its telemetry, so it neither extends nor breaks a run of errors
        /// (or failures): a backstop that is overloaded never makes a healthy release
        /// inconclusive by `error_limit`, and its late rounds stay cheap to store (they
        /// start no run that must be written every round, which was the feedback loop that
        /// made an overloaded backstop collapse). Still an error in every count, and a stretch
        /// of them as long as `min_error_for` keeps the release from being verified.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        late: bool,
    },
    /// Measured, and nothing there to judge: neither evidence for nor against the release.
    /// Today: a sample whose look-back reaches into a condemned release (after a rollback, the
    /// bad release's data is still in the query's range), too little traffic (`min_traffic`),
    /// or a failure the check's control shared ("the world, not us"). It breaks no run and
    /// counts toward no limit.
    NoData { reason: String },
}

impl Outcome {
    /// Short label used in metrics: `pass`, `fail` or `error`.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail { .. } => "fail",
            Outcome::Error { .. } => "error",
            Outcome::NoData { .. } => "no_data",
        }
    }
}

/// A number for humans: six significant digits, so float noise such as
/// `0.09999999999999992` reads as `0.1` in verdict texts (the JSON keeps the exact value).
pub fn num(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return v.to_string();
    }
    let digits = (5 - v.abs().log10().floor() as i32).clamp(-300, 300);
    let p = 10f64.powi(digits);
    let r = (v * p).round() / p;
    if r.is_finite() {
        r.to_string()
    } else {
        v.to_string()
    }
}

/// Ratios are undefined against a baseline this close to zero (or negative).
const MIN_BASELINE: f64 = 1e-12;

/// Judges one reading against all rules of a check.
///
/// A broken rule wins over one that cannot be evaluated: an absolute `max` that is exceeded
/// fails the sample even when the baseline for a ratio rule is missing. A ratio rule with no
/// baseline, or a baseline of zero, cannot say anything and yields an error (so a service that
/// had no traffic before the deployment is not condemned for having some afterwards; pair
/// ratio rules with an absolute `max` to catch that case). A rule that measured nothing to
/// judge (an slo check without traffic) makes the sample no data, unless another broke.
pub fn judge_sample(rules: &[Rule], reading: &Reading, baseline: Option<f64>) -> Outcome {
    let mut undecidable = None;
    let mut nothing = None;
    for rule in rules {
        match check_rule(rule, reading, baseline) {
            Ok(()) => {}
            Err(RuleResult::Broken(limit)) => return Outcome::Fail { limit },
            Err(RuleResult::Undecidable(reason)) => {
                undecidable.get_or_insert(reason);
            }
            Err(RuleResult::NothingToJudge(reason)) => {
                nothing.get_or_insert(reason);
            }
        }
    }
    match (undecidable, nothing) {
        (Some(reason), _) => Outcome::Error {
            reason,
            late: false,
        },
        (None, Some(reason)) => Outcome::NoData { reason },
        (None, None) => Outcome::Pass,
    }
}

enum RuleResult {
    Broken(String),
    Undecidable(String),
    NothingToJudge(String),
}

fn check_rule(rule: &Rule, reading: &Reading, baseline: Option<f64>) -> Result<(), RuleResult> {
    use RuleResult::{Broken, Undecidable};
    let value = match (rule, reading) {
        (Rule::NoNewAlert, Reading::Alerts(a)) => {
            return match a.failure() {
                Some(text) => Err(Broken(text)),
                None => Ok(()),
            };
        }
        (Rule::NoNewAlert, _) => {
            return Err(Undecidable("an alert rule needs an alert reading".into()))
        }
        (_, Reading::Alerts(_)) => return Err(Undecidable(format!("{rule} cannot judge alerts"))),
        (Rule::BurnRate(max), Reading::Slo(b)) => {
            return match burn::judge(*max, b) {
                burn::BurnVerdict::Within => Ok(()),
                burn::BurnVerdict::TooFast(text) => Err(Broken(text)),
                burn::BurnVerdict::NoTraffic(reason) => Err(RuleResult::NothingToJudge(reason)),
            };
        }
        (Rule::BurnRate(_), _) => {
            return Err(Undecidable("a burn-rate rule needs an slo reading".into()))
        }
        (_, Reading::Slo(_)) => {
            return Err(Undecidable(format!("{rule} cannot judge an slo reading")))
        }
        (Rule::ExpectStatus(codes), &Reading::Status(code)) => {
            return if codes.contains(&code) {
                Ok(())
            } else {
                Err(Broken(format!(
                    "status {code} not in expect_status {codes:?}"
                )))
            };
        }
        (Rule::ExpectStatus(_), Reading::Value(_)) => {
            return Err(Undecidable("expect_status needs an HTTP status".into()))
        }
        (_, &Reading::Status(code)) => f64::from(code),
        (_, &Reading::Value(v)) => v,
    };
    if !value.is_finite() {
        return Err(Undecidable(format!("value is {value}")));
    }
    let ratio_limit = |ratio: f64| match baseline {
        None => Err(Undecidable("no baseline available".into())),
        Some(b) if !b.is_finite() || b < MIN_BASELINE => Err(Undecidable(format!(
            "baseline is {b}: a ratio against it is undefined"
        ))),
        Some(b) => Ok((b, ratio * b)),
    };
    match *rule {
        Rule::ExpectStatus(_) | Rule::NoNewAlert | Rule::BurnRate(_) => Ok(()),
        Rule::Max(max) if value > max => {
            Err(Broken(format!("value {} > max {}", num(value), num(max))))
        }
        Rule::Min(min) if value < min => {
            Err(Broken(format!("value {} < min {}", num(value), num(min))))
        }
        Rule::Max(_) | Rule::Min(_) => Ok(()),
        Rule::MaxRatio(r) => {
            let (b, limit) = ratio_limit(r)?;
            if value > limit {
                Err(Broken(format!(
                    "value {} > max_ratio {} x baseline {} = {}",
                    num(value),
                    num(r),
                    num(b),
                    num(limit)
                )))
            } else {
                Ok(())
            }
        }
        Rule::MinRatio(r) => {
            let (b, limit) = ratio_limit(r)?;
            if value < limit {
                Err(Broken(format!(
                    "value {} < min_ratio {} x baseline {} = {}",
                    num(value),
                    num(r),
                    num(b),
                    num(limit)
                )))
            } else {
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fails(o: &Outcome) -> bool {
        matches!(o, Outcome::Fail { .. })
    }

    #[test]
    fn status_rule() {
        let r = [Rule::ExpectStatus(vec![200, 204])];
        assert_eq!(judge_sample(&r, &Reading::Status(204), None), Outcome::Pass);
        let o = judge_sample(&r, &Reading::Status(503), None);
        assert!(fails(&o));
        assert!(format!("{o:?}").contains("503"));
    }

    #[test]
    fn absolute_limits_are_inclusive() {
        let r = [Rule::Max(0.05), Rule::Min(0.0)];
        assert_eq!(judge_sample(&r, &Reading::Value(0.05), None), Outcome::Pass);
        assert!(fails(&judge_sample(&r, &Reading::Value(0.0501), None)));
        assert!(fails(&judge_sample(&r, &Reading::Value(-0.1), None)));
    }

    #[test]
    fn ratio_against_baseline() {
        let r = [Rule::MaxRatio(2.0)];
        assert_eq!(
            judge_sample(&r, &Reading::Value(0.2), Some(0.1)),
            Outcome::Pass
        );
        let o = judge_sample(&r, &Reading::Value(0.21), Some(0.1));
        let Outcome::Fail { limit } = o else {
            panic!("expected failure")
        };
        assert!(limit.contains("baseline 0.1"), "{limit}");
        let r = [Rule::MinRatio(0.5)];
        assert!(fails(&judge_sample(&r, &Reading::Value(4.0), Some(10.0))));
        assert_eq!(
            judge_sample(&r, &Reading::Value(5.0), Some(10.0)),
            Outcome::Pass
        );
    }

    #[test]
    fn zero_or_missing_baseline_is_an_error_not_a_failure() {
        let r = [Rule::MaxRatio(2.0)];
        for b in [None, Some(0.0), Some(-1.0), Some(f64::NAN)] {
            assert!(
                matches!(
                    judge_sample(&r, &Reading::Value(5.0), b),
                    Outcome::Error { .. }
                ),
                "baseline {b:?}"
            );
        }
    }

    #[test]
    fn broken_absolute_rule_wins_over_undecidable_ratio() {
        let r = [Rule::MaxRatio(2.0), Rule::Max(1.0)];
        assert!(fails(&judge_sample(&r, &Reading::Value(5.0), None)));
        assert!(matches!(
            judge_sample(&r, &Reading::Value(0.5), None),
            Outcome::Error { .. }
        ));
    }

    #[test]
    fn the_alert_rule_fails_on_new_alerts_only() {
        use alerts::{classify, Alert, AlertState};
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .with_timezone(&chrono::Utc)
        };
        let labels: std::collections::BTreeMap<String, String> =
            [("alertname".to_string(), "Boom".to_string())].into();
        let firing = |since: &str| Alert {
            labels: labels.clone(),
            state: AlertState::Firing,
            active_at: at(since),
        };
        let deployed = at("2024-05-01T12:00:00Z");
        let r = [Rule::NoNewAlert];
        let new = Reading::Alerts(classify(
            &[firing("2024-05-01T12:00:05Z")],
            &labels,
            deployed,
            false,
        ));
        let o = judge_sample(&r, &new, None);
        assert!(fails(&o), "{o:?}");
        assert!(format!("{o:?}").contains("Boom{} firing since 12:00:05, 5 s after"));
        assert_eq!(new.as_f64(), 1.0);
        let old = Reading::Alerts(classify(
            &[firing("2024-05-01T11:00:00Z")],
            &labels,
            deployed,
            false,
        ));
        assert_eq!(judge_sample(&r, &old, None), Outcome::Pass);
        assert!(old.note().unwrap().contains("not this release's"));
        // Mismatched rules and readings cannot judge: errors, never failures.
        assert!(matches!(
            judge_sample(&r, &Reading::Value(1.0), None),
            Outcome::Error { .. }
        ));
        assert!(matches!(
            judge_sample(&[Rule::Max(0.0)], &new, None),
            Outcome::Error { .. }
        ));
    }

    #[test]
    fn the_burn_rate_rule_fails_passes_and_has_no_data() {
        use burn::{BurnReading, WindowCounts};
        let slo = |long_good: f64, short_good: f64, total: f64| {
            Reading::Slo(BurnReading {
                objective: 0.999,
                long: WindowCounts {
                    window_secs: 240,
                    good: long_good,
                    total,
                },
                short: WindowCounts {
                    window_secs: 20,
                    good: short_good,
                    total,
                },
            })
        };
        let r = [Rule::BurnRate(14.4)];
        let o = judge_sample(&r, &slo(950.0, 950.0, 1000.0), None);
        assert!(fails(&o), "{o:?}");
        assert!(format!("{o:?}").contains("burning the error budget 50x too fast"));
        assert_eq!(
            judge_sample(&r, &slo(999.0, 999.0, 1000.0), None),
            Outcome::Pass
        );
        assert_eq!(
            judge_sample(&r, &slo(0.0, 0.0, 0.0), None),
            Outcome::NoData {
                reason: "no traffic over 4m".into()
            }
        );
        // Mismatched rules and readings cannot judge: errors, never failures.
        assert!(matches!(
            judge_sample(&r, &Reading::Value(1.0), None),
            Outcome::Error { .. }
        ));
        assert!(matches!(
            judge_sample(&[Rule::Max(0.0)], &slo(0.0, 0.0, 10.0), None),
            Outcome::Error { .. }
        ));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(0.09999999999999992), "0.1");
        assert_eq!(num(1234.5678), "1234.57");
        assert_eq!(num(0.000000001234), "0.000000001234");
        assert_eq!(num(2.0), "2");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.5), "-0.5");
    }

    #[test]
    fn nan_and_infinite_values_are_errors() {
        let r = [Rule::Max(1.0)];
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                judge_sample(&r, &Reading::Value(v), None),
                Outcome::Error { .. }
            ));
        }
    }
}
