//! Leases, fences, heartbeats, schema versions, notifications and reconnection: PostgreSQL
//! only (SQLite answers `NotShared`).

use std::time::Duration;

use super::*;
use crate::model::WatchRecord;

const HOUR: Duration = Duration::from_secs(3600);

/// A PostgreSQL fixture, or `None` when the test is skipped.
fn pg() -> Option<Fixture> {
    Fixture::postgres()
}

fn got(epoch: i64, from: Option<&str>) -> Acquired {
    Acquired::Got {
        epoch,
        takeover_from: from.map(String::from),
    }
}

fn outbox_item(id: &str) -> OutboxItem {
    let mut alert = crate::sinks::testing::alert(crate::sinks::AlertKind::Condemned);
    alert.id = id.into();
    alert.evidence = None;
    OutboxItem {
        id: id.into(),
        sinks: vec!["ops".into()],
        alert,
    }
}

#[test]
fn sqlite_is_not_shared_and_ignores_fences() {
    let fx = Fixture::sqlite();
    let s = fx.open();
    assert!(!s.is_shared());
    assert!(matches!(
        s.acquire_lease("shop", "a", HOUR),
        Err(StoreError::NotShared)
    ));
    assert!(matches!(s.leases(), Err(StoreError::NotShared)));
    assert!(matches!(
        s.heartbeat("a", &[], HOUR),
        Err(StoreError::NotShared)
    ));
    assert!(s.listen_inbox().is_err());
    s.set_fence("a", "shop", None);
    s.commit("shop", &Commit::default()).unwrap();
}

/// The URL is a secret: neither a malformed one nor an unreachable server shows it.
#[test]
fn errors_about_the_database_never_show_its_url() {
    for url in [
        "postgres://backstop:hunter2@127.0.0.1:notaport/backstop",
        // Nothing listens on port 1: refused at once.
        "postgres://backstop:hunter2@127.0.0.1:1/backstop",
    ] {
        let e = match Store::open_postgres(&crate::secret::Secret::new(url)) {
            Err(e) => e,
            Ok(_) => panic!("opened {url}"),
        };
        assert!(
            matches!(e, StoreError::Config(_) | StoreError::Unavailable(_)),
            "{e:?}"
        );
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}

#[test]
fn acquire_hold_and_take_over_with_growing_epochs() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    assert!(s.is_shared());
    assert_eq!(s.acquire_lease("w", "a", HOUR).unwrap(), got(1, None));
    assert_eq!(
        s.acquire_lease("w", "a", HOUR).unwrap(),
        got(2, None),
        "acquiring again is a new tenure (a restart under the same name): only renewal keeps it"
    );
    assert_eq!(
        s.acquire_lease("w", "b", HOUR).unwrap(),
        Acquired::Held { owner: "a".into() }
    );
    // a's lease lapses; b takes over under a new epoch.
    assert_eq!(
        s.acquire_lease("x", "a", Duration::from_millis(20))
            .unwrap(),
        got(1, None)
    );
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(s.acquire_lease("x", "b", HOUR).unwrap(), got(2, Some("a")));
    let leases = s.leases().unwrap();
    assert_eq!(leases.len(), 2);
    assert_eq!(leases[1].watch, "x");
    assert_eq!(leases[1].owner.as_deref(), Some("b"));
    assert!(leases[1].live && leases[1].epoch == 2);
    assert_eq!(leases[0].epoch, 2);
}

#[test]
fn a_lapsed_lease_nobody_took_is_renewed_under_its_epoch() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    s.acquire_lease("w", "a", Duration::from_millis(20))
        .unwrap();
    std::thread::sleep(Duration::from_millis(60));
    assert!(!s.leases().unwrap()[0].live);
    assert!(s
        .renew_leases("a", &[("w".into(), 2)], HOUR)
        .unwrap()
        .is_empty());
    assert!(s
        .renew_leases("b", &[("w".into(), 1)], HOUR)
        .unwrap()
        .is_empty());
    assert_eq!(
        s.renew_leases("a", &[("w".into(), 1)], HOUR).unwrap(),
        vec!["w".to_string()]
    );
    let l = &s.leases().unwrap()[0];
    assert!(l.live && l.epoch == 1);
    // Acquiring it again (a restarted process) is a new tenure.
    assert_eq!(s.acquire_lease("w", "a", HOUR).unwrap(), got(2, None));
}

#[test]
fn a_released_lease_goes_to_the_next_node_under_the_next_epoch() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    s.acquire_lease("w", "a", HOUR).unwrap();
    s.release_lease("w", "a", 7).unwrap();
    assert_eq!(
        s.acquire_lease("w", "b", HOUR).unwrap(),
        Acquired::Held { owner: "a".into() },
        "a release under another epoch changes nothing"
    );
    s.release_lease("w", "a", 1).unwrap();
    let l = &s.leases().unwrap()[0];
    assert!(!l.live);
    assert_eq!(
        l.owner, None,
        "given up, not expired: the next node is no takeover"
    );
    assert_eq!(s.acquire_lease("w", "b", HOUR).unwrap(), got(2, None));
    // a's tenure is over: renewing under its old epoch finds nothing.
    assert!(s
        .renew_leases("a", &[("w".into(), 1)], HOUR)
        .unwrap()
        .is_empty());
}

#[test]
fn a_node_that_lost_its_lease_writes_nothing() {
    let Some(fx) = pg() else { return };
    let a = fx.open_bare().unwrap();
    let b = fx.open_bare().unwrap();
    let Acquired::Got { epoch, .. } = a.acquire_lease("shop", "a", HOUR).unwrap() else {
        panic!()
    };
    a.set_fence("a", "shop", Some(epoch));
    let item = outbox_item("n1");
    a.commit(
        "shop",
        &Commit {
            outbox: vec![item.clone()],
            ..Commit::default()
        },
    )
    .unwrap();
    let mut i = records::intent("o1");
    a.save_intent(&i).unwrap();
    // Handover: b takes the lease; a still believes it holds it.
    a.release_lease("shop", "a", epoch).unwrap();
    assert!(matches!(
        b.acquire_lease("shop", "b", HOUR).unwrap(),
        Acquired::Got { .. }
    ));
    let rec = WatchRecord {
        last_good_release: Some("Releases-9".into()),
        ..WatchRecord::default()
    };
    let fenced = a
        .commit(
            "shop",
            &Commit {
                record: Some(&rec),
                durable: true,
                ..Commit::default()
            },
        )
        .unwrap_err();
    assert!(matches!(&fenced, StoreError::Fenced { watch } if watch == "shop"));
    assert_eq!(
        fenced.to_string(),
        "this node no longer holds the lease of watch shop"
    );
    i.rev = 3;
    i.state = crate::model::IntentState::Succeeded;
    assert!(matches!(a.save_intent(&i), Err(StoreError::Fenced { .. })));
    assert!(matches!(a.delivered("n1"), Err(StoreError::Fenced { .. })));
    assert!(matches!(
        a.purge_inbox("shop"),
        Err(StoreError::Fenced { .. })
    ));
    assert!(matches!(
        a.save_scrape_history("shop", "c", "f", "x"),
        Err(StoreError::Fenced { .. })
    ));
    // Nothing was written.
    assert_eq!(b.load_watch("shop").unwrap().last_good_release, None);
    assert_eq!(
        b.latest_intent("shop").unwrap().unwrap().state,
        crate::model::IntentState::Pending
    );
    assert_eq!(b.undelivered("shop").unwrap(), vec![item]);
    // Without a fence at all, writes are refused too; reads and the inbox are not fenced.
    assert!(matches!(
        b.commit("shop", &Commit::default()),
        Err(StoreError::Fenced { .. })
    ));
    assert!(b.enqueue(None, &[]).unwrap());
    b.load_watch("shop").unwrap();
}

#[test]
fn heartbeats_tell_which_nodes_are_alive_by_the_database_clock() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    let nodes = s.heartbeat("a", &["shop".into()], HOUR).unwrap();
    assert_eq!(nodes.len(), 1);
    assert!(nodes[0].alive && nodes[0].watches == vec!["shop".to_string()]);
    std::thread::sleep(Duration::from_millis(80));
    let nodes = s
        .heartbeat("b", &["cart".into()], Duration::from_millis(40))
        .unwrap();
    let alive: Vec<(&str, bool)> = nodes.iter().map(|n| (n.name.as_str(), n.alive)).collect();
    assert_eq!(alive, vec![("a", false), ("b", true)]);
    assert!(nodes[1].heartbeat_at > nodes[0].heartbeat_at);
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let Some(fx) = pg() else { return };
    drop(fx.open_bare().unwrap());
    fx.client()
        .execute("INSERT INTO schema_version (version) VALUES (999)", &[])
        .unwrap();
    match fx.open_bare() {
        Err(StoreError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (999, SCHEMA_VERSION));
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a database of a newer schema"),
    }
}

#[test]
fn nodes_starting_together_migrate_once() {
    let Some(fx) = pg() else { return };
    std::thread::scope(|scope| {
        let opened: Vec<_> = (0..3).map(|_| scope.spawn(|| fx.open_bare())).collect();
        for o in opened {
            o.join().unwrap().unwrap();
        }
    });
    let versions = fx.rows(
        &fx.open_bare().unwrap(),
        "SELECT CAST(version AS TEXT) FROM schema_version",
    );
    assert_eq!(versions, vec![vec![SCHEMA_VERSION.to_string()]]);
}

#[test]
fn an_enqueue_notifies_the_listeners() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    let rx = s.listen_inbox().unwrap();
    // The channel is database-wide and tests run in parallel: a watch name of our own.
    let Fixture::Postgres { schema, .. } = &fx else {
        unreachable!()
    };
    let t = crate::engine::Trigger {
        release: "Releases-2".into(),
        version: None,
        deployment_id: None,
        deployed_at: None,
        source: crate::model::Source::Announce,
        rollback_safe: None,
        failure: None,
    };
    let hears = |expected: &str| {
        // The listener connects in the background: enqueue until it hears one.
        for _ in 0..50 {
            // Right after the terminate, the pool's own connection may be the one lost.
            if let Err(e) = s.enqueue(
                None,
                &[(
                    schema.clone(),
                    crate::engine::Inbound::Deploy(Box::new(t.clone())),
                )],
            ) {
                assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
            }
            while let Ok(w) = rx.recv_timeout(Duration::from_millis(200)) {
                if w == expected {
                    return;
                }
            }
        }
        panic!("the listener never heard {expected:?}");
    };
    hears(schema);
    // Its connection lost, it reconnects, says so with an empty string, and hears again.
    terminate(&fx);
    hears("");
    hears(schema);
}

/// Ends every connection the test's store opened (by their application name).
fn terminate(fx: &Fixture) -> usize {
    let Fixture::Postgres { schema, .. } = fx else {
        unreachable!()
    };
    fx.client()
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name = $1 AND pid <> pg_backend_pid()",
            &[schema],
        )
        .unwrap()
        .len()
}

#[test]
fn a_lost_connection_fails_the_call_and_the_next_ones_reconnect() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    s.set_meta("k", "v").unwrap();
    assert!(terminate(&fx) >= 1);
    let mut failures = 0;
    let started = std::time::Instant::now();
    loop {
        match s.meta("k") {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("v"));
                break;
            }
            Err(StoreError::Unavailable(_)) => failures += 1,
            Err(e) => panic!("a lost connection is Unavailable, got {e}"),
        }
        assert!(failures <= 2 * crate::store::pg::THREADS, "never recovered");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn once_a_connection_is_lost_the_other_threads_check_theirs_before_their_next_call() {
    let Some(fx) = pg() else { return };
    let s = fx.open_bare().unwrap();
    s.set_meta("k", "v").unwrap();
    let Fixture::Postgres { schema, .. } = &fx else {
        unreachable!()
    };
    // Every pool thread connected: more callers than threads, at once, until all are.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let callers: Vec<_> = (0..2 * crate::store::pg::THREADS)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        s.meta("k").unwrap();
                    }
                })
            })
            .collect();
        callers.into_iter().for_each(|c| c.join().unwrap());
        let connected: i64 = fx
            .client()
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[schema],
            )
            .unwrap()
            .get(0);
        // The query's own connection counts too.
        if connected as usize > crate::store::pg::THREADS {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{connected} connected"
        );
    }
    // As a server restart does: every connection ends at once.
    assert_eq!(terminate(&fx), crate::store::pg::THREADS);
    let failures = (0..4 * crate::store::pg::THREADS)
        .filter(|_| match s.meta("k") {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some("v"));
                false
            }
            Err(StoreError::Unavailable(_)) => true,
            Err(e) => panic!("a lost connection is Unavailable, got {e}"),
        })
        .count();
    assert_eq!(failures, 1, "only the call that found the loss fails");
}
