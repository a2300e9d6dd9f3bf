//! Keeping a collector's history across restarts: claim the stored rows when a watch's
//! collectors start, resume from them, save periodically and on stop. The I/O shell around
//! [`record`](super::record) (the stored form) and the store's `scrape_history` table.
//!
//! The store is synchronous SQLite: every call here runs on tokio's blocking pool, so a slow
//! disk never stalls the async workers that run the rounds.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::maths::{self, History};
use super::{record, Collector};
use crate::store::{Claimed, Store};

/// How often a collector saves its history, unless its interval is longer (then after every
/// scrape). A crash loses at most this much of it; a graceful stop loses nothing. 15s is
/// small against the windows a baseline is computed over (default 10m) and keeps the writes
/// cheap: one UPDATE of one row per check per period (the points of the windows, a few KB at
/// a 10s interval), i.e. ~70 small writes a second for 1,000 checks, with no fsync under
/// `synchronous=NORMAL`. Saving every scrape would rewrite the whole row every interval.
pub const SAVE_EVERY: Duration = Duration::from_secs(15);

/// Where one collector's history is stored.
pub struct Persist {
    store: Store,
    watch: String,
    check: String,
    fingerprint: String,
    /// How far back points are worth keeping (what the windows need, plus slack).
    keep: Duration,
}

impl Persist {
    /// Where the history of `watch`'s check `check` goes; `keep`: how far back points are
    /// worth keeping.
    pub fn new(
        store: &Store,
        watch: &str,
        check: &str,
        fingerprint: String,
        keep: Duration,
    ) -> Self {
        Persist {
            store: store.clone(),
            watch: watch.to_string(),
            check: check.to_string(),
            fingerprint,
            keep,
        }
    }

    /// Shown in logs: `watch/check`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.watch, self.check)
    }
}

/// Claims the stored history of `watch`'s scrape checks, given as (check, fingerprint), and drops
/// that of its checks that are gone. `None` per check when the store could not be read: that
/// check runs without saving until the next start (warned).
pub async fn claim(
    store: &Store,
    watch: &str,
    checks: &[(String, String)],
) -> Vec<Option<Claimed>> {
    let keys: Vec<(String, String)> = checks.to_vec();
    let (s, w) = (store.clone(), watch.to_string());
    let claimed = tokio::task::spawn_blocking(move || {
        let refs: Vec<(&str, &str)> = keys.iter().map(|(c, f)| (c.as_str(), f.as_str())).collect();
        s.claim_scrape_history(&w, &refs)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    match claimed {
        Ok(c) => c.into_iter().map(Some).collect(),
        Err(e) => {
            if !checks.is_empty() {
                tracing::warn!(%watch, error = %e, "cannot read stored scrape history; scrape checks start empty and are not saved until the next start");
            }
            vec![None; checks.len()]
        }
    }
}

/// The history a collector starts from, and where to save it (`None`: the row was not
/// claimed, so it is not saved). Points older than the persist's `keep` are dropped, and all
/// but the newest `capacity`.
pub fn resume(
    claimed: Option<Claimed>,
    persist: Persist,
    now: DateTime<Utc>,
    capacity: usize,
) -> (History, Option<Arc<Persist>>) {
    let Some(claimed) = claimed else {
        return (History::new(capacity), None);
    };
    let name = persist.name();
    let history = match claimed {
        Claimed::Empty => History::new(capacity),
        Claimed::Changed => {
            tracing::info!(check = %name, "scrape settings changed: the stored history is discarded");
            History::new(capacity)
        }
        Claimed::Found(text) => match record::decode(&text) {
            Ok(points) => {
                let points = maths::recent(points, now, persist.keep);
                tracing::debug!(check = %name, points = points.len(), "scrape history resumed");
                History::resume(capacity, points)
            }
            Err(e) => {
                tracing::warn!(check = %name, error = %e, "stored scrape history is unreadable; starting empty");
                History::new(capacity)
            }
        },
    };
    (history, Some(Arc::new(persist)))
}

/// Saves the collector's recent points, off the async workers. `false`: not saved (logged),
/// to be tried again at the next save.
pub async fn save(collector: &Collector, persist: &Arc<Persist>) -> bool {
    let points = collector.lock().points().to_vec();
    let p = persist.clone();
    let saved = tokio::task::spawn_blocking(move || {
        let text = record::encode(&maths::recent(points, Utc::now(), p.keep))
            .map_err(|e| e.to_string())?;
        p.store
            .save_scrape_history(&p.watch, &p.check, &p.fingerprint, &text)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    match saved {
        Ok(true) => true,
        Ok(false) => {
            // Removed from the config (or changed) while stopping: nothing to keep.
            tracing::debug!(check = %persist.name(), "scrape history not saved: the check is gone");
            true
        }
        Err(e) => {
            tracing::warn!(check = %persist.name(), error = %e, "cannot save scrape history; trying again at the next save");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;
    use crate::config::ScrapeProbe;
    use crate::config::{ScrapeMode, SeriesSelector};

    fn probe(url: &str) -> ScrapeProbe {
        ScrapeProbe {
            url: url.into(),
            timeout: Duration::from_secs(1),
            mode: ScrapeMode::Gauge(SeriesSelector {
                metric: "g".into(),
                labels: Default::default(),
            }),
            rate_window: Duration::from_secs(60),
            baseline_window: Some(Duration::from_secs(60)),
        }
    }

    const KEEP: Duration = Duration::from_secs(600);

    /// Claims and resumes the check `w/c` as a collector starting now would.
    async fn start(store: &Store, p: &ScrapeProbe) -> (Collector, Option<Arc<Persist>>) {
        let claimed = claim(store, "w", &[("c".into(), record::fingerprint(p, None))]).await;
        let persist = Persist::new(store, "w", "c", record::fingerprint(p, None), KEEP);
        let (history, saved) = resume(claimed[0].clone(), persist, Utc::now(), 100);
        let collector = Collector::new(
            history,
            p.clone(),
            None,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        (collector, saved)
    }

    /// Records gauge scrapes `g <v>` taken `secs_ago` seconds before now.
    fn record(c: &Collector, scrapes: &[(i64, f64)]) {
        let sels = super::super::select::selections(&c.probe.mode, None);
        for &(secs_ago, v) in scrapes {
            let at = Utc::now() - chrono::Duration::seconds(secs_ago);
            let exp = parse(&format!("g {v}\n")).unwrap();
            c.lock().record(at, Ok(&exp), &sels);
        }
    }

    #[tokio::test]
    async fn a_saved_history_is_resumed_within_its_horizon() {
        let store = Store::in_memory().unwrap();
        let p = probe("http://app/metrics");
        let (c, saved) = start(&store, &p).await;
        // One scrape older than the horizon, three within it.
        record(&c, &[(900, 100.0), (30, 1.0), (20, 2.0), (10, 3.0)]);
        assert!(save(&c, saved.as_ref().unwrap()).await);
        let (next, _) = start(&store, &p).await;
        let values: Vec<f64> = next
            .lock()
            .points()
            .iter()
            .map(|p| p.measures.as_ref().unwrap()[0].sum)
            .collect();
        assert_eq!(values, vec![1.0, 2.0, 3.0]);
        assert_eq!(next.baseline(Utc::now()).unwrap(), Some(2.0));
    }

    #[tokio::test]
    async fn another_endpoint_starts_empty() {
        let store = Store::in_memory().unwrap();
        let (c, saved) = start(&store, &probe("http://app/metrics")).await;
        record(&c, &[(10, 1.0)]);
        save(&c, saved.as_ref().unwrap()).await;
        let (next, saved) = start(&store, &probe("http://other/metrics")).await;
        assert!(next.lock().points().is_empty());
        assert!(saved.is_some(), "the new settings own the row");
    }

    #[tokio::test]
    async fn a_garbled_row_starts_empty_and_the_next_save_replaces_it() {
        let store = Store::in_memory().unwrap();
        let p = probe("http://app/metrics");
        let fp = record::fingerprint(&p, None);
        store.claim_scrape_history("w", &[("c", &fp)]).unwrap();
        store
            .save_scrape_history("w", "c", &fp, r#"{"v":1,"p":[{"t":"#)
            .unwrap();
        let (c, saved) = start(&store, &p).await;
        assert!(c.lock().points().is_empty());
        record(&c, &[(5, 4.0)]);
        assert!(save(&c, saved.as_ref().unwrap()).await);
        let (next, _) = start(&store, &p).await;
        assert_eq!(next.lock().points().len(), 1);
    }

    #[test]
    fn an_unclaimed_row_is_not_saved() {
        let store = Store::in_memory().unwrap();
        let p = probe("http://app/metrics");
        let persist = Persist::new(&store, "w", "c", record::fingerprint(&p, None), KEEP);
        let (history, saved) = resume(None, persist, Utc::now(), 100);
        assert!(saved.is_none());
        assert_eq!(history.clone().points().len(), 0);
    }
}
