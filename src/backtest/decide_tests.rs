use std::time::Duration;

use super::*;
use crate::backtest::sample::{CompareHistory, Grid, PromHistory};
use crate::checks::prometheus::RangeSeries;
use crate::deployer::TaskState;
use crate::judge::observation::VerdictKind;
use crate::replay::Action;

/// A watch (warmup 0s, window 2m, interval 5s: rounds every 1s at first) with one prometheus
/// check named `c` of these keys, and `extra` watch keys.
fn watch(check: &str, extra: &str) -> WatchConfig {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), "k").unwrap();
    let toml = format!(
        r#"
[deployers.o]
kind = "octopus"
url = "http://octo"
space = "Spaces-1"
api_key_file = "key"
[[watch]]
name = "w"
deployer = "o"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "2m"
interval = "5s"
{extra}
[[watch.check]]
name = "c"
kind = "prometheus"
url = "http://prom"
query = "q"
{check}
"#
    );
    let c = crate::config::load_str(&toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (*c.watches[0]).clone()
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn deployment(state: TaskState) -> Deployment {
    Deployment {
        id: "Deployments-2".into(),
        release_id: "Releases-2".into(),
        project_id: "Projects-1".into(),
        environment_id: "Environments-1".into(),
        task_id: Some("ServerTasks-102".into()),
        created: t0(),
        comments: None,
        task_state: Some(state),
    }
}

/// `value(i)` every `step` seconds for 10 minutes from t0.
fn grid(step: u64, value: impl Fn(u64) -> f64) -> Grid {
    Grid {
        start: t0(),
        step: Duration::from_secs(step),
        series: Ok(vec![RangeSeries {
            labels: Default::default(),
            points: (0..600 / step)
                .map(|i| {
                    (
                        t0() + chrono::Duration::seconds((i * step) as i64),
                        value(i),
                    )
                })
                .collect(),
        }]),
    }
}

fn prom(reading: Grid) -> PromHistory {
    PromHistory {
        reading,
        baseline: None,
        compare: None,
        traffic: None,
        control: None,
    }
}

fn histories(h: PromHistory) -> Vec<(String, History)> {
    vec![("c".to_string(), History::Prometheus(Box::new(h)))]
}

fn far() -> DateTime<Utc> {
    t0() + chrono::Duration::hours(1)
}

#[test]
fn a_doubled_latency_is_condemned_by_compare_on_replayed_samples() {
    let w = watch("compare = \"mann-whitney\"\nbaseline_window = \"5m\"", "");
    let noisy = |i: u64, level: f64| level * (1.0 + 0.1 * ((i * 7 % 5) as f64 - 2.0) / 2.0);
    let h = PromHistory {
        compare: Some(CompareHistory {
            pre: Ok((0..60).map(|i| noisy(i, 1.0)).collect()),
            post: grid(5, |i| noisy(i, 2.0)),
            from: t0(),
            cap: Duration::from_secs(5 * 500),
        }),
        ..prom(grid(1, |i| noisy(i, 2.0)))
    };
    let out = replay(
        &w,
        &deployment(TaskState::Success),
        Some("Releases-1".into()),
        &histories(h),
        far(),
    );
    assert_eq!(out.kind(), Some(VerdictKind::Condemned), "{out:?}");
    let why = &out.verdict.as_ref().unwrap().summary;
    assert!(why.contains("mann-whitney"), "{why}");
    assert!(matches!(&out.action, Some(Action::Deploy { target, .. }) if target == "Releases-1"));
}

#[test]
fn too_little_traffic_never_condemns() {
    let w = watch("max = 1\nmin_traffic = { query = \"rate\", min = 1.0 }", "");
    let h = PromHistory {
        traffic: Some(grid(1, |_| 0.1)),
        ..prom(grid(1, |_| 5.0))
    };
    let out = replay(
        &w,
        &deployment(TaskState::Success),
        Some("Releases-1".into()),
        &histories(h),
        far(),
    );
    assert_eq!(out.kind(), Some(VerdictKind::Inconclusive), "{out:?}");
    assert_eq!(out.action, None);
}

#[test]
fn rounds_after_the_end_of_history_measure_nothing() {
    let w = watch("max = 1", "");
    // Failing from the start, but the next deployment came at once.
    let out = replay(
        &w,
        &deployment(TaskState::Success),
        Some("Releases-1".into()),
        &histories(prom(grid(1, |_| 5.0))),
        t0() - chrono::Duration::seconds(1),
    );
    assert_eq!(out.kind(), Some(VerdictKind::Inconclusive), "{out:?}");
    let why = &out.verdict.as_ref().unwrap().summary;
    assert!(
        why.contains("after the end of the replayed history"),
        "{why}"
    );
}

#[test]
fn a_failed_deployment_follows_on_deploy_failure() {
    let w = watch("max = 1", "on_deploy_failure = \"rollback\"");
    let out = replay(
        &w,
        &deployment(TaskState::TimedOut),
        Some("Releases-1".into()),
        &[],
        far(),
    );
    assert_eq!(out.rounds, 0);
    assert_eq!(out.kind(), Some(VerdictKind::Condemned));
    assert!(
        out.verdict.as_ref().unwrap().summary.contains("timed out"),
        "{out:?}"
    );
    assert!(
        matches!(&out.action, Some(Action::Deploy { kind, target }) if kind == "rollback" && target == "Releases-1")
    );
    // Observed by default: judged on its checks, here healthy.
    let w = watch("max = 1", "");
    let h = histories(prom(grid(1, |_| 0.5)));
    let out = replay(
        &w,
        &deployment(TaskState::Failed),
        Some("Releases-1".into()),
        &h,
        far(),
    );
    assert_eq!(out.kind(), Some(VerdictKind::Verified), "{out:?}");
    assert_eq!(out.action, None);
}
