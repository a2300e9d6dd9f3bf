//! Crashes (`kill -9`) at awkward moments: mid-observation and mid-rollback.

use std::time::Duration;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::*;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observation_interrupted_by_kill_9_resumes() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let app = FakeApp::start().await;
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &http_watch("shop", &app.url(), "")
                .replace("window = \"1500ms\"", "window = \"6s\"")),
    );
    let mut d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r1).await, 202);
    // Past the first checkpoint: rounds in which every check passes are written every 18th
    // round (README: what a crash can lose).
    let before = d
        .wait_watch("shop", "a few rounds past a checkpoint", T, |w| {
            w["observation"]["rounds"].as_u64().unwrap_or(0) >= 24
        })
        .await;
    let rounds_before = before["observation"]["rounds"].as_u64().unwrap();
    let id = before["observation"]["id"].as_str().unwrap().to_string();
    d.kill9();

    let d = Daemon::start(&setup).await;
    let after = d.watch("shop").await;
    assert_eq!(after["state"], "observing");
    assert_eq!(
        after["observation"]["id"],
        id.as_str(),
        "same observation resumed"
    );
    let rounds_after = after["observation"]["rounds"].as_u64().unwrap();
    assert!(
        rounds_after >= 18 && rounds_after + 18 >= rounds_before,
        "at most 18 routine rounds lost ({rounds_before} before): {after}"
    );
    let w = d
        .wait_watch("shop", "verified after restart", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["last_verdict"]["observation_id"], id.as_str());
    assert_eq!(w["last_good_release"], r1.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_the_rollback_call_never_deploys_twice() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    // The create lands, then its answer hangs: the daemon dies before it learns the outcome.
    octo.hang_next_posts(1, Duration::from_secs(10));
    let app = FakeApp::start().await;
    app.set_health(503);
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &http_watch("shop", &app.url(), "").replace("warmup = \"0s\"", "warmup = \"300ms\"")),
    );
    let mut d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    octo.wait_for_created(1, T).await;
    d.kill9();
    app.set_health(200);

    let d = Daemon::start(&setup).await;
    let w = d
        .wait_watch("shop", "rollback adopted and verified", T, |w| {
            w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    assert_eq!(w["current_release"], r1.as_str());
    assert_eq!(octo.created_deployments().len(), 1);
    assert_eq!(octo.post_attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_following_the_rollback_task_resumes_it() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    let app = FakeApp::start().await;
    app.set_health(503);
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &http_watch("shop", &app.url(), "").replace("warmup = \"0s\"", "warmup = \"300ms\"")),
    );
    let mut d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    let created = octo.wait_for_created(1, T).await;
    // Hold the task in Executing so the daemon is still following it when it dies.
    let task = created[0]["TaskId"].as_str().unwrap().to_string();
    octo.set_task_state(&task, "Executing");
    d.wait_watch("shop", "rolling back", T, |w| {
        w["state"] == "rolling_back" && w["rollback"]["state"] == "created"
    })
    .await;
    d.kill9();
    app.set_health(200);

    let d = Daemon::start(&setup).await;
    d.wait_watch("shop", "still rolling back after restart", T, |w| {
        w["state"] == "rolling_back"
    })
    .await;
    octo.set_task_state(&task, "Success");
    d.wait_watch("shop", "rollback verified", T, |w| {
        w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
    })
    .await;
    assert_eq!(octo.created_deployments().len(), 1);
    assert_eq!(octo.post_attempts(), 1);
}

/// A routine checkpoint (every 18th passing round, handed to the writer without waiting) that
/// the store refuses is noticed at the next round, not at the next checkpoint; while the store
/// refuses, nothing is acted on (not even the verdict due at the window's end); once it takes
/// writes again the watch goes on, and what it then decides survives a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_routine_checkpoint_is_noticed_and_the_watch_goes_on() {
    const REFUSED_ROUTINE: &str =
        "a routine checkpoint was not written; the next write is a whole one";
    const REFUSED_WHOLE: &str = "cannot persist a transition";
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    let app = FakeApp::start().await;
    let setup = Setup::new();
    // Room for a loaded machine: a check error or lateness would make a round whole (and its
    // refused write would come before the routine one this test is about).
    setup.write(
        &(setup.base(&octo.url())
            + &http_watch("shop", &app.url(), "")
                .replace("window = \"1500ms\"", "window = \"6s\"")
                .replace("interval = \"100ms\"", "interval = \"200ms\"")
                .replace("timeout = \"80ms\"", "timeout = \"150ms\"")),
    );
    let mut d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r1).await, 202);
    // The observation's start is a whole write, committed before the status shows it.
    d.wait_watch("shop", "observing", T, |w| {
        w["observation"]["rounds"].as_u64().unwrap_or(0) >= 1
    })
    .await;
    let db = rusqlite::Connection::open(setup.state_dir().join("backstop.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    // From now on every write of the observation fails, as a full disk would make it.
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE UPDATE ON observations
         BEGIN SELECT RAISE(ABORT, 'the disk says no'); END;",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + T;
    let seen = loop {
        let logs = d.logs();
        if logs.contains(REFUSED_ROUTINE) {
            break d.watch("shop").await;
        }
        assert!(
            !logs.contains(REFUSED_WHOLE),
            "a round that is not routine (a check error, lateness) was refused first, so this \
             run cannot show the routine path: {logs}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the refused checkpoint went unnoticed: {logs}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Noticed at the round after the refused one (18), not at the next checkpoint (36): the
    // rounds since are whole writes, refused, so the watch's rounds stop there.
    let rounds = seen["observation"]["rounds"].as_u64().unwrap();
    assert!((18..30).contains(&rounds), "{seen}");
    // Past the window's end, and two more refused writes after it: no verdict while refused.
    let ends: chrono::DateTime<chrono::Utc> = seen["observation"]["window_ends"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    while chrono::Utc::now() < ends {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = d.logs().matches(REFUSED_WHOLE).count();
    while d.logs().matches(REFUSED_WHOLE).count() < refused + 2 {
        assert!(std::time::Instant::now() < deadline, "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refusing = d.watch("shop").await;
    assert!(refusing["last_verdict"].is_null(), "{refusing}");
    assert_eq!(refusing["state"], "observing", "{refusing}");
    db.execute_batch("DROP TRIGGER refuse").unwrap();
    let w = d
        .wait_watch("shop", "verified once the store takes writes", T, |w| {
            w["last_verdict"]["verdict"] == "verified"
        })
        .await;
    let id = w["last_verdict"]["observation_id"].clone();
    assert_eq!(id, seen["observation"]["id"], "{w}");
    d.kill9();
    let d = Daemon::start(&setup).await;
    let after = d.watch("shop").await;
    assert_eq!(after["last_verdict"]["observation_id"], id, "{after}");
    assert_eq!(after["last_verdict"]["verdict"], "verified", "{after}");
    assert_eq!(after["last_good_release"], r1.as_str(), "{after}");
}
