//! The `compare` rule in a sample round: the pre-deployment samples kept once fetched, the
//! whole post-deployment set judged against them, and the result joined with the check's
//! thresholds into the round's one outcome per check (so a significant comparison joins the
//! check's failure streak like a broken threshold).

use super::{CompareSamples, Transition};
use crate::judge::compare;
use crate::judge::observation::CheckTrack;
use crate::judge::Outcome;

impl Transition<'_> {
    /// The check's outcome with its comparison, when it has one; `thresholds` is what its
    /// reading gave (the thresholds, or why it could not be measured).
    pub(super) fn compared(
        &self,
        track: &mut CheckTrack,
        samples: Option<CompareSamples>,
        thresholds: Outcome,
    ) -> Outcome {
        let Some(cfg) = self
            .cfg
            .checks
            .iter()
            .find(|c| c.name == track.name)
            .and_then(|c| c.compare)
        else {
            return thresholds;
        };
        let compared = comparison(&cfg.rule, track, samples);
        join(thresholds, compared, !track.rules.is_empty())
    }
}

/// Judges the samples, keeping the pre set and the comparison (the evidence) in the track.
fn comparison(
    rule: &compare::Compare,
    track: &mut CheckTrack,
    samples: Option<CompareSamples>,
) -> Outcome {
    let Some(samples) = samples else {
        return Outcome::Error {
            reason: "compare: no samples were fetched this round".into(),
            late: false,
        };
    };
    match samples.pre {
        Some(Ok(pre)) => track.pre = Some(pre),
        Some(Err(e)) => {
            return Outcome::Error {
                reason: format!("compare: pre-deployment samples unavailable: {e}"),
                late: false,
            }
        }
        None => {}
    }
    let Some(pre) = &track.pre else {
        return Outcome::Error {
            reason: "compare: pre-deployment samples not fetched yet".into(),
            late: false,
        };
    };
    let post = match samples.post {
        Ok(post) => post,
        Err(e) => {
            return Outcome::Error {
                reason: format!("compare: post-deployment samples unavailable: {e}"),
                late: false,
            }
        }
    };
    let (outcome, c) = compare::judge(rule, pre, &post);
    if c.is_some() {
        track.comparison = c;
    }
    outcome
}

/// One outcome from the thresholds' and the comparison's. A failure of either fails (both:
/// both said); then an error (as with a ratio rule without its baseline, what cannot be
/// evaluated is not a pass). Too few samples to compare leaves the thresholds' pass standing:
/// they judged the sample; a check with only `compare` has no data until it has enough.
fn join(thresholds: Outcome, compared: Outcome, has_thresholds: bool) -> Outcome {
    match (thresholds, compared) {
        (Outcome::Fail { limit: a }, Outcome::Fail { limit: b }) => Outcome::Fail {
            limit: format!("{a}; {b}"),
        },
        (f @ Outcome::Fail { .. }, _) | (_, f @ Outcome::Fail { .. }) => f,
        // An error of the measurement before backstop's own lateness: a late error is
        // transparent to runs, and would hide the compare's real one.
        (e @ Outcome::Error { late: false, .. }, _)
        | (_, e @ Outcome::Error { late: false, .. }) => e,
        (e @ Outcome::Error { .. }, _) | (_, e @ Outcome::Error { .. }) => e,
        (t, _) if has_thresholds => t,
        (_, c) => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(s: &str) -> Outcome {
        Outcome::Fail { limit: s.into() }
    }

    #[test]
    fn either_failure_fails_and_errors_beat_passes() {
        let no_data = Outcome::NoData {
            reason: "few".into(),
        };
        let error = Outcome::Error {
            reason: "down".into(),
            late: false,
        };
        assert_eq!(join(Outcome::Pass, fail("mw"), true), fail("mw"));
        assert_eq!(join(fail("max"), Outcome::Pass, true), fail("max"));
        assert_eq!(join(fail("max"), fail("mw"), true), fail("max; mw"));
        assert_eq!(join(error.clone(), Outcome::Pass, false), error);
        assert_eq!(join(Outcome::Pass, error.clone(), true), error);
        assert_eq!(join(Outcome::Pass, no_data.clone(), true), Outcome::Pass);
        assert_eq!(join(Outcome::Pass, no_data.clone(), false), no_data);
        assert_eq!(join(Outcome::Pass, Outcome::Pass, false), Outcome::Pass);
    }
}
