//! A small pool of OS threads, each owning one blocking `postgres::Client`.
//!
//! Why the blocking `postgres` crate: the store's interface is synchronous by design (short
//! calls made from async tasks, like the SQLite one), so an async pool (tokio-postgres +
//! deadpool) would need `block_on` inside the runtime, and sqlx's checked queries need a live
//! database at compile time or committed offline data. `postgres` is tokio-postgres's own
//! blocking front-end (same maintainers, same wire code), but it drives its own runtime and so
//! must never be called on a tokio worker thread: it would panic or deadlock. Hence dedicated
//! threads, fed boxed closures through a shared channel, each answering on its own one-shot
//! channel.
//!
//! A lost connection fails the call that met it with [`StoreError::Unavailable`]; the thread
//! drops the client and connects again for the next call, backing off while the server stays
//! unreachable. A loss is usually everyone's (the server restarted), so it also makes the other
//! threads check their own connection before their next call instead of failing it. Every
//! wait is bounded: connecting ([`CONNECT_TIMEOUT`]), each statement (`statement_timeout`), a
//! dead peer (TCP keepalives and user timeout) and the caller's wait for an answer
//! ([`CALL_TIMEOUT`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::{Client, NoTls};

use crate::store::StoreError;

/// Threads (and so connections) per store: calls are short; a handful covers the daemon's
/// tasks without holding many server backends per node.
pub(in crate::store) const THREADS: usize = 4;
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The server cancels a statement running longer (set on every session).
const STATEMENT_TIMEOUT: &str = "10s";
/// The longest a caller waits for its answer: a statement's timeout plus a connection
/// attempt plus queueing behind the other threads' calls.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Backoff between connection attempts while the server is unreachable. While a thread backs
/// off, its calls fail at once, so the cap is also how late it may notice that the server is
/// back: at most a second, the shortest lease's renewal period (lease 3 s, renewed every 1 s).
/// It was 5 s: after a 15 s outage (tests/e2e/fleet_restart.rs) fleet rounds still failed,
/// "not connected", seconds after the server was up, long enough for a 3 s lease to lapse.
/// Attempts stay cheap: a refused connection fails at once, an unanswered one takes
/// [`CONNECT_TIMEOUT`] of this thread's time anyway.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long a thread's check of its connection may take, after another thread lost its own.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// One call, run on a pool thread with its connection (or the reason there is none), and the
/// pool's count of lost connections, which the call bumps *before* it answers when it lost its
/// connection: the caller's next call, on any thread, then already checks its own first.
type Job = Box<dyn FnOnce(Result<&mut Client, StoreError>, &AtomicU64) + Send>;

/// The pool's handle: dropping it (with every clone of the store) ends the threads.
pub(super) struct Pool {
    jobs: Mutex<Sender<Job>>,
}

/// The parsed connection settings with the timeouts this module relies on.
pub(super) fn settings(url: &str) -> Result<postgres::Config, StoreError> {
    let mut config: postgres::Config = url
        .parse()
        // The parser's messages name options, never their values; the URL is not shown.
        .map_err(|e| StoreError::Config(format!("the state URL does not parse: {e}")))?;
    config
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(30))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(20));
    if config.get_application_name().is_none() {
        config.application_name("backstop");
    }
    Ok(config)
}

/// How long the server keeps a transaction open while its client says nothing. A node frozen
/// in the middle of a fenced commit (SIGSTOP, a paused VM) holds a share lock on the watch's
/// lease row; without this limit the node taking the lease over would wait on that lock for as
/// long as the freeze lasts. Far longer than any of our transactions takes between statements.
const IDLE_IN_TRANSACTION: &str = "5s";

/// Connects and sets the session's limits.
pub(super) fn connect(config: &postgres::Config) -> Result<Client, StoreError> {
    let mut client = config.connect(NoTls).map_err(unavailable)?;
    client
        .batch_execute(&format!(
            "SET statement_timeout = '{STATEMENT_TIMEOUT}'; SET lock_timeout = '{STATEMENT_TIMEOUT}'; \
             SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'"
        ))
        .map_err(unavailable)?;
    Ok(client)
}

/// A connection failure as the caller sees it, with its cause ("connection refused"); the
/// message never holds the URL.
pub(super) fn unavailable(e: postgres::Error) -> StoreError {
    match std::error::Error::source(&e) {
        Some(cause) if !e.to_string().contains(&cause.to_string()) => {
            StoreError::Unavailable(format!("{e}: {cause}"))
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}

impl Pool {
    pub(super) fn start(config: postgres::Config) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let config = Arc::new(config);
        let losses = Arc::new(AtomicU64::new(0));
        for i in 0..THREADS {
            let rx = Arc::clone(&rx);
            let config = Arc::clone(&config);
            let losses = Arc::clone(&losses);
            let spawned = std::thread::Builder::new()
                .name(format!("backstop-pg-{i}"))
                .spawn(move || worker(&config, &rx, &losses));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a PostgreSQL store thread");
            }
        }
        Pool {
            jobs: Mutex::new(tx),
        }
    }

    /// Runs `f` on a pool thread with a connection and waits (bounded) for its answer.
    pub(super) fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        match self.send(f)?.recv_timeout(CALL_TIMEOUT) {
            Ok(answer) => answer,
            Err(mpsc::RecvTimeoutError::Timeout) => Err(StoreError::Unavailable(format!(
                "no answer from the database within {}s",
                CALL_TIMEOUT.as_secs()
            ))),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(failed_unexpectedly()),
        }
    }

    /// Runs `f` on a pool thread and waits for its real outcome, however long it takes: for
    /// the store's writer, which must never start its next transaction while the last one may
    /// still commit (a timed-out wait would answer "failed" for writes that then land, and run
    /// two batches at once). The wait ends: every statement has `statement_timeout`, and a
    /// dead server is noticed by the TCP user timeout.
    pub(super) fn call_to_the_end<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(f)?
            .recv()
            .unwrap_or_else(|_| Err(failed_unexpectedly()))
    }

    /// Queues `f` for a pool thread; its answer arrives on the receiver.
    fn send<T, F>(&self, f: F) -> Result<Receiver<Result<T, StoreError>>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client, losses| {
            let answer = match client {
                Ok(c) => {
                    let answer = f(c);
                    if c.is_closed() {
                        losses.fetch_add(1, Ordering::SeqCst);
                    }
                    answer
                }
                Err(e) => Err(e),
            };
            let _ = tx.send(answer);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| StoreError::Unavailable("the store's threads have stopped".into()))?;
        Ok(rx)
    }
}

fn failed_unexpectedly() -> StoreError {
    StoreError::Unavailable("the call failed unexpectedly (see the log)".into())
}

/// One pool thread: takes jobs until the pool is dropped, (re)connecting as needed. `losses`
/// counts the connections any thread of the pool lost.
fn worker(config: &postgres::Config, jobs: &Mutex<Receiver<Job>>, losses: &AtomicU64) {
    let mut client: Option<Client> = None;
    let mut losses_seen = losses.load(Ordering::SeqCst);
    let mut backoff = BACKOFF_MIN;
    let mut next_attempt = Instant::now();
    let mut why = String::from("not connected yet");
    loop {
        let job = {
            let rx = jobs.lock().unwrap_or_else(|e| e.into_inner());
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        if client.as_ref().is_some_and(Client::is_closed) {
            client = None;
        }
        // Another thread lost its connection since this one last looked: after a server
        // restart this connection is dead too, but the client only learns it from the next
        // call, which would fail. Found restarting PostgreSQL (tests/e2e/fleet_restart.rs):
        // every thread's first call after the restart failed, up to four per node, fleet
        // rounds (lease renewals) and transitions' commits among them, though the server was
        // up again. One round trip instead.
        let now_lost = losses.load(Ordering::SeqCst);
        if now_lost != losses_seen {
            losses_seen = now_lost;
            if client
                .as_mut()
                .is_some_and(|c| c.is_valid(CHECK_TIMEOUT).is_err())
            {
                tracing::warn!("this connection to the state database was lost too; reconnecting");
                client = None;
                next_attempt = Instant::now();
            }
        }
        if client.is_none() && Instant::now() >= next_attempt {
            match connect(config) {
                Ok(c) => {
                    client = Some(c);
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "cannot connect to the state database");
                    why = match e {
                        StoreError::Unavailable(m) => m,
                        other => other.to_string(),
                    };
                    next_attempt = Instant::now() + backoff;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        match client.as_mut() {
            Some(c) => {
                // A bug in one call (a column read as the wrong type panics) must not cost
                // the pool a thread: its caller gets an error, the connection is replaced.
                let ran =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Ok(c), losses)));
                if ran.is_err() {
                    tracing::error!("a state database call panicked; reconnecting");
                    client = None;
                } else if c.is_closed() {
                    // A call that lost the connection answered with its error; the next one
                    // connects again (at once: the server was reachable a moment ago).
                    tracing::warn!("lost the connection to the state database; reconnecting");
                    client = None;
                    // The call counted the loss before it answered.
                    losses_seen = losses.load(Ordering::SeqCst);
                }
            }
            None => job(
                Err(StoreError::Unavailable(format!("not connected: {why}"))),
                losses,
            ),
        }
    }
}
