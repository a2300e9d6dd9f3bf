//! The series of each check, exported with `[metrics] per_check = true` only: about 7 per
//! check (the sample counters by result in `backstop_checks_total`, plus these gauges).

use prometheus::{GaugeVec, Opts, Registry};

use super::register;
use crate::judge::Rule;

pub(super) struct PerCheck {
    pub(super) value: GaugeVec,
    pub(super) threshold: GaugeVec,
    pub(super) baseline: GaugeVec,
}

impl PerCheck {
    pub(super) fn register(r: &Registry) -> PerCheck {
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            register(
                r,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        PerCheck {
            value: gauge(
                "backstop_check_value",
                "Last value read by a check (HTTP status for http checks). [metrics] per_check only.",
                &["watch", "check"],
            ),
            threshold: gauge(
                "backstop_check_threshold",
                "Configured limit of a check rule (ratios are multiples of the baseline). [metrics] per_check only.",
                &["watch", "check", "rule"],
            ),
            baseline: gauge(
                "backstop_check_baseline",
                "Pre-deployment baseline of a check in the current observation (NaN when none). [metrics] per_check only.",
                &["watch", "check"],
            ),
        }
    }

    /// Publishes the limits of a check's rules.
    pub(super) fn thresholds(&self, watch: &str, check: &str, rules: &[Rule]) {
        for rule in rules {
            let (name, limit) = match rule {
                Rule::Max(v) => ("max", *v),
                Rule::Min(v) => ("min", *v),
                Rule::MaxRatio(v) => ("max_ratio", *v),
                Rule::MinRatio(v) => ("min_ratio", *v),
                Rule::BurnRate(v) => ("burn_rate", *v),
                Rule::ExpectStatus(_) | Rule::NoNewAlert => continue,
            };
            self.threshold
                .with_label_values(&[watch, check, name])
                .set(limit);
        }
    }
}
