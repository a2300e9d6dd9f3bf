//! [`Store::in_place`]: a synchronous store call made on a runtime worker must not hold the
//! tasks queued on that worker (a deploy intent's save waits for the writer's batch).

use std::sync::mpsc;
use std::time::Duration;

use super::*;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// One worker only: a call blocking it the plain way would never let the other task run, and
/// the call (which waits for that task) would give up after its timeout.
#[test]
fn a_call_in_place_lets_the_workers_other_tasks_run() {
    let (_dir, store) = store();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let answered = rt.block_on(async move {
        tokio::spawn(async move {
            let (tx, rx) = mpsc::channel::<()>();
            // Queued on this task's worker, runnable only once the worker is free.
            tokio::spawn(async move { tx.send(()).unwrap() });
            store.in_place(|_| rx.recv_timeout(Duration::from_secs(20)))
        })
        .await
        .unwrap()
    });
    assert_eq!(answered, Ok(()), "the other task never ran");
}

#[test]
fn outside_a_multi_thread_runtime_a_call_in_place_just_runs() {
    let (_dir, store) = store();
    assert_eq!(store.in_place(|_| 7), 7);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(async { store.in_place(|_| 8) }), 8);
    let on_pool = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            tokio::task::spawn_blocking(move || store.in_place(|_| 9))
                .await
                .unwrap()
        });
    assert_eq!(on_pool, 9);
}
