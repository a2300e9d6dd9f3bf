use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::deployer::{DeployerError, Deployment, ExecOutcome};
use crate::model::{DeployIntent, IntentState};

fn t(s: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(s)
}

fn settings() -> Settings {
    Settings {
        timeout: Duration::from_secs(10),
        settle: Duration::from_secs(50),
        search_every: Duration::from_secs(5),
        max_retries: 3,
        task_poll: Duration::from_secs(5),
        task_timeout: Duration::from_secs(600),
    }
}

fn intent() -> DeployIntent {
    DeployIntent {
        condemned_release: "Releases-2".into(),
        condemned_deployment: Some("Deployments-2".into()),
        condemned_created: Some(t(-100)),
        target_release: "Releases-1".into(),
        environment: "Environments-1".into(),
        marker: "[backstop-rollback:act-1]".into(),
        comments: "rollback [backstop-rollback:act-1]".into(),
        decided_at: t(0),
        ..DeployIntent::blank()
    }
}

fn dep(id: &str, release: &str, at: i64, comments: Option<&str>) -> Deployment {
    Deployment {
        id: id.into(),
        release_id: release.into(),
        project_id: "Projects-1".into(),
        environment_id: "Environments-1".into(),
        task_id: Some(format!("ServerTasks-{id}")),
        created: t(at),
        comments: comments.map(String::from),
        task_state: None,
    }
}

fn condemned() -> Deployment {
    dep("Deployments-2", "Releases-2", -100, None)
}

#[test]
fn searches_before_the_first_create() {
    let s = settings();
    let mut i = intent();
    assert!(matches!(
        next(&i, &s, t(0)),
        Next::Call(Call::Search { .. })
    ));
    on_search(&mut i, &s, Ok(vec![condemned()]), t(0));
    assert_eq!(next(&i, &s, t(0)), Next::Call(Call::Create));
}

#[test]
fn an_unknown_create_is_not_repeated_before_the_settle_period() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(&mut i, &s, Err(DeployerError::Timeout), t(10));
    // Searched every 5s until 10 + 50; never a create in between.
    let mut now = t(10);
    while now < t(60) {
        match next(&i, &s, now) {
            Next::Wait(until) => now = until,
            Next::Call(Call::Search { .. }) => on_search(&mut i, &s, Ok(vec![]), now),
            other => panic!("at {now}: {other:?}"),
        }
    }
    // One more search once the period is over, then a create.
    assert!(matches!(next(&i, &s, now), Next::Call(Call::Search { .. })));
    on_search(&mut i, &s, Ok(vec![]), now);
    assert_eq!(next(&i, &s, now), Next::Call(Call::Create));
}

#[test]
fn a_slow_commit_found_during_settle_is_adopted() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(
        &mut i,
        &s,
        Err(DeployerError::Server {
            status: 503,
            message: String::new(),
            retry_after: None,
        }),
        t(1),
    );
    on_search(&mut i, &s, Ok(vec![]), t(6));
    let late = dep("Deployments-3", "Releases-1", 20, Some(&i.comments.clone()));
    on_search(&mut i, &s, Ok(vec![late]), t(21));
    assert_eq!(i.state, IntentState::Created);
    assert_eq!(i.deployment_id.as_deref(), Some("Deployments-3"));
    assert_eq!(
        next(&i, &s, t(21)),
        Next::Call(Call::ReadTask("ServerTasks-Deployments-3".into()))
    );
}

#[test]
fn definite_refusals_retry_without_settling_and_honour_retry_after() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(
        &mut i,
        &s,
        Err(DeployerError::Server {
            status: 429,
            message: String::new(),
            retry_after: Some(7),
        }),
        t(0),
    );
    assert_eq!(next(&i, &s, t(1)), Next::Wait(t(7)));
    assert!(matches!(
        next(&i, &s, t(7)),
        Next::Call(Call::Search { .. })
    ));
    on_search(&mut i, &s, Ok(vec![]), t(7));
    assert_eq!(next(&i, &s, t(7)), Next::Call(Call::Create));
    on_create_started(&mut i, t(7));
    on_create(
        &mut i,
        &s,
        Err(DeployerError::Refused("refused".into())),
        t(7),
    );
    on_search(&mut i, &s, Ok(vec![]), t(8));
    assert_eq!(next(&i, &s, t(8)), Next::Call(Call::Create));
}

#[test]
fn other_client_errors_are_final() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(
        &mut i,
        &s,
        Err(DeployerError::Rejected {
            status: 400,
            message: "bad".into(),
        }),
        t(0),
    );
    assert!(
        matches!(next(&i, &s, t(0)), Next::Done(ExecOutcome::Failed(m)) if m.contains("refused"))
    );
}

#[test]
fn a_lost_last_attempt_ends_unknown_never_failed() {
    let s = Settings {
        max_retries: 1,
        ..settings()
    };
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(
        &mut i,
        &s,
        Err(DeployerError::Server {
            status: 503,
            message: String::new(),
            retry_after: None,
        }),
        t(1),
    );
    let mut now = t(1);
    loop {
        match next(&i, &s, now) {
            Next::Wait(until) => now = until,
            Next::Call(Call::Search { .. }) => on_search(&mut i, &s, Ok(vec![]), now),
            Next::Done(out) => {
                assert!(matches!(out, ExecOutcome::Unknown(_)), "{out:?}");
                assert!(now >= t(51), "searched through the settle period first");
                break;
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn all_definite_failures_end_failed() {
    let s = Settings {
        max_retries: 2,
        ..settings()
    };
    let mut i = intent();
    for k in 0..2 {
        on_search(&mut i, &s, Ok(vec![]), t(k * 100));
        on_create_started(&mut i, t(k * 100));
        on_create(
            &mut i,
            &s,
            Err(DeployerError::Server {
                status: 429,
                message: "slow down".into(),
                retry_after: None,
            }),
            t(k * 100),
        );
    }
    on_search(&mut i, &s, Ok(vec![]), t(500));
    assert!(
        matches!(next(&i, &s, t(500)), Next::Done(ExecOutcome::Failed(m)) if m.contains("slow down"))
    );
}

#[test]
fn a_crash_during_a_create_counts_as_unknown() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    // The process dies here; the persisted intent has attempt_started.
    resume(&mut i, &s);
    assert_eq!(i.ambiguous_since, Some(t(10)));
    on_search(&mut i, &s, Ok(vec![]), t(30));
    assert!(matches!(
        next(&i, &s, t(30)),
        Next::Wait(_) | Next::Call(Call::Search { .. })
    ));
    on_search(&mut i, &s, Ok(vec![]), t(60));
    assert_eq!(next(&i, &s, t(60)), Next::Call(Call::Create));
}

#[test]
fn a_newer_deployment_by_someone_else_supersedes_the_intent() {
    let s = settings();
    let mut i = intent();
    let person = dep("Deployments-9", "Releases-3", -10, Some("hotfix by hand"));
    on_search(&mut i, &s, Ok(vec![person, condemned()]), t(0));
    assert_eq!(i.state, IntentState::Superseded);
    match next(&i, &s, t(0)) {
        Next::Done(ExecOutcome::Superseded(n)) => assert_eq!(n.id, "Deployments-9"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn backstops_own_and_older_deployments_do_not_supersede() {
    let s = settings();
    let mut i = intent();
    let older = dep("Deployments-1", "Releases-1", -200, None);
    on_search(&mut i, &s, Ok(vec![condemned(), older]), t(0));
    assert_eq!(i.state, IntentState::Pending);
}

#[test]
fn older_and_never_running_deployments_do_not_supersede() {
    let s = settings();
    let mut i = intent();
    let older = dep("Deployments-1", "Releases-1", -200, None);
    let mut failed = dep("Deployments-5", "Releases-3", -50, None);
    failed.task_state = Some(crate::deployer::TaskState::Failed);
    let mut cancelled = dep("Deployments-6", "Releases-3", -40, None);
    cancelled.task_state = Some(crate::deployer::TaskState::Canceled);
    on_search(
        &mut i,
        &s,
        Ok(vec![cancelled, failed, condemned(), older]),
        t(0),
    );
    assert_eq!(i.state, IntentState::Pending);
}

#[test]
fn another_watchs_rollback_supersedes() {
    let s = settings();
    let mut i = intent();
    let other = dep(
        "Deployments-3",
        "Releases-0",
        20,
        Some("backstop rollback of shop-eu [backstop-rollback:act-77]"),
    );
    on_search(&mut i, &s, Ok(vec![other, condemned()]), t(30));
    assert!(matches!(
        next(&i, &s, t(30)),
        Next::Done(ExecOutcome::Superseded(_))
    ));
}

#[test]
fn a_restart_after_a_search_searches_again_before_creating() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![condemned()]), t(0));
    assert_eq!(next(&i, &s, t(0)), Next::Call(Call::Create));
    let mut restarted = i.clone();
    resume(&mut restarted, &s);
    assert!(matches!(
        next(&restarted, &s, t(3600)),
        Next::Call(Call::Search { .. })
    ));
}

#[test]
fn clock_skew_never_makes_an_older_deployment_supersede() {
    let s = settings();
    let mut i = intent();
    i.condemned_created = Some(t(600)); // the deployer's clock
    i.decided_at = t(300); // backstop's clock, 5 minutes behind
    let list = vec![
        dep("Deployments-2", "Releases-2", 600, None),
        dep("Deployments-1", "Releases-1", 400, None),
    ];
    on_search(&mut i, &s, Ok(list), t(300));
    assert_eq!(i.state, IntentState::Pending, "{:?}", i.superseded_by);
}

#[test]
fn with_the_condemned_time_unknown_only_deployments_after_the_decision_supersede() {
    let s = settings();
    let mut i = intent();
    i.condemned_created = None;
    i.condemned_deployment = None;
    // Backstop's clock is ahead: the first create lands "before" the decision.
    let before = vec![condemned(), dep("Deployments-1", "Releases-1", 20, None)];
    on_search(&mut i, &s, Ok(before.clone()), t(0));
    assert_eq!(i.state, IntentState::Pending);
    on_create_started(&mut i, t(0));
    on_create(&mut i, &s, Err(DeployerError::Timeout), t(10));
    let c = i.comments.clone();
    let mut later = before.clone();
    later.insert(0, dep("Deployments-9", "Releases-1", -25, Some(&c)));
    on_search(&mut i, &s, Ok(later), t(15));
    assert_eq!(
        i.deployment_id.as_deref(),
        Some("Deployments-9"),
        "adopted, not posted again"
    );
    assert!(
        search_since(&i) <= t(-25),
        "the search reaches back past clock skew"
    );
    let mut j = intent();
    j.condemned_created = None;
    j.condemned_deployment = None;
    on_search(&mut j, &s, Ok(before.clone()), t(0));
    let mut person = before;
    person.insert(0, dep("Deployments-7", "Releases-4", -30, None));
    on_search(&mut j, &s, Ok(person), t(5));
    assert_eq!(j.state, IntentState::Superseded);
}

#[test]
fn absurd_durations_saturate_instead_of_panicking() {
    let s = Settings {
        task_timeout: Duration::from_secs(u64::MAX / 4),
        settle: Duration::MAX,
        ..settings()
    };
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(&mut i, &s, Err(DeployerError::Timeout), t(1));
    on_search(&mut i, &s, Ok(vec![]), t(2));
    let _ = next(&i, &s, t(3));
    i.state = IntentState::Created;
    i.task_id = Some("ServerTasks-1".into());
    on_task(&mut i, &s, Err(DeployerError::Timeout), t(4));
}

#[test]
fn two_deployments_with_one_marker_are_reported_and_the_oldest_adopted() {
    let s = settings();
    let mut i = intent();
    let c = i.comments.clone();
    on_search(
        &mut i,
        &s,
        Ok(vec![
            dep("Deployments-7", "Releases-1", 30, Some(&c)),
            dep("Deployments-6", "Releases-1", 20, Some(&c)),
        ]),
        t(40),
    );
    assert_eq!(i.deployment_id.as_deref(), Some("Deployments-6"));
    assert_eq!(i.duplicates, vec!["Deployments-7".to_string()]);
}

#[test]
fn search_errors_back_off_and_an_unknown_create_is_never_followed_by_a_blind_one() {
    let s = settings();
    let mut i = intent();
    on_search(&mut i, &s, Ok(vec![]), t(0));
    on_create_started(&mut i, t(0));
    on_create(&mut i, &s, Err(DeployerError::Timeout), t(10));
    for k in 0..30 {
        let now = t(20 + k * 40);
        if let Next::Call(c) = next(&i, &s, now) {
            assert!(matches!(c, Call::Search { .. }), "{c:?}");
            on_search(&mut i, &s, Err(DeployerError::Timeout), now);
        }
    }
    assert_eq!(i.state, IntentState::Unknown, "{:?}", i.detail);
}

#[test]
fn task_outcomes() {
    let s = settings();
    let mut i = intent();
    i.state = IntentState::Created;
    i.task_id = Some("ServerTasks-1".into());
    let task = |state: &str, done: bool, ok: bool| crate::deployer::Task {
        id: "ServerTasks-1".into(),
        state: crate::deployer::TaskState::parse(state),
        is_completed: done,
        finished_successfully: ok,
        has_pending_interruptions: false,
        error_message: Some("step 2 failed".into()),
    };
    on_task(&mut i, &s, Ok(task("Executing", false, false)), t(0));
    assert_eq!(next(&i, &s, t(1)), Next::Wait(t(5)));
    on_task(&mut i, &s, Err(DeployerError::Timeout), t(5));
    assert_eq!(i.state, IntentState::Created);
    on_task(&mut i, &s, Ok(task("Executing", false, false)), t(700));
    assert!(
        matches!(next(&i, &s, t(700)), Next::Done(ExecOutcome::Failed(m)) if m.contains("did not complete"))
    );
    let mut i2 = intent();
    i2.state = IntentState::Created;
    i2.task_id = Some("ServerTasks-1".into());
    on_task(&mut i2, &s, Ok(task("Failed", true, false)), t(0));
    assert!(
        matches!(next(&i2, &s, t(0)), Next::Done(ExecOutcome::Failed(m)) if m.contains("step 2 failed"))
    );
    let mut i3 = intent();
    i3.state = IntentState::Created;
    i3.task_id = Some("ServerTasks-1".into());
    on_task(&mut i3, &s, Ok(task("Success", true, true)), t(0));
    assert_eq!(next(&i3, &s, t(0)), Next::Done(ExecOutcome::Succeeded));
}

#[test]
fn the_condemned_creation_time_is_read_from_the_listing_when_unknown() {
    let s = settings();
    let mut i = intent();
    i.condemned_created = None;
    i.condemned_deployed_at = Some(t(-90));
    i.decided_at = t(900);
    assert!(search_since(&i) <= t(-90) - CLOCK_SKEW);
    // A person deployed long before the decision (while backstop was down) but after the
    // condemned release: the listing orders them by the deployer's clock.
    let person = dep("Deployments-5", "Releases-4", 300, None);
    on_search(&mut i, &s, Ok(vec![person, condemned()]), t(900));
    assert_eq!(i.condemned_created, Some(t(-100)));
    assert_eq!(i.state, IntentState::Superseded);
}

#[test]
fn task_states_are_read_with_the_condemned_time_resolved_first() {
    let s = settings();
    let mut i = intent();
    i.condemned_created = None;
    i.condemned_deployed_at = Some(t(-90));
    let mut list = vec![dep("Deployments-5", "Releases-3", -50, None), condemned()];
    // What the shell does: resolve, then read the tasks of would-be superseders.
    resolve_condemned(&mut i, &list, t(0));
    for d in list.iter_mut() {
        if supersedes(&i, d) {
            d.task_state = Some(crate::deployer::TaskState::Failed);
        }
    }
    on_search(&mut i, &s, Ok(list), t(0));
    assert_eq!(i.state, IntentState::Pending, "{:?}", i.superseded_by);
}

#[test]
fn another_deployment_of_the_condemned_release_does_not_supersede() {
    let s = settings();
    let mut i = intent();
    let redeploy = dep("Deployments-7", "Releases-2", -10, Some("Auto-deploy"));
    on_search(&mut i, &s, Ok(vec![redeploy, condemned()]), t(0));
    assert_eq!(i.state, IntentState::Pending);
}

#[test]
fn marker_ids_are_read_from_comments() {
    assert_eq!(
        marker_ids(
            "backstop rollback of shop: x. [backstop-rollback:act-1] and [backstop-retry:act-2]"
        ),
        vec!["act-1", "act-2"]
    );
    assert!(marker_ids("by hand [backstop-broken").is_empty());
}
