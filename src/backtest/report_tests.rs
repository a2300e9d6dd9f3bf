use super::*;
use crate::backtest::render;
use crate::judge::observation::Verdict as Decided;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

fn facts(n: u32, deployed: i64, horizon: i64, next: bool) -> Facts {
    Facts {
        deployment_id: format!("Deployments-{n}"),
        release: format!("Releases-{n}"),
        version: Some(format!("1.{n}.0")),
        deployed_at: at(deployed),
        task_state: "Success".into(),
        previous_release: Some(format!("Releases-{}", n - 1)),
        previous_version: Some(format!("1.{}.0", n - 1)),
        horizon: at(horizon),
        next: next.then(|| {
            (
                format!("Releases-{}", n + 1),
                format!("Deployments-{}", n + 1),
            )
        }),
    }
}

fn outcome(kind: VerdictKind, decided: i64, action: Option<Action>) -> Outcome {
    Outcome {
        verdict: Some(Decided {
            verdict: kind,
            release: "r".into(),
            version: None,
            deployment_id: None,
            observation_id: "o".into(),
            decided_at: at(decided),
            summary: format!("{} because", kind.as_str()),
            checks: Vec::new(),
            action: None,
        }),
        rounds: 7,
        action,
    }
}

fn rollback(to: &str) -> Option<Action> {
    Some(Action::Deploy {
        kind: "rollback".into(),
        target: to.into(),
    })
}

fn version(id: &str) -> Option<String> {
    id.strip_prefix("Releases-").map(|n| format!("1.{n}.0"))
}

#[test]
fn a_verdict_within_history_is_reported_with_its_action_and_time() {
    let e = entry(
        facts(3, 0, 3600, true),
        &outcome(VerdictKind::Condemned, 72, rollback("Releases-2")),
        version,
    );
    assert_eq!(e.verdict, Verdict::Condemned);
    assert_eq!(e.decided_at, Some(at(72)));
    assert_eq!(e.time_to_verdict_seconds, Some(72.0));
    assert_eq!(e.summary, "condemned because");
    assert_eq!(e.action.kind, "rollback");
    assert_eq!(e.action.target.as_deref(), Some("Releases-2"));
    assert_eq!(e.action.target_version.as_deref(), Some("1.2.0"));
    assert_eq!(e.rounds, 7);
}

#[test]
fn a_verdict_after_the_end_of_history_is_none() {
    let superseded = entry(
        facts(3, 0, 60, true),
        &outcome(VerdictKind::Inconclusive, 90, None),
        version,
    );
    assert_eq!(superseded.verdict, Verdict::Superseded);
    assert_eq!(superseded.decided_at, None);
    assert!(
        superseded
            .summary
            .contains("next deployment (Deployments-4 of Releases-4)"),
        "{}",
        superseded.summary
    );
    let open = entry(
        facts(3, 0, 60, false),
        &outcome(VerdictKind::Condemned, 90, rollback("Releases-2")),
        version,
    );
    assert_eq!(open.verdict, Verdict::Open);
    assert_eq!(
        open.action,
        ActionEntry::none(),
        "no rollback on rounds without data"
    );
    assert!(open.summary.contains("still open"), "{}", open.summary);
}

#[test]
fn the_summary_counts_verdicts_and_actions_and_takes_medians() {
    let human = Some(Action::Human {
        state: "failed".into(),
        reason: "dry run".into(),
    });
    let entries = vec![
        entry(
            facts(2, 0, 9999, true),
            &outcome(VerdictKind::Verified, 660, None),
            version,
        ),
        entry(
            facts(3, 0, 9999, true),
            &outcome(VerdictKind::Condemned, 60, rollback("Releases-2")),
            version,
        ),
        entry(
            facts(4, 0, 9999, true),
            &outcome(VerdictKind::Condemned, 100, human),
            version,
        ),
        entry(
            facts(5, 0, 9999, true),
            &outcome(VerdictKind::Inconclusive, 300, None),
            version,
        ),
        entry(
            facts(6, 0, 10, false),
            &outcome(VerdictKind::Verified, 660, None),
            version,
        ),
    ];
    let s = summarise(&entries);
    assert_eq!(
        (
            s.deployments,
            s.verified,
            s.condemned,
            s.inconclusive,
            s.open
        ),
        (5, 1, 2, 1, 1)
    );
    assert_eq!((s.rolled_back, s.left_to_human), (1, 1));
    assert_eq!(s.median_time_to_verdict_seconds, Some(200.0));
    assert_eq!(s.median_time_to_condemn_seconds, Some(80.0));
    assert_eq!(summarise(&[]).median_time_to_verdict_seconds, None);

    let report = Report {
        watch: "shop".into(),
        deployer: "octo".into(),
        project: "Projects-1".into(),
        environment: "Environments-1".into(),
        from: at(-60),
        to: at(9999),
        generated_at: at(9999),
        replayed_checks: vec![crate::backtest::checks::Kept {
            name: "errors".into(),
            kind: "prometheus",
        }],
        skipped_checks: vec![crate::backtest::checks::Skipped {
            name: "health".into(),
            kind: "http",
            reason: "needs the live service",
        }],
        deployments: entries,
        summary: s,
    };
    let text = render::text(&report);
    for needle in [
        "backtest of watch shop (octo Projects-1 in Environments-1)",
        "replayed: errors (prometheus)",
        "skipped:  health (http): needs the live service",
        "1.3.0 (Releases-3)",
        "roll back to 1.2.0 (Releases-2)",
        "ask a human: dry run",
        "    condemned because",
        "summary: would have rolled back 1 of 5 deployments (1 verified, 2 condemned, 1 inconclusive, 1 still open)",
        "would also have left 1 to a human",
        "time to verdict: median 3m 20s (condemned: median 1m 20s)",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["deployments"][1]["verdict"], "condemned");
    assert_eq!(json["deployments"][1]["action"]["target"], "Releases-2");
    assert_eq!(
        json["deployments"][0]["action"],
        serde_json::json!({"kind": "none"})
    );
    assert_eq!(json["summary"]["rolled_back"], 1);
    assert_eq!(json["skipped_checks"][0]["kind"], "http");
}
