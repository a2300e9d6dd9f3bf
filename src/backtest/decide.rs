//! One deployment's history through the daemon's lifecycle core ([`crate::replay`]): every
//! round's check results read from the fetched history, until a verdict. Pure.

use chrono::{DateTime, Utc};

use super::sample::{self, History};
use crate::config::WatchConfig;
use crate::deployer::Deployment;
use crate::engine::lifecycle::{CheckResult, Unmeasured};
use crate::model::DeployFailure;
use crate::replay::{self, Outcome};

/// Replays `d` under `watch` (its replayable checks only) with `histories`, history ending at
/// `horizon`: later rounds measure nothing, and a verdict reached on them is dropped by the
/// report. A deployment whose task failed goes through `on_deploy_failure`.
pub fn replay(
    watch: &WatchConfig,
    d: &Deployment,
    previous: Option<String>,
    histories: &[(String, History)],
    horizon: DateTime<Utc>,
) -> Outcome {
    let sample = |t: DateTime<Utc>| -> Vec<CheckResult> {
        histories
            .iter()
            .map(|(name, h)| {
                if t <= horizon {
                    sample::check_result(name, h, t)
                } else {
                    beyond(name)
                }
            })
            .collect()
    };
    let dep = replay::Deployment {
        release: d.release_id.clone(),
        deployment_id: Some(d.id.clone()),
        deployed_at: d.created,
        previous,
    };
    match d.task_state.as_ref().filter(|s| s.is_failure()) {
        Some(state) => {
            let failure = DeployFailure {
                task: d.task_id.clone(),
                state: Some(state.as_str().to_string()),
                ..DeployFailure::default()
            };
            replay::replay_failed(watch, &dep, failure, sample)
        }
        None => replay::replay(watch, &dep, sample),
    }
}

/// A check's result in a round after the end of history.
fn beyond(name: &str) -> CheckResult {
    CheckResult {
        name: name.to_string(),
        baseline: None,
        before: None,
        reading: Err(Unmeasured::other("after the end of the replayed history")),
        lag: std::time::Duration::ZERO,
        traffic: None,
        compare: None,
        control: None,
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
