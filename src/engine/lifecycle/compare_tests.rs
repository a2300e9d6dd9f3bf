//! `compare` in the lifecycle: a significant comparison joins the check's failure streak, too
//! few samples are no data, a significant but small change passes, and the pre-deployment
//! samples are fetched once per observation.

use super::*;
use crate::config::CompareConfig;
use crate::judge::compare::{Compare, Direction, Method};
use crate::judge::Outcome;

/// The config with "errors" judged by `compare` only (no thresholds).
fn compare_config() -> WatchConfig {
    let mut cfg = config("");
    cfg.checks[1].rules.clear();
    cfg.checks[1].compare = Some(CompareConfig {
        rule: Compare {
            method: Method::MannWhitney,
            direction: Direction::Increase,
            confidence: 0.98,
            allowed_increase: 1.2,
            allowed_decrease: 0.8,
            min_samples: 10,
            overlap: 1.0,
        },
        step: std::time::Duration::from_secs(1),
    });
    cfg
}

/// ±10% around `level`, deterministic.
fn noisy(level: f64, n: usize, seed: u64) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| level * (0.9 + 0.2 * rng.f64())).collect()
}

/// A round whose "errors" check brings these samples (`pre` only when fetched this round).
fn compare_round(at: i64, pre: Option<Result<Vec<f64>, String>>, post: Vec<f64>) -> Event {
    Event::Round(RoundResult {
        scheduled: t(at),
        checks: vec![CheckResult {
            name: "errors".into(),
            baseline: None,
            before: None,
            reading: Ok(Reading::Value(post.last().copied().unwrap_or(0.0))),
            lag: std::time::Duration::ZERO,
            traffic: None,
            compare: Some(CompareSamples {
                pre,
                post: Ok(post),
            }),
            control: None,
        }],
    })
}

/// Rounds at 0..n seconds: the pre set in the first only, the post set growing by `per` each
/// round from `post`.
fn rounds(n: i64, pre: &[f64], post: &[f64], per: usize) -> Vec<(i64, Event)> {
    let mut events = vec![(0, Event::Deployment(learned("R2", "D2", 0)))];
    events.extend((0..n).map(|s| {
        let fetched = (s == 0).then(|| Ok(pre.to_vec()));
        let upto = (per * (s as usize + 1)).min(post.len());
        (s, compare_round(s, fetched, post[..upto].to_vec()))
    }));
    events
}

#[test]
fn a_significant_rise_condemns_after_failure_limit_rounds() {
    let cfg = compare_config();
    let pre = noisy(0.1, 60, 1);
    let post = noisy(0.15, 60, 2);
    let (r, _) = run(&cfg, WatchRecord::default(), rounds(2, &pre, &post, 15));
    let obs = r.observation.as_ref().unwrap();
    assert!(obs.condemned.is_none(), "two failing rounds of three");
    let track = &obs.tracker.checks[1];
    assert_eq!(track.consecutive_failures, 2);
    assert!(track.pre.is_some(), "kept from the first round");
    let c = track.comparison.as_ref().expect("evidence");
    assert!(c.failed && c.n_post == 30 && c.n_pre == 60, "{c:?}");
    let (r, _) = run(&cfg, WatchRecord::default(), rounds(3, &pre, &post, 15));
    let obs = r.observation.as_ref().unwrap();
    let Some(reason) = &obs.condemned else {
        panic!("not condemned: {:?}", obs.tracker.checks[1].samples)
    };
    let Outcome::Fail { limit } = &obs.tracker.checks[1].samples[2].outcome else {
        panic!("failing sample")
    };
    assert!(limit.starts_with("mann-whitney: post > pre"), "{limit}");
    assert!(!reason.is_empty());
}

#[test]
fn too_few_samples_are_no_data() {
    let cfg = compare_config();
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        rounds(3, &noisy(0.1, 60, 3), &noisy(0.5, 60, 4), 3),
    );
    let track = &r.observation.as_ref().unwrap().tracker.checks[1];
    assert_eq!((track.no_data, track.failures), (3, 0));
    let Outcome::NoData { reason } = &track.samples[2].outcome else {
        panic!("{:?}", track.samples[2])
    };
    assert!(
        reason.contains("60 pre-deployment, 9 post-deployment"),
        "{reason}"
    );
    assert!(track.comparison.is_none());
}

#[test]
fn a_significant_but_small_rise_passes() {
    let cfg = compare_config();
    let (r, _) = run(
        &cfg,
        WatchRecord::default(),
        rounds(3, &noisy(0.1, 400, 5), &noisy(0.11, 1200, 6), 400),
    );
    let track = &r.observation.as_ref().unwrap().tracker.checks[1];
    assert_eq!(track.passes, 3, "{:?}", track.samples);
    assert!(track.comparison.as_ref().unwrap().significant);
}

#[test]
fn unavailable_samples_are_errors_and_the_pre_set_is_fetched_until_it_comes() {
    let cfg = compare_config();
    let post = noisy(0.1, 20, 7);
    let events = vec![
        (0, Event::Deployment(learned("R2", "D2", 0))),
        (
            0,
            compare_round(0, Some(Err("prometheus down".into())), post.clone()),
        ),
        (1, compare_round(1, None, post.clone())),
        (2, compare_round(2, Some(Ok(noisy(0.1, 20, 8))), post)),
    ];
    let (r, _) = run(&cfg, WatchRecord::default(), events);
    let track = &r.observation.as_ref().unwrap().tracker.checks[1];
    let labels: Vec<_> = track
        .samples
        .iter()
        .map(|s| format!("{:?}", s.outcome))
        .collect();
    assert!(
        labels[0].contains("pre-deployment samples unavailable: prometheus down"),
        "{labels:?}"
    );
    assert!(labels[1].contains("not fetched yet"), "{labels:?}");
    assert_eq!(track.samples[2].outcome, Outcome::Pass);
}
