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
        // The first batch (whatever the writer had taken when it met the lock) and one more
        // for everything queued behind it.
        let transactions = stats.transactions.get() - before;
        assert!((1..=2).contains(&transactions), "{transactions} transactions for 50 transitions");
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
