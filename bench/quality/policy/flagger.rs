//! Flagger-style analysis, from its documented defaults: a control loop every `interval`
//! (1 m, from a random phase: the loop does not start with the deployment); while the new
//! release is not ready, nothing is analysed, and past `progressDeadlineSeconds` (600 s, the
//! Kubernetes default) it is rolled back; once ready, every tick queries each metric over a
//! 1 m window and checks its `thresholdRange`: a value outside it, an empty result, NaN or a
//! query error is a failed check (Flagger's "no values found" halts advancement and counts).
//! Failed checks are cumulative: `threshold` (5, the docs' example) of them roll back; 10
//! successful iterations promote.
//!
//! Thresholds are static, set the way a person sets them from the service's dashboard: twice
//! what it normally shows (the error share and the p90 at the daily mean load), the level of
//! backstop's latency `max_ratio = 2.0`, without its baseline.

use super::{Judgement, Verdict};
use crate::generate::Deployment;
use crate::prom::{Prom, Query};

const INTERVAL: f64 = 60.0;
const THRESHOLD: u32 = 5;
const ITERATIONS: u32 = 10;
const PROGRESS_DEADLINE: f64 = 600.0;
/// A static threshold is this multiple of the service's usual value.
pub const STATIC_FACTOR: f64 = 2.0;

pub fn judge(d: &Deployment) -> Judgement {
    let phase = crate::dist::hash_unit(d.seed, 0xF1A6) * INTERVAL;
    let limits = [Query::ErrorRatio, Query::LatencyP90].map(|q| (q, STATIC_FACTOR * d.nominal(q)));
    let mut prom = Prom::new(&d.telemetry);
    let (mut failed, mut passed) = (0, 0);
    let mut t = phase;
    while t <= crate::scenario::AFTER {
        t += INTERVAL;
        if !d.service.ready(t) {
            if t >= PROGRESS_DEADLINE {
                return Judgement::at(Verdict::RolledBack, t).because("not_ready");
            }
            continue;
        }
        let failing = limits
            .iter()
            .find(|(q, max)| !prom.instant(*q, t).is_ok_and(|v| v <= *max));
        if let Some((q, _)) = failing {
            failed += 1;
            if failed >= THRESHOLD {
                return Judgement::at(Verdict::RolledBack, t).because(super::signal(*q));
            }
        } else {
            passed += 1;
            if passed >= ITERATIONS {
                return Judgement::at(Verdict::Verified, t);
            }
        }
    }
    Judgement::undecided()
}
