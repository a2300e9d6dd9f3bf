//! The store's writer: one OS thread that takes the lifecycle transitions the watch actors
//! submit and writes them in batches, one transaction per batch.
//!
//! Why a thread of its own: a write waits on the disk (an fsync) or on the network
//! (PostgreSQL), and the actors run on the async runtime's two worker threads. Made there, a
//! slow write holds up every round on that worker: replies already received wait, rounds slip,
//! and an unanswered probe becomes a timeout (bench/RESULTS.md, "Headroom"). Here the actor
//! only serialises its rows (the costly part that needs its records) and awaits the answer;
//! the runtime keeps running rounds meanwhile.
//!
//! Why batches: while one transaction commits, the next transitions queue; the writer takes
//! them all (up to [`MAX_BATCH`]) into the next transaction, so a thousand watches committing
//! in the same second cost a few fsyncs, not a thousand. Each transition runs in its own
//! savepoint, so one that fails (fenced, a refused row) is rolled back and answered alone. A
//! batch is durable (`synchronous=FULL`, `synchronous_commit=on`) when any transition in it
//! is: a deploy intent never waits in a weaker commit.
//!
//! Each submitter awaits its own answer before acting on the transition, so nothing that
//! leaves the process runs ahead of its record, exactly as with a direct write. (A routine
//! checkpoint, on which nothing acts, is answered later: `engine::watch` settles it before
//! the watch's next write.)

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge};
use tokio::sync::oneshot;

use super::rows::Rows;
use super::{Backend, StoreError};

/// Transitions per transaction at most on SQLite: bounds how long the first of a batch waits
/// for the last, and the transaction's size. (PostgreSQL batches are smaller:
/// `pg::watches::MAX_BATCH`.)
pub(super) const MAX_BATCH: usize = 256;

/// One submitted transition and where its answer goes.
struct Job {
    rows: Rows,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle the store keeps: dropping the last one ends the thread once its queue is done.
pub(super) struct Writer {
    jobs: Sender<Job>,
    pub(super) stats: Stats,
}

/// The writer's own metrics, registered by the daemon's registry
/// ([`crate::metrics::Metrics::register_store`]).
#[derive(Clone)]
pub struct Stats {
    /// Transitions written (or refused) by the writer.
    pub commits: IntCounter,
    /// Transactions the writer ran: commits / transactions is the batching achieved.
    pub transactions: IntCounter,
    /// Transitions submitted and not answered yet.
    pub queued: IntGauge,
    /// How long each batch's transaction took, commit included.
    pub seconds: Histogram,
}

impl Stats {
    fn new() -> Self {
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).expect("static metric names are valid")
        };
        Stats {
            commits: counter(
                "backstop_store_commits_total",
                "Lifecycle transitions the store writer committed or refused.",
            ),
            transactions: counter(
                "backstop_store_transactions_total",
                "Transactions the store writer ran (each holds a batch of transitions).",
            ),
            queued: IntGauge::new(
                "backstop_store_queue",
                "Transitions submitted to the store writer and not answered yet.",
            )
            .expect("static metric names are valid"),
            seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "backstop_store_transaction_seconds",
                    "Time the store writer took per batch, commit included.",
                )
                .buckets(vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ]),
            )
            .expect("static metric names are valid"),
        }
    }
}

impl Writer {
    /// Starts the thread, which writes through `backend`.
    pub(super) fn start(backend: Backend) -> Result<Self, StoreError> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let stats = Stats::new();
        let thread_stats = stats.clone();
        std::thread::Builder::new()
            .name("backstop-writer".into())
            .spawn(move || run(&backend, &rx, &thread_stats))
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot start the store writer thread: {e}"))
            })?;
        Ok(Writer { jobs, stats })
    }

    /// Queues a transition; the receiver gets its answer once its batch is written.
    pub(super) fn submit(&self, rows: Rows) -> oneshot::Receiver<Result<(), StoreError>> {
        let (reply, answer) = oneshot::channel();
        self.stats.queued.inc();
        if let Err(mpsc::SendError(job)) = self.jobs.send(Job { rows, reply }) {
            // The thread is gone (it only ends when the store is dropped): say so.
            self.stats.queued.dec();
            let _ = job.reply.send(Err(stopped()));
        }
        answer
    }
}

pub(super) fn stopped() -> StoreError {
    StoreError::Unavailable("the store writer has stopped".into())
}

/// The thread: waits for a transition, takes every other one queued behind it (up to
/// [`MAX_BATCH`]), writes them in one transaction and answers each.
fn run(backend: &Backend, rx: &Receiver<Job>, stats: &Stats) {
    let max = backend.max_batch();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let n = batch.len();
        let (rows, replies): (Vec<Rows>, Vec<_>) =
            batch.into_iter().map(|j| (j.rows, j.reply)).unzip();
        let started = Instant::now();
        // A panic in a write must not end the thread (every later commit would fail): it fails
        // this batch only.
        let results =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| backend.write_batch(rows)))
                .unwrap_or_else(|_| {
                    tracing::error!(
                        "BUG: the store writer panicked; {n} transitions were not written"
                    );
                    (0..n).map(|_| Err(stopped())).collect()
                });
        stats.seconds.observe(started.elapsed().as_secs_f64());
        stats.transactions.inc();
        stats.commits.inc_by(n as u64);
        stats.queued.sub(n as i64);
        for (reply, result) in replies.into_iter().zip(results) {
            // A submitter that went away (its task was dropped) needs no answer.
            let _ = reply.send(result);
        }
    }
}

/// One error for every transition of a batch that failed as a whole (nothing was written):
/// the first keeps the original, the others carry its message.
pub(super) fn whole_batch_failed(n: usize, e: StoreError) -> Vec<Result<(), StoreError>> {
    let (msg, unavailable) = match &e {
        StoreError::Unavailable(m) => (m.clone(), true),
        other => (other.to_string(), false),
    };
    let mut out = Vec::with_capacity(n);
    out.push(Err(e));
    out.extend((1..n).map(|_| {
        Err(if unavailable {
            StoreError::Unavailable(msg.clone())
        } else {
            StoreError::Batch(msg.clone())
        })
    }));
    out.truncate(n);
    out
}
