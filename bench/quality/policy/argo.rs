//! Argo Rollouts-style AnalysisRun, from its documented defaults: each metric is measured at
//! the run's start and every `interval` (1 m) after, `count` (10) times; a measurement whose
//! `successCondition` (`result[0] <= threshold`) does not hold is Failed (NaN included: the
//! comparison is false); an empty result (`result[0]` out of range) or an unreachable provider
//! is an Error, retried after 10 s. More than `failureLimit` failures (3, the docs' example;
//! the default 0 rolls back on any one) or more than `consecutiveErrorLimit` (4, the default)
//! errors in a row abort the rollout: traffic back to the stable version. `/health` is a `web`
//! metric: a 2xx answer succeeds, anything else (503, refused, a timeout) is an Error.
//!
//! Thresholds: the static ones of [`super::flagger`] (twice the usual value).

use super::{Judgement, Verdict};
use crate::generate::{Deployment, Health};
use crate::prom::{Prom, Query};

const INTERVAL: f64 = 60.0;
const ERROR_RETRY: f64 = 10.0;
const COUNT: u32 = 10;
const FAILURE_LIMIT: u32 = 3;
const CONSECUTIVE_ERROR_LIMIT: u32 = 4;

/// One measurement's phase.
enum Phase {
    Successful,
    Failed,
    Error,
}

/// What a metric's measurements came to: aborted at, or completed at.
enum End {
    Aborted(f64),
    Completed(f64),
    OutOfTime,
}

pub fn judge(d: &Deployment) -> Judgement {
    let mut prom = Prom::new(&d.telemetry);
    let mut ends = Vec::new();
    for q in [Query::ErrorRatio, Query::LatencyP90] {
        let max = super::flagger::STATIC_FACTOR * d.nominal(q);
        let end = run(|t| match prom.instant(q, t) {
            Ok(v) if v <= max => Phase::Successful,
            Ok(_) | Err(crate::prom::Failure::NaN) => Phase::Failed,
            Err(_) => Phase::Error,
        });
        ends.push((super::signal(q), end));
    }
    let health = run(|t| match d.health(t) {
        Health::Status(200) => Phase::Successful,
        _ => Phase::Error,
    });
    ends.push(("health", health));
    let aborted = ends
        .iter()
        .filter_map(|(cause, e)| match e {
            End::Aborted(t) => Some((*t, *cause)),
            _ => None,
        })
        .min_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((t, cause)) = aborted {
        return Judgement::at(Verdict::RolledBack, t).because(cause);
    }
    if ends.iter().any(|(_, e)| matches!(e, End::OutOfTime)) {
        return Judgement::undecided();
    }
    let done = ends
        .iter()
        .filter_map(|(_, e)| match e {
            End::Completed(t) => Some(*t),
            _ => None,
        })
        .fold(0.0, f64::max);
    Judgement::at(Verdict::Verified, done)
}

/// One metric's measurements from the run's start.
fn run(mut measure: impl FnMut(f64) -> Phase) -> End {
    let (mut t, mut taken, mut failed, mut errors) = (0.0, 0, 0, 0);
    while t <= crate::scenario::AFTER {
        match measure(t) {
            Phase::Error => {
                errors += 1;
                if errors > CONSECUTIVE_ERROR_LIMIT {
                    return End::Aborted(t);
                }
                t += ERROR_RETRY;
                continue;
            }
            Phase::Failed => failed += 1,
            Phase::Successful => {}
        }
        errors = 0;
        taken += 1;
        if failed > FAILURE_LIMIT {
            return End::Aborted(t);
        }
        if taken >= COUNT {
            return End::Completed(t);
        }
        t += INTERVAL;
    }
    End::OutOfTime
}
