//! `kind = "slo"`: the I/O of a burn-rate sample. With PromQL, four instant queries against
//! Prometheus (good and total over the long and the short window), run together; with scrape
//! selections, the counts from the check's scrape collector, no I/O of its own. The windows
//! and the verdict come from the pure [`crate::judge::burn`] either way.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{prometheus, scrape, ProbeError};
use crate::config::slo::with_window;
use crate::config::{SloEvents, SloProbe};
use crate::judge::burn::{self, BurnReading, WindowCounts};
use crate::judge::Reading;

/// One sample `now`, of a release deployed at `since`: windows never reach before `since`.
/// Too early for a one-second window, or a query with no result, is no data; Prometheus
/// unreachable is an error like any telemetry failure, the application not answering a scrape
/// is the application down. `collector`: the check's, when it counts scraped events.
pub async fn sample(
    client: &reqwest::Client,
    p: &SloProbe,
    collector: Option<&scrape::Collector>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Reading, ProbeError> {
    let elapsed = (now - since).to_std().unwrap_or(Duration::ZERO);
    let w = burn::windows(elapsed, p.long_window).ok_or(ProbeError::NoData)?;
    let (good, total) = match &p.events {
        SloEvents::Query { good, total } => (good, total),
        SloEvents::Scrape { .. } => {
            return collector
                .ok_or(ProbeError::Scrape(scrape::ScrapeError::NotYet))?
                .burn(now, since, p.objective, w)
                .map(Reading::Slo);
        }
    };
    let (long, short) = tokio::try_join!(
        counts(client, p, good, total, w.long),
        counts(client, p, good, total, w.short)
    )?;
    Ok(Reading::Slo(BurnReading {
        objective: p.objective,
        long,
        short,
    }))
}

async fn counts(
    client: &reqwest::Client,
    p: &SloProbe,
    good: &str,
    total: &str,
    window: Duration,
) -> Result<WindowCounts, ProbeError> {
    let good = with_window(good, window);
    let total = with_window(total, window);
    let (good, total) = tokio::try_join!(
        prometheus::instant(client, &p.url, &good, p.timeout),
        prometheus::instant(client, &p.url, &total, p.timeout),
    )?;
    Ok(WindowCounts {
        window_secs: window.as_secs(),
        good,
        total,
    })
}
