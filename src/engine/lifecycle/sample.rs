//! What one sample means beyond its rules: too little traffic, a look-back into another
//! release, an application that does not answer, nothing measured.

use super::{before, Transition, Unmeasured};
use crate::config::{NoData, Probe, Unreachable};
use crate::judge::Outcome;
use crate::model::ObservationRecord;

impl Transition<'_> {
    /// The `min_traffic` rule: below the minimum request rate a sample is no data, whatever
    /// it measured (two requests prove nothing either way); traffic that cannot be read makes
    /// a failure an error (it cannot be told from noise). An application that did not answer
    /// is not quiet but down: `app_down` samples keep their outcome (a scrape check reads its
    /// traffic from the same endpoint, so a down application also has "no traffic").
    pub(super) fn traffic(
        &self,
        check: &str,
        outcome: Outcome,
        traffic: Option<Result<f64, String>>,
        app_down: bool,
    ) -> Outcome {
        if app_down {
            return outcome;
        }
        let Some(min) = self
            .cfg
            .checks
            .iter()
            .find(|c| c.name == check)
            .and_then(|c| c.min_traffic.as_ref())
            .map(|m| m.min)
        else {
            return outcome;
        };
        match (traffic, &outcome) {
            (Some(Ok(rate)), _) if rate < min || rate.is_nan() => Outcome::NoData {
                reason: format!(
                    "{} req/s, need {} (min_traffic)",
                    crate::judge::num(if rate.is_nan() { 0.0 } else { rate }),
                    crate::judge::num(min)
                ),
            },
            (Some(Err(e)), Outcome::Fail { .. } | Outcome::Pass) => Outcome::Error {
                reason: format!("traffic unknown (min_traffic: {e})"),
            },
            _ => outcome,
        }
    }

    /// The look-back rule. A sample whose query reaches back before the deployment mixes two
    /// releases: it may pass, and may fail when the release it reaches into was verified
    /// healthy (old data only dilutes the new release's badness); when it reaches into a
    /// condemned release (a rollback, or a deployment after a condemned one) its failure is no
    /// evidence against this release: no data.
    pub(super) fn look_back(
        &self,
        obs: &ObservationRecord,
        check: &str,
        outcome: Outcome,
    ) -> (Outcome, bool) {
        let lookback = self.cfg.checks.iter().find(|c| c.name == check).map_or(
            std::time::Duration::ZERO,
            |c| match &c.probe {
                Probe::Prometheus { lookback, .. } => *lookback,
                // Scrape rates use only scrapes taken after the deployment; http has none.
                _ => std::time::Duration::ZERO,
            },
        );
        let reaches = before(self.now, lookback) < obs.deployed_at;
        let mixed = !lookback.is_zero() && reaches;
        match (&outcome, &obs.previous_condemned) {
            (Outcome::Fail { limit }, Some(bad)) if mixed => (
                Outcome::NoData {
                    reason: format!(
                        "mixed sample ({limit}): the query looks back {}, into condemned release {bad}; not evidence against this release",
                        humantime::format_duration(lookback)
                    ),
                },
                true,
            ),
            _ => (outcome, mixed),
        }
    }

    /// What a sample that could not be measured means. An application that does not answer is
    /// down, and a release that is down is broken: a failure (unless the check says
    /// `unreachable = "error"`). A timeout while backstop itself was late says nothing about
    /// the application. Anything else (telemetry down, no data) is an error.
    pub(super) fn unmeasured(
        &self,
        check: &str,
        u: Unmeasured,
        late: Option<std::time::Duration>,
    ) -> Outcome {
        let cfg = self.cfg.checks.iter().find(|c| c.name == check);
        if u.empty {
            return match cfg.map_or(NoData::Error, |c| c.no_data) {
                NoData::Error => Outcome::Error {
                    reason: format!("no data: {}", u.reason),
                },
                NoData::Pass => Outcome::Pass,
                NoData::Fail => Outcome::Fail {
                    limit: format!("no data: {} (no_data = \"fail\")", u.reason),
                },
            };
        }
        let policy = cfg.map_or(Unreachable::Error, |c| c.unreachable);
        match (u.app_down, policy, u.timed_out, late) {
            (true, Unreachable::Fail, true, Some(lag)) => Outcome::Error {
                reason: format!(
                    "{}; backstop itself was {} late, so the timeout is not counted as a failure",
                    u.reason,
                    humantime::format_duration(std::time::Duration::from_millis(
                        lag.as_millis() as u64
                    ))
                ),
            },
            (true, Unreachable::Fail, _, _) => Outcome::Fail {
                limit: format!("application unreachable: {}", u.reason),
            },
            _ => Outcome::Error { reason: u.reason },
        }
    }
}
