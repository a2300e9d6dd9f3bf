//! `[metrics]`: what `/metrics` exports beyond the bounded default.

use super::fields::Table;

/// `[metrics]`. Read at start.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsConfig {
    /// `per_check`: also export one set of series per check (default `false`):
    /// `backstop_checks_total` gains a `check` label, and `backstop_check_value`,
    /// `backstop_check_threshold` and `backstop_check_baseline` appear. Costs about 7 series
    /// (~500 bytes of `/metrics`) per check: ~7.1 MB instead of 2.1 MB at 3,400 watches of 3
    /// checks. The default keeps every watch at 10 series whatever its number of checks.
    pub per_check: bool,
}

pub(super) fn metrics(root: &Table) -> MetricsConfig {
    let mut c = MetricsConfig::default();
    let Some(t) = root.table("metrics") else {
        return c;
    };
    if let Some(per_check) = t.boolean("per_check") {
        c.per_check = per_check;
    }
    t.finish();
    c
}
