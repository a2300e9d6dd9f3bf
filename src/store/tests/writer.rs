//! The writer thread: transitions submitted while it is busy are written together, each is
//! answered, and one that fails is rolled back alone.

use super::*;
use crate::model::WatchRecord;

/// A transition that records one handled deployment.
fn seen(dep: &str) -> Commit<'static> {
    Commit {
        seen: vec![dep.to_string()],
        ..Commit::default()
    }
}

/// Awaits the writer's answers (on a runtime of their own: they are plain futures).
fn answers(
    pending: Vec<impl std::future::Future<Output = Result<(), StoreError>>>,
) -> Vec<Result<(), StoreError>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(futures_util::future::join_all(pending))
}

impl Fixture {
    /// Runs `f` while the writer cannot finish a transaction for watch `shop`: on SQLite the
    /// test holds the connection's lock; on PostgreSQL it holds `shop`'s lease row
    /// `FOR UPDATE`, which the fence check (`FOR SHARE`) waits for. What `f` submits meanwhile
    /// queues behind the writer's first batch.
    fn while_writer_waits<R>(&self, s: &Store, f: impl FnOnce() -> R) -> R {
        match self {
            Fixture::Sqlite(_) => {
                let held = s.conn();
                let r = f();
                drop(held);
                r
            }
            Fixture::Postgres { .. } => {
                let mut client = self.client();
                let mut tx = client.transaction().unwrap();
                tx.query("SELECT 1 FROM leases WHERE watch = 'shop' FOR UPDATE", &[])
                    .unwrap();
                let r = f();
                tx.rollback().unwrap();
                r
            }
        }
    }
}

both_backends! {
    fn transitions_submitted_while_the_writer_is_busy_share_a_transaction(fx: &Fixture) {
        let s = fx.open();
        let stats = s.writer_stats();
        let before = stats.transactions.get();
        let pending = fx.while_writer_waits(&s, || {
            (0..50)
                .map(|i| s.submit("shop", &seen(&format!("d{i}"))))
                .collect::<Vec<_>>()
        });
        for (i, answer) in answers(pending).into_iter().enumerate() {
            answer.unwrap_or_else(|e| panic!("transition {i}: {e}"));
        }
        // The first batch (whatever the writer had taken when it met the lock), then what
        // queued behind it in as few batches as the backend's batch size allows (one of 256 on
        // SQLite, two of 48 on PostgreSQL).
        let transactions = stats.transactions.get() - before;
        let most = 1 + 50u64.div_ceil(s.backend.max_batch() as u64);
        assert!(
            (1..=most).contains(&transactions),
            "{transactions} transactions for 50 transitions (at most {most})"
        );
        assert_eq!(stats.queued.get(), 0);
        for i in 0..50 {
            assert!(s.deployment_known("shop", &format!("d{i}")).unwrap(), "d{i} was written");
        }
    }

    fn a_transition_that_fails_is_rolled_back_alone_and_its_batch_commits(fx: &Fixture) {
        let s = fx.open();
        // What makes the middle transition fail: on PostgreSQL a watch whose lease this node
        // does not hold (fenced); on SQLite a row the database refuses.
        let bad_watch = match fx {
            Fixture::Sqlite(_) => {
                s.conn()
                    .execute_batch(
                        "CREATE TRIGGER poison BEFORE INSERT ON seen_deployments
                         WHEN NEW.deployment_id = 'poison'
                         BEGIN SELECT RAISE(ABORT, 'poisoned row'); END;",
                    )
                    .unwrap();
                "shop"
            }
            Fixture::Postgres { .. } => "not-mine",
        };
        let pending = fx.while_writer_waits(&s, || {
            vec![
                s.submit("shop", &seen("first")),
                s.submit(bad_watch, &seen("poison")),
                s.submit("cart", &seen("last")),
            ]
        });
        let answers = answers(pending);
        assert!(answers[0].is_ok(), "{:?}", answers[0]);
        assert!(answers[2].is_ok(), "{:?}", answers[2]);
        match (fx, &answers[1]) {
            (Fixture::Sqlite(_), Err(StoreError::Sql(e))) => {
                assert!(e.to_string().contains("poisoned row"), "{e}")
            }
            (Fixture::Postgres { .. }, Err(StoreError::Fenced { watch })) => {
                assert_eq!(watch, "not-mine")
            }
            (_, other) => panic!("the middle transition answered {other:?}"),
        }
        assert!(s.deployment_known("shop", "first").unwrap());
        assert!(s.deployment_known("cart", "last").unwrap());
        assert!(!s.deployment_known(bad_watch, "poison").unwrap());
    }

    fn a_submitted_transition_survives_a_restart(fx: &Fixture) {
        let s = fx.open();
        let rec = WatchRecord {
            last_good_release: Some("Releases-7".into()),
            ..WatchRecord::default()
        };
        let commit = Commit {
            record: Some(&rec),
            durable: true,
            ..Commit::default()
        };
        answers(vec![s.submit("shop", &commit)]).pop().unwrap().unwrap();
        drop(s);
        let s = fx.open();
        assert_eq!(
            s.load_watch("shop").unwrap().last_good_release.as_deref(),
            Some("Releases-7")
        );
    }
}

#[test]
fn a_whole_batch_failure_answers_every_transition_with_its_cause() {
    let out = super::super::writer::whole_batch_failed(3, StoreError::Unavailable("gone".into()));
    assert_eq!(out.len(), 3);
    assert!(out
        .iter()
        .all(|r| matches!(r, Err(StoreError::Unavailable(m)) if m.contains("gone"))));
    let out = super::super::writer::whole_batch_failed(2, StoreError::Config("bad".into()));
    assert!(matches!(&out[1], Err(StoreError::Batch(m)) if m.contains("bad")));
    assert!(super::super::writer::whole_batch_failed(0, StoreError::NotShared).is_empty());
}

/// Every transition's answer tells the truth: `Ok` exactly when its row was stored.
fn answers_match_rows(s: &Store, sent: &[(&str, &str)], answers: &[Result<(), StoreError>]) {
    for ((watch, dep), answer) in sent.iter().zip(answers) {
        let stored = s.deployment_known(watch, dep).unwrap();
        assert_eq!(
            answer.is_ok(),
            stored,
            "{watch}/{} answered {answer:?} but stored = {stored}",
            &dep[..dep.len().min(20)]
        );
    }
}

#[test]
fn a_full_disk_mid_batch_keeps_nothing_of_it_and_says_why() {
    let fx = Fixture::sqlite();
    let s = fx.open();
    answers(vec![s.submit("shop", &seen("seed"))])
        .pop()
        .unwrap()
        .unwrap();
    // A database that cannot grow: the big row fails with SQLITE_FULL, which may roll the
    // whole transaction back.
    s.conn()
        .execute_batch("PRAGMA max_page_count = 60;")
        .unwrap();
    let big = "x".repeat(2_000_000);
    let sent = [("shop", "first"), ("shop", big.as_str()), ("cart", "last")];
    let pending = fx.while_writer_waits(&s, || {
        sent.iter()
            .map(|(w, d)| s.submit(w, &seen(d)))
            .collect::<Vec<_>>()
    });
    let answers = answers(pending);
    let Err(e) = &answers[1] else {
        panic!("the big row was stored")
    };
    assert!(e.to_string().contains("full"), "the cause is kept: {e}");
    answers_match_rows(&s, &sent, &answers);
    assert!(s.conn().is_autocommit(), "no transaction left open");
}

#[test]
fn a_write_of_an_earlier_tenure_is_refused() {
    let Some(fx) = Fixture::postgres() else {
        return;
    };
    let s = fx.open();
    let epoch: i64 = fx
        .client()
        .query_one("SELECT epoch FROM leases WHERE watch = 'shop'", &[])
        .unwrap()
        .get(0);
    let under = |e: i64, dep: &str| {
        s.submit(
            "shop",
            &Commit {
                seen: vec![dep.into()],
                epoch: Some(e),
                ..Commit::default()
            },
        )
    };
    let got = answers(vec![under(epoch - 1, "stale"), under(epoch, "current")]);
    assert!(
        matches!(&got[0], Err(StoreError::Fenced { watch }) if watch == "shop"),
        "{:?}",
        got[0]
    );
    assert!(got[1].is_ok(), "{:?}", got[1]);
    assert!(!s.deployment_known("shop", "stale").unwrap());
}

/// A transaction of another session that inserted `shop`'s row `dX` and holds it: a batch
/// writing the same row waits for it.
fn holding_shop_dx(client: &mut postgres::Client) -> postgres::Transaction<'_> {
    let mut tx = client.transaction().unwrap();
    tx.execute(
        "INSERT INTO seen_deployments (watch, deployment_id) VALUES ('shop', 'dX')",
        &[],
    )
    .unwrap();
    tx
}

/// Waits until `n` sessions of the test's schema wait on a lock.
fn await_lock_waiters(fx: &Fixture, n: i64) {
    let Fixture::Postgres { schema, .. } = fx else {
        unreachable!()
    };
    let mut c = fx.client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
                &[schema],
            )
            .unwrap()
            .get(0);
        if waiting >= n {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} of {n} lock waiters"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn a_batch_waiting_on_a_row_and_a_lease_renewal_never_deadlock() {
    let Some(fx) = Fixture::postgres() else {
        return;
    };
    let s = fx.open();
    let held: Vec<(String, i64)> = fx
        .client()
        .query("SELECT watch, epoch FROM leases ORDER BY watch DESC", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Another session holds the row `shop`'s transition inserts: the batch, holding both
    // leases FOR SHARE, waits on it.
    let mut other = fx.client();
    let blocker = holding_shop_dx(&mut other);
    let sent = [("cart", "c1"), ("shop", "dX"), ("cart", "c2")];
    let pending: Vec<_> = sent.iter().map(|(w, d)| s.submit(w, &seen(d))).collect();
    await_lock_waiters(&fx, 1);
    // The renewal of both leases (named in the opposite order) waits for the batch.
    let renewing = {
        let s = s.clone();
        std::thread::spawn(move || {
            s.renew_leases(NODE, &held, std::time::Duration::from_secs(3600))
        })
    };
    await_lock_waiters(&fx, 2);
    blocker.rollback().unwrap();
    let mut renewed = renewing
        .join()
        .unwrap()
        .expect("the renewal is never aborted");
    renewed.sort();
    assert_eq!(renewed, ["cart", "shop"]);
    let answers = answers(pending);
    answers_match_rows(&s, &sent, &answers);
    assert!(answers[0].is_ok(), "{:?}", answers[0]);
}

#[test]
fn a_slow_batch_is_answered_only_with_its_real_outcome() {
    let Some(fx) = Fixture::postgres() else {
        return;
    };
    let s = fx.open();
    let mut other = fx.client();
    let blocker = holding_shop_dx(&mut other);
    // `shop`'s insert waits for the blocker until the batch's lock timeout; what comes after
    // it in the batch is past the batch's time budget and is not written.
    let sent = [("cart", "c1"), ("shop", "dX"), ("cart", "c2")];
    let pending: Vec<_> = sent.iter().map(|(w, d)| s.submit(w, &seen(d))).collect();
    let answers = answers(pending);
    answers_match_rows(&s, &sent, &answers);
    assert!(answers[1].is_err(), "{:?}", answers[1]);
    blocker.rollback().unwrap();
    // Nothing lands after its answer: the batch was over when it answered.
    answers_match_rows(&s, &sent, &answers);
}
