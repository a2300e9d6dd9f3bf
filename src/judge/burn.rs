//! Error-budget burn rate (`kind = "slo"`): the multiwindow, multi-burn-rate rule of the
//! Google SRE workbook, scaled down to an observation. Pure: the elapsed time and the counters'
//! increases in, windows and a verdict out.
//!
//! The workbook pages when the budget burns 14.4 times too fast over 1h *and* over a 5m short
//! window (a twelfth of it): the long window proves the burn is real, the short one that it is
//! still happening. backstop cannot wait an hour, and must not read data from before the
//! deployment (that is the previous release's), so [`windows`] scales the pair down to the
//! observation: the long window is the time since the deployment, capped at `long_window`
//! (default 1h), the short window a twelfth of it (at least 1 s), the threshold unchanged.
//! A burn rate is a ratio of ratios, so it means the same over 4 minutes as over an hour; only
//! its noise grows as the windows shrink, which is what `failure_limit` and `min_failure_for`
//! are there for.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The short window is the long one divided by this, as in the workbook (1h / 5m).
pub const SHORT_WINDOW_DIVISOR: u32 = 12;

/// The shortest window queried: Prometheus needs two samples in a range to compute an
/// increase, and a sub-second range has none worth judging.
pub const MIN_WINDOW: Duration = Duration::from_secs(1);

/// The two windows of one sample, whole seconds (they appear in PromQL and in evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    pub long: Duration,
    pub short: Duration,
}

/// The windows of a sample taken `elapsed` after the deployment started: the long window is
/// `elapsed` capped at `long_window`, so it never reaches before the deployment; the short one
/// a twelfth of it. `None` while less than [`MIN_WINDOW`] has elapsed: nothing of this release
/// to read yet.
pub fn windows(elapsed: Duration, long_window: Duration) -> Option<Windows> {
    let long = Duration::from_secs(elapsed.min(long_window).as_secs());
    if long < MIN_WINDOW {
        return None;
    }
    let short = Duration::from_secs((long / SHORT_WINDOW_DIVISOR).as_secs())
        .max(MIN_WINDOW)
        .min(long);
    Some(Windows { long, short })
}

/// The counters' increases over one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowCounts {
    /// The window, in seconds.
    pub window_secs: u64,
    pub good: f64,
    pub total: f64,
}

impl WindowCounts {
    /// The share of bad events; `None` without traffic. Clamped to [0, 1]: counters scraped a
    /// moment apart can report a little more good than total.
    pub fn error_ratio(&self) -> Option<f64> {
        (self.total > 0.0).then(|| (1.0 - self.good / self.total).clamp(0.0, 1.0))
    }

    fn window(&self) -> String {
        humantime::format_duration(Duration::from_secs(self.window_secs)).to_string()
    }
}

/// What an slo check measured in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BurnReading {
    /// The check's `objective` (e.g. 0.999): the error budget is `1 - objective`.
    pub objective: f64,
    pub long: WindowCounts,
    pub short: WindowCounts,
}

impl BurnReading {
    /// How many times faster than the objective allows the budget burns over a window;
    /// `None` without traffic.
    pub fn burn(&self, w: &WindowCounts) -> Option<f64> {
        w.error_ratio().map(|r| r / (1.0 - self.objective))
    }

    /// The sample's value for evidence and metrics: the long window's burn rate (0 without
    /// traffic).
    pub fn value(&self) -> f64 {
        self.burn(&self.long).unwrap_or(0.0)
    }

    /// Both windows' burn rates and error ratios, for every sample's evidence.
    pub fn note(&self) -> String {
        let one = |w: &WindowCounts| match (self.burn(w), w.error_ratio()) {
            (Some(b), Some(r)) => format!(
                "{}x ({}% errors) over {}",
                sig3(b),
                sig3(r * 100.0),
                w.window()
            ),
            _ => format!("no traffic over {}", w.window()),
        };
        format!("burn {}, {}", one(&self.long), one(&self.short))
    }
}

/// What one sample says about the budget.
#[derive(Debug, Clone, PartialEq)]
pub enum BurnVerdict {
    /// At least one window burns slower than allowed.
    Within,
    /// Both windows burn at least `max` times too fast; the text says by how much.
    TooFast(String),
    /// A window saw no traffic: nothing to judge.
    NoTraffic(String),
}

/// Judges a reading against the allowed burn rate: too fast when BOTH windows burn the budget
/// at least `max` times faster than the objective allows (the long window alone would keep
/// condemning a release that has recovered; the short one alone would act on a blip).
pub fn judge(max: f64, r: &BurnReading) -> BurnVerdict {
    let (Some(long), Some(short)) = (r.burn(&r.long), r.burn(&r.short)) else {
        let w = if r.long.total > 0.0 {
            &r.short
        } else {
            &r.long
        };
        return BurnVerdict::NoTraffic(format!("no traffic over {}", w.window()));
    };
    if long < max || short < max {
        return BurnVerdict::Within;
    }
    let pct = |w: &WindowCounts| sig3(w.error_ratio().unwrap_or(0.0) * 100.0);
    BurnVerdict::TooFast(format!(
        "burning the error budget {}x too fast (allowed {}x): {}% errors over {}, {}% over {}, objective {}%",
        sig3(long.min(short)),
        super::num(max),
        pct(&r.long),
        r.long.window(),
        pct(&r.short),
        r.short.window(),
        super::num(r.objective * 100.0),
    ))
}

/// Three significant digits, trailing zeros dropped: burn rates and percentages for humans.
fn sig3(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return super::num(v);
    }
    let decimals = (2 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn counts(window_secs: u64, good: f64, total: f64) -> WindowCounts {
        WindowCounts {
            window_secs,
            good,
            total,
        }
    }

    fn reading(long: (f64, f64), short: (f64, f64)) -> BurnReading {
        BurnReading {
            objective: 0.999,
            long: counts(240, long.0, long.1),
            short: counts(20, short.0, short.1),
        }
    }

    #[test]
    fn windows_follow_the_observation_and_never_reach_before_it() {
        let hour = secs(3600);
        let w = windows(secs(240), hour).unwrap();
        assert_eq!((w.long, w.short), (secs(240), secs(20)));
        // Capped at long_window: the workbook's own 1h / 5m pair.
        let w = windows(secs(5 * 3600), hour).unwrap();
        assert_eq!((w.long, w.short), (hour, secs(300)));
        // Sub-second parts dropped (the long window must not exceed the elapsed time).
        let w = windows(Duration::from_millis(59_900), hour).unwrap();
        assert_eq!((w.long, w.short), (secs(59), secs(4)));
        // Young observations: the short window is at least a second, never longer than long.
        let w = windows(secs(5), hour).unwrap();
        assert_eq!((w.long, w.short), (secs(5), secs(1)));
        let w = windows(secs(1), hour).unwrap();
        assert_eq!((w.long, w.short), (secs(1), secs(1)));
        assert_eq!(windows(Duration::from_millis(900), hour), None);
        assert_eq!(windows(Duration::ZERO, hour), None);
        // A custom long window.
        let w = windows(secs(600), secs(120)).unwrap();
        assert_eq!((w.long, w.short), (secs(120), secs(10)));
    }

    #[test]
    fn a_fast_burn_over_both_windows_fails_with_the_numbers() {
        // 2.35% errors over 4m and 3.1% over 20s against a 0.1% budget: 23.5x and 31x.
        let r = reading((9765.0, 10_000.0), (969.0, 1000.0));
        assert!((r.burn(&r.long).unwrap() - 23.5).abs() < 1e-9);
        let BurnVerdict::TooFast(text) = judge(14.4, &r) else {
            panic!("expected too fast");
        };
        assert_eq!(
            text,
            "burning the error budget 23.5x too fast (allowed 14.4x): 2.35% errors over 4m, 3.1% over 20s, objective 99.9%"
        );
        assert_eq!(r.value(), r.burn(&r.long).unwrap());
        assert_eq!(
            r.note(),
            "burn 23.5x (2.35% errors) over 4m, 31x (3.1% errors) over 20s"
        );
    }

    #[test]
    fn a_slow_burn_passes() {
        // 1% errors: 10x, under 14.4x on both windows.
        let r = reading((9900.0, 10_000.0), (990.0, 1000.0));
        assert_eq!(judge(14.4, &r), BurnVerdict::Within);
        // Exactly at the limit on both windows is too fast (>=).
        let r = BurnReading {
            objective: 0.5,
            ..reading((50.0, 100.0), (5.0, 10.0))
        };
        assert!(matches!(judge(1.0, &r), BurnVerdict::TooFast(_)));
    }

    #[test]
    fn a_recovered_short_window_passes() {
        // The long window still remembers the burst; the last 20 s are clean.
        let r = reading((9000.0, 10_000.0), (1000.0, 1000.0));
        assert_eq!(judge(14.4, &r), BurnVerdict::Within);
        // And a blip in the short window alone is not enough.
        let r = reading((9990.0, 10_000.0), (500.0, 1000.0));
        assert_eq!(judge(14.4, &r), BurnVerdict::Within);
    }

    #[test]
    fn no_traffic_is_no_data_naming_the_window() {
        let r = reading((0.0, 0.0), (0.0, 0.0));
        assert_eq!(
            judge(14.4, &r),
            BurnVerdict::NoTraffic("no traffic over 4m".into())
        );
        let r = reading((9000.0, 10_000.0), (0.0, 0.0));
        assert_eq!(
            judge(14.4, &r),
            BurnVerdict::NoTraffic("no traffic over 20s".into())
        );
        assert_eq!(
            r.note(),
            "burn 100x (10% errors) over 4m, no traffic over 20s"
        );
        assert_eq!(reading((0.0, 0.0), (0.0, 0.0)).value(), 0.0);
    }

    #[test]
    fn more_good_than_total_is_no_errors_not_a_negative_burn() {
        let r = reading((10_002.0, 10_000.0), (1001.0, 1000.0));
        assert_eq!(r.burn(&r.long), Some(0.0));
        assert_eq!(judge(14.4, &r), BurnVerdict::Within);
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(23.456), "23.5");
        assert_eq!(sig3(14.4), "14.4");
        assert_eq!(sig3(150.3), "150");
        assert_eq!(sig3(3.1), "3.1");
        assert_eq!(sig3(0.05), "0.05");
        assert_eq!(sig3(2.0), "2");
        assert_eq!(sig3(0.0), "0");
    }
}
