//! The exposition's content and, above all, its size: series per watch are bounded.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::*;

const RULES: &[Rule] = &[Rule::Max(0.05), Rule::MaxRatio(2.0)];

fn outcomes() -> [Outcome; 4] {
    [
        Outcome::Pass,
        Outcome::Fail {
            limit: "> 1".into(),
        },
        Outcome::Error {
            reason: "down".into(),
            late: false,
        },
        Outcome::NoData {
            reason: "quiet".into(),
        },
    ]
}

/// Series (sample lines) by the value of their `watch` label.
fn series_per_watch(text: &str) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        if let Some(at) = line.find("watch=\"") {
            let rest = &line[at + 7..];
            let name = &rest[..rest.find('"').expect("closed label")];
            *per.entry(name.to_string()).or_insert(0) += 1;
        }
    }
    per
}

/// Everything that can happen to a watch, each outcome of each kind at least once.
fn live_through_everything(m: &Metrics, watch: &str, checks: &[String]) {
    for s in WatchState::ALL {
        m.set_state(watch, s);
    }
    for check in checks {
        for o in outcomes() {
            m.check_sample(watch, check, &o, Some(1.0));
        }
        m.check_baseline(watch, check, Some(0.5));
    }
    for s in Source::ALL {
        m.observation_started(watch, s.as_str(), true, 1.0);
        m.observation_started(watch, s.as_str(), false, 1.0);
    }
    m.observation_resumed(watch, 2.0);
    for v in VerdictKind::ALL {
        m.verdict(watch, v, 30.0);
    }
    for o in RollbackOutcome::ALL {
        m.rollback(o);
    }
    for a in [
        "rollback", "retry", "notify", "command", "freeze", "pause", "dry_run",
    ] {
        m.action(a);
    }
    m.duplicate_deployments(1);
    m.poll("octo", true);
    m.poll("octo", false);
}

/// An install of `n` watches of 3 checks with names of 8 characters, each of which has
/// been through everything.
fn install(n: usize) -> (Metrics, String) {
    let m = Metrics::new();
    let checks: Vec<String> = ["errors", "latency", "health"].map(String::from).to_vec();
    let with_rules: Vec<(&str, &[Rule])> = checks.iter().map(|c| (c.as_str(), RULES)).collect();
    for i in 0..n {
        let watch = format!("watch{i:03}");
        m.register_watch(&watch, "octo", &with_rules);
        live_through_everything(&m, &watch, &checks);
    }
    let text = m.render();
    (m, text)
}

#[test]
fn registered_watch_exports_zero_series() {
    let m = Metrics::new();
    m.register_watch("shop", "octo", &[("errors", RULES)]);
    m.set_state("shop", WatchState::Idle);
    let text = m.render();
    for line in [
        r#"backstop_checks_total{result="error",watch="shop"} 0"#,
        r#"backstop_verdicts_total{verdict="inconclusive",watch="shop"} 0"#,
        r#"backstop_rollbacks_total{outcome="succeeded"} 0"#,
        r#"backstop_deployments_seen_total{outcome="failed",source="poll"} 0"#,
        r#"backstop_deployer_polls_total{deployer="octo",result="error"} 0"#,
        r#"backstop_observation_started_timestamp_seconds{watch="shop"} 0"#,
        r#"backstop_watch_state{state="idle",watch="shop"} 1"#,
        "backstop_build_info{version=",
    ] {
        assert!(text.contains(line), "no {line} in:\n{text}");
    }
    assert!(!text.contains("backstop_check_threshold"));
    assert!(!text.contains(r#"check="errors""#));
}

#[test]
fn only_the_current_state_has_a_series() {
    let m = Metrics::new();
    m.set_state("shop", WatchState::Failed);
    m.set_state("shop", WatchState::RollingBack);
    let text = m.render();
    assert!(text.contains(r#"backstop_watch_state{state="rolling_back",watch="shop"} 1"#));
    assert_eq!(text.matches("backstop_watch_state{").count(), 1, "{text}");
}

#[test]
fn forgotten_watches_lose_their_state_gauges() {
    let m = Metrics::new();
    m.register_watch("gone", "octo", &[]);
    m.set_state("gone", WatchState::Failed);
    m.forget_watch("gone");
    let text = m.render();
    assert!(!text.contains(r#"backstop_watch_state{state="failed",watch="gone"}"#));
    assert!(!text.contains("backstop_observation_started_timestamp_seconds{"));
}

#[test]
fn registries_are_independent() {
    let a = Metrics::new();
    let b = Metrics::new();
    a.action("rollback");
    assert!(a.render().contains("backstop_actions_total"));
    assert!(!b.render().contains("backstop_actions_total{"));
}

#[test]
fn a_watch_has_at_most_ten_series_whatever_its_checks_and_history() {
    let m = Metrics::new();
    let checks: Vec<String> = (0..20).map(|i| format!("check{i}")).collect();
    let with_rules: Vec<(&str, &[Rule])> = checks.iter().map(|c| (c.as_str(), RULES)).collect();
    m.register_watch("shop", "octo", &with_rules);
    live_through_everything(&m, "shop", &checks);
    let per = series_per_watch(&m.render());
    assert_eq!(per["shop"], SERIES_PER_WATCH);
}

#[test]
fn thousands_of_watches_stay_within_the_size_targets() {
    for (n, limit) in [(1_000, 750_000), (3_400, 2_500_000)] {
        let (_, text) = install(n);
        let per = series_per_watch(&text);
        assert_eq!(per.len(), n);
        let most = per.values().max().copied().unwrap_or(0);
        assert!(most <= SERIES_PER_WATCH, "a watch has {most} series");
        eprintln!("{n} watches: /metrics is {} bytes", text.len());
        assert!(text.len() < limit, "{n} watches: {} bytes", text.len());
    }
}

#[test]
fn per_check_adds_the_series_of_each_check() {
    let m = Metrics::with_config(&MetricsConfig { per_check: true });
    m.register_watch("shop", "octo", &[("errors", RULES)]);
    m.check_sample("shop", "errors", &Outcome::Pass, Some(0.01));
    m.check_baseline("shop", "errors", Some(0.02));
    let text = m.render();
    for line in [
        r#"backstop_checks_total{check="errors",result="pass",watch="shop"} 1"#,
        r#"backstop_checks_total{check="errors",result="fail",watch="shop"} 0"#,
        r#"backstop_check_threshold{check="errors",rule="max",watch="shop"} 0.05"#,
        r#"backstop_check_value{check="errors",watch="shop"} 0.01"#,
        r#"backstop_check_baseline{check="errors",watch="shop"} 0.02"#,
    ] {
        assert!(text.contains(line), "no {line} in:\n{text}");
    }
}

#[test]
fn a_scrape_shares_a_rendering_started_after_it_arrived_and_no_older_one() {
    let m = Metrics::new();
    let asked = Instant::now()
        .checked_sub(Duration::from_millis(1))
        .expect("the clock is past its first millisecond");
    let first = m.render_since(asked);
    // Arrived before the first rendering started: that rendering is news to it.
    assert_eq!(m.render_since(asked).as_ptr(), first.as_ptr());
    m.action("rollback");
    let later = m.render_since(Instant::now());
    assert_ne!(later.as_ptr(), first.as_ptr());
    assert!(
        String::from_utf8_lossy(&later).contains(r#"backstop_actions_total{action="rollback"} 1"#)
    );
}
