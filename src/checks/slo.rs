//! `kind = "slo"`: the I/O of a burn-rate sample. Four instant queries against Prometheus
//! (good and total over the long and the short window), run together; the windows and the
//! verdict come from the pure [`crate::judge::burn`].

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{prometheus, ProbeError};
use crate::config::slo::with_window;
use crate::config::SloProbe;
use crate::judge::burn::{self, BurnReading, WindowCounts};
use crate::judge::Reading;

/// One sample `now`, of a release deployed at `since`: windows never reach before `since`.
/// Too early for a one-second window, or a query with no result, is no data; Prometheus
/// unreachable is an error like any telemetry failure.
pub async fn sample(
    client: &reqwest::Client,
    p: &SloProbe,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Reading, ProbeError> {
    let elapsed = (now - since).to_std().unwrap_or(Duration::ZERO);
    let w = burn::windows(elapsed, p.long_window).ok_or(ProbeError::NoData)?;
    let (long, short) = tokio::try_join!(counts(client, p, w.long), counts(client, p, w.short))?;
    Ok(Reading::Slo(BurnReading {
        objective: p.objective,
        long,
        short,
    }))
}

async fn counts(
    client: &reqwest::Client,
    p: &SloProbe,
    window: Duration,
) -> Result<WindowCounts, ProbeError> {
    let good = with_window(&p.good, window);
    let total = with_window(&p.total, window);
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
