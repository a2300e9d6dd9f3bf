//! What one sample means beyond its rules: too little traffic, a look-back into another
//! release, an application that does not answer, nothing measured.

use std::time::Duration;

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
                late: false,
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

    /// What a sample that could not be measured means. While backstop itself was late
    /// ([`late`]), a sample that is not a measured fact (a timeout, a refused or reset
    /// connection, no answer, telemetry down) says nothing about the application: an error
    /// naming backstop, never a failure. Otherwise an application that does not answer is
    /// down, and a release that is down is broken: a failure (unless the check says
    /// `unreachable = "error"`). Anything else (telemetry down) is an error. An empty answer
    /// (no data) was measured, late or not: the check's `no_data` policy decides.
    pub(super) fn unmeasured(&self, check: &str, u: Unmeasured, lag: Duration) -> Outcome {
        let cfg = self.cfg.checks.iter().find(|c| c.name == check);
        if u.empty {
            return match cfg.map_or(NoData::Error, |c| c.no_data) {
                NoData::Error => Outcome::Error {
                    reason: format!("no data: {}", u.reason),
                    late: false,
                },
                NoData::Pass => Outcome::Pass,
                NoData::Fail => Outcome::Fail {
                    limit: format!("no data: {} (no_data = \"fail\")", u.reason),
                },
            };
        }
        // Lateness can turn an answer into a timeout, never into a refused or reset
        // connection: that is the application's own answer, and a dead app stays a failure
        // however late backstop is.
        let excusable = u.timed_out || !u.app_down;
        if let Some(lag) = late(lag).filter(|_| excusable) {
            return Outcome::Error {
                reason: format!(
                    "backstop was late (scheduler lag {}, bound {}): {}",
                    humantime::format_duration(Duration::from_millis(lag.as_millis() as u64)),
                    humantime::format_duration(LAG_BOUND),
                    u.reason
                ),
                late: true,
            };
        }
        match (
            u.app_down,
            cfg.map_or(Unreachable::Error, |c| c.unreachable),
        ) {
            (true, Unreachable::Fail) => Outcome::Fail {
                limit: format!("application unreachable: {}", u.reason),
            },
            _ => Outcome::Error {
                reason: u.reason,
                late: false,
            },
        }
    }
}

/// How late backstop itself may be before a probe that got no answer says nothing about the
/// application. A fixed bound, not a share of the interval: what matters is whether the
/// process could run the probe's I/O and timers on time, whatever the cadence. Tokio wakes a
/// timer within a millisecond or two on a healthy machine; 250 ms is two orders of magnitude
/// above that (a swapping or overloaded host, a stopped process, a stolen VM), and a quarter
/// of a typical 1 s probe timeout: a stall that long can turn an answer that arrived in time
/// into a timeout (the timer and the socket are served together when the process resumes).
/// The shell's lag probe ticks every 100 ms, so every stall above the bound is seen.
pub const LAG_BOUND: Duration = Duration::from_millis(250);

/// The scheduler lag measured around a probe (see [`super::CheckResult::lag`]) when it is
/// above [`LAG_BOUND`]: backstop was late.
pub fn late(lag: Duration) -> Option<Duration> {
    (lag > LAG_BOUND).then_some(lag)
}
