//! The control rule ("us or the world?"): a failed sample is no data when the check's
//! `control_query` (the same signal for something this deployment did not touch) degraded by
//! about the same ratio in the same round. The shell reads the control beside the check; this
//! keeps the control's baseline in the check's track and decides, without I/O.
//!
//! Choices, and why:
//! - Only failures are judged: a control never turns a pass into anything else.
//! - A control that cannot be read (now or its baseline) leaves the failure a failure: a
//!   broken control must never excuse a broken release.
//! - Moves are compared as ratios to each one's own pre-deployment baseline, on a log scale,
//!   so a doubling and a halving are moves of the same size and a control that moved the other
//!   way (improved) never excuses: the control's move in the failing direction must be at
//!   least `(1 - control_tolerance)` of the check's.
//! - The failing direction comes from the broken rule (`max`/`max_ratio`: a rise;
//!   `min`/`min_ratio`: a fall). A failure with no broken threshold (a `compare` failure, or
//!   `no_data = "fail"`), a check without a usable baseline (unread, or not above zero, as an
//!   error rate of 0 before the deployment), or a check that did not move in the failing
//!   direction from its baseline (its threshold was broken before the deployment) has no ratio
//!   to compare: the failure stays.

use super::{ControlReading, Transition};
use crate::judge::observation::CheckTrack;
use crate::judge::{num, Outcome, Rule};

/// The control's value now and its pre-deployment baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Control {
    pub now: f64,
    pub baseline: f64,
}

impl Transition<'_> {
    /// The check's outcome with its control, when it has one: keeps the control's baseline in
    /// the track once read, then applies [`judge`]. `value` is the check's reading.
    pub(super) fn controlled(
        &self,
        track: &mut CheckTrack,
        value: Option<f64>,
        reading: Option<ControlReading>,
        outcome: Outcome,
    ) -> Outcome {
        let Some(cfg) = self
            .cfg
            .checks
            .iter()
            .find(|c| c.name == track.name)
            .and_then(|c| c.control.as_ref())
        else {
            return outcome;
        };
        let control = match reading {
            None => Err("not read this round".to_string()),
            Some(r) => {
                let mut baseline_error = None;
                match r.baseline {
                    Some(Ok(b)) => track.control_baseline = Some(b),
                    Some(Err(e)) => baseline_error = Some(e),
                    None => {}
                }
                match (r.now, track.control_baseline) {
                    (Err(e), _) => Err(e),
                    (Ok(now), Some(baseline)) => Ok(Control { now, baseline }),
                    (Ok(_), None) => Err(format!(
                        "its baseline is unavailable: {}",
                        baseline_error.as_deref().unwrap_or("not read yet")
                    )),
                }
            }
        };
        judge(
            outcome,
            &track.rules,
            value,
            track.baseline,
            control,
            cfg.tolerance,
        )
    }
}

/// Which way a failure went.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Way {
    Up,
    Down,
}

/// The rule itself; see the module's doc. `value` and `baseline` are the check's own.
pub(super) fn judge(
    outcome: Outcome,
    rules: &[Rule],
    value: Option<f64>,
    baseline: Option<f64>,
    control: Result<Control, String>,
    tolerance: f64,
) -> Outcome {
    let Outcome::Fail { limit } = outcome else {
        return outcome;
    };
    let fail = |why: String| Outcome::Fail {
        limit: format!("{limit}; {why}"),
    };
    let c = match control {
        Ok(c) => c,
        Err(e) => return fail(format!("control unreadable ({e}): it excuses nothing")),
    };
    let shown = format!("control {} vs baseline {}", num(c.now), num(c.baseline));
    let Some(way) = value.and_then(|v| failing_way(rules, v, baseline)) else {
        return fail(format!("{shown}: no broken threshold to compare it with"));
    };
    let (Some(mine), Some(theirs)) = (
        value.zip(baseline).and_then(|(v, b)| ratio(v, b)),
        ratio(c.now, c.baseline),
    ) else {
        return fail(format!(
            "{shown}: no ratio to compare (a baseline unread or not above zero)"
        ));
    };
    // Signed so that a move in the failing direction is positive.
    let toward = |r: f64| match way {
        Way::Up => r.ln(),
        Way::Down => -r.ln(),
    };
    let (own, world) = (toward(mine), toward(theirs));
    if own > 0.0 && world >= own * (1.0 - tolerance) {
        Outcome::NoData {
            reason: format!(
                "the world, not us: control {} too ({shown}; this check {}, {} vs baseline {}: {limit})",
                moved(theirs),
                moved(mine),
                num(value.unwrap_or_default()),
                num(baseline.unwrap_or_default()),
            ),
        }
    } else {
        fail(format!(
            "control {} ({shown}): not the world",
            moved(theirs)
        ))
    }
}

/// `now / baseline`, when the baseline is above zero and both are numbers.
fn ratio(now: f64, baseline: f64) -> Option<f64> {
    (baseline > 0.0 && baseline.is_finite() && now.is_finite() && now >= 0.0)
        .then(|| now / baseline)
}

/// The direction of the broken rules: up for `max`/`max_ratio`, down for `min`/`min_ratio`;
/// `None` when none (or, impossibly, both) are broken.
fn failing_way(rules: &[Rule], value: f64, baseline: Option<f64>) -> Option<Way> {
    let broken = |r: &Rule| match *r {
        Rule::Max(m) => (value > m).then_some(Way::Up),
        Rule::Min(m) => (value < m).then_some(Way::Down),
        Rule::MaxRatio(x) => baseline.filter(|b| value > x * b).map(|_| Way::Up),
        Rule::MinRatio(x) => baseline.filter(|b| value < x * b).map(|_| Way::Down),
        Rule::ExpectStatus(_) | Rule::NoNewAlert | Rule::BurnRate(_) => None,
    };
    let mut ways = rules.iter().filter_map(broken);
    let first = ways.next()?;
    ways.all(|w| w == first).then_some(first)
}

/// A ratio as a move: "up 3.1x", "down to 0.42x", "flat".
fn moved(r: f64) -> String {
    let x = |r: f64| {
        if r >= 1.95 {
            format!("{r:.1}x")
        } else {
            format!("{r:.2}x")
        }
    };
    if (r - 1.0).abs() < 0.005 {
        "flat".into()
    } else if r > 1.0 {
        format!("up {}", x(r))
    } else {
        format!("down to {}", x(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail() -> Outcome {
        Outcome::Fail {
            limit: "value 0.3 > max 0.1".into(),
        }
    }

    fn ctl(now: f64, baseline: f64) -> Result<Control, String> {
        Ok(Control { now, baseline })
    }

    /// An error rate that rose from 0.1 to 0.3 (3x) and broke `max = 0.1`.
    fn up(control: Result<Control, String>) -> Outcome {
        judge(
            fail(),
            &[Rule::Max(0.1)],
            Some(0.3),
            Some(0.1),
            control,
            0.5,
        )
    }

    #[test]
    fn the_world_degraded_too_is_no_data_with_both_shown() {
        let o = up(ctl(31.0, 10.0));
        let Outcome::NoData { reason } = o else {
            panic!("expected no data, got {o:?}");
        };
        assert!(
            reason.starts_with("the world, not us: control up 3.1x too"),
            "{reason}"
        );
        assert!(reason.contains("control 31 vs baseline 10"), "{reason}");
        assert!(
            reason.contains("this check up 3.0x, 0.3 vs baseline 0.1"),
            "{reason}"
        );
    }

    #[test]
    fn only_us_stays_a_failure() {
        let o = up(ctl(10.5, 10.0));
        assert!(
            matches!(&o, Outcome::Fail { limit } if limit.contains("control up 1.05x (control 10.5 vs baseline 10): not the world")),
            "{o:?}"
        );
    }

    #[test]
    fn an_unreadable_control_excuses_nothing() {
        let o = up(Err("prometheus unreachable".into()));
        assert!(
            matches!(&o, Outcome::Fail { limit } if limit.contains("control unreadable (prometheus unreachable)")),
            "{o:?}"
        );
    }

    #[test]
    fn a_control_that_improved_excuses_nothing() {
        let o = up(ctl(2.0, 10.0));
        assert!(
            matches!(&o, Outcome::Fail { limit } if limit.contains("control down to 0.20x")),
            "{o:?}"
        );
    }

    #[test]
    fn tolerance_is_a_share_of_the_move_on_a_log_scale() {
        // The check is up 3x: with 0.5, the control must be up at least sqrt(3) = 1.73x.
        assert!(matches!(up(ctl(17.4, 10.0)), Outcome::NoData { .. }));
        assert!(matches!(up(ctl(17.2, 10.0)), Outcome::Fail { .. }));
        // Tolerance 0: as far as the check.
        let strict = |now| {
            judge(
                fail(),
                &[Rule::Max(0.1)],
                Some(0.3),
                Some(0.1),
                ctl(now, 10.0),
                0.0,
            )
        };
        assert!(matches!(strict(29.0), Outcome::Fail { .. }));
        assert!(matches!(strict(30.5), Outcome::NoData { .. }));
    }

    #[test]
    fn falls_are_symmetric() {
        // Throughput fell from 100 to 25 (0.25x) and broke min_ratio 0.5.
        let down = |now| {
            judge(
                Outcome::Fail {
                    limit: "below".into(),
                },
                &[Rule::MinRatio(0.5)],
                Some(25.0),
                Some(100.0),
                ctl(now, 1000.0),
                0.5,
            )
        };
        let o = down(480.0);
        assert!(
            matches!(&o, Outcome::NoData { reason } if reason.contains("control down to 0.48x too")),
            "{o:?}"
        );
        assert!(matches!(down(600.0), Outcome::Fail { .. }));
        assert!(
            matches!(down(2000.0), Outcome::Fail { .. }),
            "the control rose"
        );
    }

    #[test]
    fn passes_errors_and_no_data_are_untouched() {
        for o in [
            Outcome::Pass,
            Outcome::Error {
                reason: "x".into(),
                late: false,
            },
            Outcome::NoData { reason: "y".into() },
        ] {
            assert_eq!(
                judge(
                    o.clone(),
                    &[Rule::Max(0.1)],
                    Some(0.05),
                    Some(0.1),
                    ctl(31.0, 10.0),
                    0.5
                ),
                o
            );
        }
    }

    /// The README's worked example, as `backstop explain` prints it.
    #[test]
    fn explain_shows_the_control_and_its_baseline() {
        use crate::judge::observation::Sample;
        // p99 latency 0.12s before, 0.62s now (max 0.5); the other region's 40ms before, 124ms now.
        let rules = [Rule::Max(0.5), Rule::MaxRatio(2.0)];
        let outcome =
            crate::judge::judge_sample(&rules, &crate::judge::Reading::Value(0.62), Some(0.12));
        let outcome = judge(
            outcome,
            &rules,
            Some(0.62),
            Some(0.12),
            ctl(0.124, 0.04),
            0.5,
        );
        let mut ev = crate::sinks::testing::alert(crate::sinks::AlertKind::Condemned)
            .evidence
            .unwrap();
        ev.checks[1].control = Some(
            r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{region="us"}[1m]))) at http://prometheus:9090, tolerance 0.5"#.into(),
        );
        let track = &mut ev.checks[1].track;
        track.control_baseline = Some(0.04);
        track.samples.push_back(Sample {
            at: track.samples[0].at,
            value: Some(0.62),
            outcome,
            mixed: false,
            note: None,
            alerts: Vec::new(),
        });
        let report = ev.report();
        for line in [
            r#"(prometheus http://prometheus:9090 query histogram_quantile(0.99, rate(latency_bucket[1m])); control histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{region="us"}[1m]))) at http://prometheus:9090, tolerance 0.5): "#,
            "    control baseline 0.04\n",
            "0.62  no data: the world, not us: control up 3.1x too (control 0.124 vs baseline 0.04; this check up 5.2x, 0.62 vs baseline 0.12: value 0.62 > max 0.5)\n",
        ] {
            assert!(report.contains(line), "missing {line:?} in:\n{report}");
        }
    }

    #[test]
    fn no_ratio_to_compare_keeps_the_failure() {
        let cases = [
            // No baseline of the check's own.
            (Some(0.3), None, ctl(31.0, 10.0)),
            // A zero baseline: 0 errors before, any after is infinitely more.
            (Some(0.3), Some(0.0), ctl(31.0, 10.0)),
            // The control's baseline is zero.
            (Some(0.3), Some(0.1), ctl(31.0, 0.0)),
            // The threshold was broken before the deployment: the check did not rise.
            (Some(0.3), Some(0.4), ctl(31.0, 10.0)),
            // Nothing measured (no_data = "fail").
            (None, Some(0.1), ctl(31.0, 10.0)),
        ];
        for (value, baseline, control) in cases {
            let o = judge(fail(), &[Rule::Max(0.1)], value, baseline, control, 0.5);
            assert!(
                matches!(o, Outcome::Fail { .. }),
                "{value:?} {baseline:?}: {o:?}"
            );
        }
        // A compare-only failure: no threshold says which way is bad.
        let o = judge(fail(), &[], Some(0.3), Some(0.1), ctl(31.0, 10.0), 0.5);
        assert!(matches!(o, Outcome::Fail { .. }), "{o:?}");
    }
}
