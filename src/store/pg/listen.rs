//! `LISTEN backstop_inbox` on a dedicated thread and connection, forwarding each payload (a
//! watch) to a channel.
//!
//! Notifications sent while the connection is down are lost, so after every reconnection an
//! empty string goes out first: the consumer re-reads every inbox. The thread ends when the
//! receiver is dropped (noticed at the next notification it forwards).

use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;

use super::{pool, Pg, INBOX_CHANNEL};
use crate::store::StoreError;

/// How often an idle listener probes its connection (and its receiver).
const PROBE: Duration = Duration::from_secs(5);
/// Pause between reconnection attempts.
const RETRY: Duration = Duration::from_secs(1);

pub(in crate::store) fn listen_inbox(pg: &Pg) -> Result<Receiver<String>, StoreError> {
    let (tx, rx) = mpsc::channel();
    let settings = pg.settings.clone();
    std::thread::Builder::new()
        .name("backstop-pg-listen".into())
        .spawn(move || run(&settings, &tx))
        .map_err(|e| StoreError::Unavailable(format!("cannot start the listener thread: {e}")))?;
    Ok(rx)
}

fn run(settings: &postgres::Config, tx: &Sender<String>) {
    let mut first = true;
    loop {
        match pool::connect(settings).and_then(|mut c| {
            c.batch_execute(&format!("LISTEN {INBOX_CHANNEL}"))
                .map_err(pool::unavailable)?;
            Ok(c)
        }) {
            Ok(mut client) => {
                if !first && tx.send(String::new()).is_err() {
                    return;
                }
                first = false;
                if !forward(&mut client, tx) {
                    return;
                }
                tracing::warn!("lost the inbox listener's connection; reconnecting");
            }
            Err(e) => {
                first = false;
                tracing::warn!(error = %e, "cannot start listening to the inbox; retrying");
                // Nothing was forwarded yet on this connection: the consumer re-drains when
                // one is made, as after any reconnection.
                std::thread::sleep(RETRY);
            }
        }
    }
}

/// Forwards until the connection is lost (`true`) or the receiver is gone (`false`).
fn forward(client: &mut postgres::Client, tx: &Sender<String>) -> bool {
    loop {
        let mut lost = false;
        {
            let mut notes = client.notifications();
            let mut iter = notes.timeout_iter(PROBE);
            loop {
                match iter.next() {
                    Ok(Some(n)) => {
                        if tx.send(n.payload().to_string()).is_err() {
                            return false;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => {
                        lost = true;
                        break;
                    }
                }
            }
        }
        if lost || client.is_valid(PROBE).is_err() {
            return true;
        }
    }
}
