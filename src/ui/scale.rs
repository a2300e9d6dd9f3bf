//! Axis maths for the charts: linear scales, "nice" value ticks (1, 2, 5 × 10^k) and time ticks
//! on round clock steps. Pure: numbers in, numbers out.

use chrono::{DateTime, TimeZone, Utc};

/// Maps a domain interval onto a pixel range (which may run backwards, as the y axis does).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Linear {
    pub d0: f64,
    pub d1: f64,
    pub r0: f64,
    pub r1: f64,
}

impl Linear {
    pub fn new((d0, d1): (f64, f64), (r0, r1): (f64, f64)) -> Self {
        Linear { d0, d1, r0, r1 }
    }

    /// The pixel of `v`; the middle of the range when the domain is empty.
    pub fn map(&self, v: f64) -> f64 {
        let span = self.d1 - self.d0;
        if span.abs() < f64::EPSILON * self.d0.abs().max(1.0) {
            return (self.r0 + self.r1) / 2.0;
        }
        self.r0 + (v - self.d0) / span * (self.r1 - self.r0)
    }
}

/// A value axis: its bounds (tick-aligned) and its ticks, lowest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueAxis {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub ticks: Vec<f64>,
}

/// The nice step (1, 2 or 5 × 10^k) that cuts `span` into about `target` parts.
pub fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span.abs() / target.max(1) as f64;
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let frac = raw / mag;
    let nice = if frac <= 1.0 {
        1.0
    } else if frac <= 2.0 {
        2.0
    } else if frac <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Values are clamped to this magnitude before an axis is fitted to them.
const MAX_MAGNITUDE: f64 = 1e300;

/// A value axis covering every value given, with about `target` ticks. Starts at zero when
/// all values are positive and zero is near (so a doubling looks like one); an empty or flat
/// set of values still gets a readable axis.
pub fn value_axis(values: impl IntoIterator<Item = f64>, target: usize) -> ValueAxis {
    let (mut lo, mut hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        // Far beyond any readable axis, and near f64::MAX the span and the rounded bounds
        // overflow to infinity (then the tick count would be usize::MAX).
        .map(|v| v.clamp(-MAX_MAGNITUDE, MAX_MAGNITUDE))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    if lo >= 0.0 && lo <= hi * 0.5 {
        lo = 0.0;
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.1 };
        (lo, hi) = (if lo == 0.0 { 0.0 } else { lo - pad }, hi + pad);
    }
    let step = nice_step(hi - lo, target);
    let lo = (lo / step).floor() * step;
    let hi = (hi / step).ceil() * step;
    // At most a few more than `target` by construction; capped all the same, so that no
    // rounding at the edges of f64 can ask for a huge tick list.
    let n = (((hi - lo) / step).round() as usize).min(target.max(1) * 4);
    // Rounded to the step's precision so labels read 0.3, not 0.30000000000000004.
    let digits = (-step.log10().floor()).max(0.0) as i32 + 1;
    let p = 10f64.powi(digits);
    let ticks = (0..=n)
        .map(|i| ((lo + i as f64 * step) * p).round() / p)
        .collect();
    ValueAxis {
        lo,
        hi,
        step,
        ticks,
    }
}

/// A tick label: no more digits than the step needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    let s = format!("{v:.decimals$}");
    if s == "-0"
        || s.trim_start_matches('-')
            .chars()
            .all(|c| c == '0' || c == '.')
    {
        format!("{:.decimals$}", 0.0)
    } else {
        s
    }
}

/// Clock steps for time axes, in seconds.
const TIME_STEPS: [i64; 19] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800,
];

/// Ticks on round clock times (UTC) between `from` and `to`, about `target` of them, with the
/// step in seconds.
pub fn time_ticks(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    target: usize,
) -> (Vec<DateTime<Utc>>, i64) {
    let span = (to - from).num_milliseconds().max(1) as f64 / 1000.0;
    let want = span / target.max(1) as f64;
    let step = TIME_STEPS
        .iter()
        .copied()
        .find(|s| *s as f64 >= want)
        .unwrap_or(((want / 86400.0).ceil() as i64).max(1) * 86400);
    let first = from.timestamp().div_euclid(step) * step;
    let mut ticks = Vec::new();
    let mut t = first;
    while t <= to.timestamp() {
        if let Some(at) = Utc.timestamp_opt(t, 0).single() {
            if at >= from {
                ticks.push(at);
            }
        }
        t += step;
    }
    (ticks, step)
}

/// A time tick label: seconds only when the step needs them.
pub fn time_label(at: DateTime<Utc>, step: i64) -> String {
    if step < 60 {
        at.format("%H:%M:%S").to_string()
    } else if step < 86400 {
        at.format("%H:%M").to_string()
    } else {
        at.format("%m-%d").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_maps_both_ways_and_survives_an_empty_domain() {
        let y = Linear::new((0.0, 10.0), (200.0, 0.0));
        assert_eq!(y.map(0.0), 200.0);
        assert_eq!(y.map(10.0), 0.0);
        assert_eq!(y.map(2.5), 150.0);
        assert_eq!(Linear::new((3.0, 3.0), (0.0, 100.0)).map(3.0), 50.0);
    }

    #[test]
    fn nice_steps_are_one_two_or_five_times_a_power_of_ten() {
        assert_eq!(nice_step(1.0, 5), 0.2);
        assert_eq!(nice_step(0.3, 5), 0.1);
        assert_eq!(nice_step(503.0, 5), 200.0);
        assert_eq!(nice_step(7.0, 5), 2.0);
        assert_eq!(nice_step(0.0, 5), 1.0);
    }

    #[test]
    fn value_axis_covers_the_values_from_zero_with_round_ticks() {
        let a = value_axis([0.004, 0.25, 0.05], 5);
        assert_eq!(a.lo, 0.0);
        assert!(a.hi >= 0.25);
        assert_eq!(a.ticks, vec![0.0, 0.05, 0.1, 0.15, 0.2, 0.25]);
        let http = value_axis([200.0, 503.0], 5);
        assert_eq!(http.lo, 0.0);
        assert_eq!(http.ticks.last(), Some(&600.0));
    }

    #[test]
    fn value_axis_survives_values_at_the_edges_of_f64() {
        for values in [
            vec![-1e308, 1e308],
            vec![-1.0, 1.7e308],
            vec![f64::MAX],
            vec![f64::MIN, 0.0],
            vec![f64::MIN, f64::MAX, f64::NAN, f64::INFINITY],
        ] {
            let a = value_axis(values.clone(), 5);
            assert!(a.lo.is_finite() && a.hi.is_finite(), "{values:?}: {a:?}");
            assert!(a.lo < a.hi, "{values:?}: {a:?}");
            assert!((2..=21).contains(&a.ticks.len()), "{values:?}: {a:?}");
        }
    }

    #[test]
    fn value_axis_keeps_a_far_from_zero_range_tight() {
        let a = value_axis([98.0, 99.5, 99.9], 5);
        assert!(a.lo >= 97.0 && a.lo <= 98.0, "{a:?}");
        assert!(a.hi >= 99.9 && a.hi <= 100.5, "{a:?}");
    }

    #[test]
    fn value_axis_of_nothing_or_one_value_is_still_an_axis() {
        let a = value_axis([], 5);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        let a = value_axis([0.0, 0.0], 5);
        assert!(a.hi > 0.0);
        let a = value_axis([5.0], 5);
        assert!(a.lo <= 5.0 && a.hi > 5.0, "{a:?}");
        let a = value_axis([f64::NAN, 2.0, f64::INFINITY], 5);
        assert!(a.hi >= 2.0 && a.hi.is_finite());
    }

    #[test]
    fn tick_labels_have_the_steps_precision() {
        assert_eq!(tick_label(0.15000000000000002, 0.05), "0.15");
        assert_eq!(tick_label(400.0, 200.0), "400");
        assert_eq!(tick_label(-0.0, 0.1), "0.0");
        assert_eq!(tick_label(0.0, 1.0), "0");
    }

    #[test]
    fn time_ticks_fall_on_round_clock_times() {
        let from = Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 3).unwrap();
        let to = Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 33).unwrap();
        let (ticks, step) = time_ticks(from, to, 6);
        assert_eq!(step, 5);
        assert_eq!(ticks.first().unwrap().timestamp() % 5, 0);
        assert!(ticks.iter().all(|t| *t >= from && *t <= to));
        assert_eq!(ticks.len(), 6);
        assert_eq!(time_label(ticks[0], step), "12:00:05");
        let (ticks, step) = time_ticks(from, from + chrono::Duration::hours(3), 6);
        assert_eq!(step, 1800);
        assert_eq!(time_label(ticks[0], step), "12:30");
    }
}
