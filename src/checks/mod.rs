//! Probes: take one sample of a check, or its pre-deployment baseline.
//!
//! A probe that cannot measure returns a [`ProbeError`]. The lifecycle records it as an error,
//! except when the application itself did not answer a probe that reads it
//! ([`ProbeError::app_down`], [`crate::config::Probe::reads_the_app`]): a release that is
//! down is broken, a failure. One variant per check kind, dispatched with `match`. Scrape
//! checks do their I/O in a [`scrape::Collector`] task; sampling them reads its history.
//! Alert checks ([`alert`]) read a Prometheus's or an Alertmanager's alerts; slo checks
//! ([`slo`]) good and total counts over two windows, from a Prometheus or from a collector.

pub mod alert;
mod http;
pub mod prometheus;
pub mod scrape;
pub mod slo;

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::Probe;
use crate::judge::Reading;

/// Why a probe could not produce a reading.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProbeError {
    #[error("target unreachable: {0}")]
    Unreachable(String),
    #[error("timed out after {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("HTTP {status} from prometheus: {message}")]
    Http { status: u16, message: String },
    #[error("HTTP {status} from {server}: {message}")]
    Answer {
        server: &'static str,
        status: u16,
        message: String,
    },
    #[error("prometheus {error_type} error: {message}")]
    Api { error_type: String, message: String },
    #[error("query returned no data")]
    NoData,
    #[error("query returned {0}, not a number")]
    NotANumber(String),
    #[error("query returned {0} series; wrap it in sum(), max() or similar to get one")]
    MultipleSeries(usize),
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error(transparent)]
    Scrape(#[from] scrape::ScrapeError),
}

impl ProbeError {
    /// Whether the probe measured and found nothing: an empty result, a NaN (0/0: a zero
    /// denominator), no matching series, no traffic in the window.
    pub fn is_no_data(&self) -> bool {
        match self {
            ProbeError::NoData => true,
            ProbeError::NotANumber(v) => v.eq_ignore_ascii_case("nan"),
            ProbeError::Scrape(
                scrape::ScrapeError::NoSeries(_) | scrape::ScrapeError::NoTraffic { .. },
            ) => true,
            _ => false,
        }
    }

    /// Whether the application itself did not answer (refused, reset, timed out), and whether
    /// it timed out; `None` when the error says nothing about the application (bad answers,
    /// telemetry). Only meaningful for probes of the application (http, scrape).
    pub fn app_down(&self) -> Option<bool> {
        match self {
            ProbeError::Unreachable(_) => Some(false),
            ProbeError::Timeout(_) => Some(true),
            ProbeError::Scrape(scrape::ScrapeError::Unreachable { timed_out, .. }) => {
                Some(*timed_out)
            }
            _ => None,
        }
    }

    /// Classifies a transport error from reqwest. The URL is stripped from the message: it may
    /// carry credentials in user-info or the query.
    pub(crate) fn from_reqwest(e: reqwest::Error, timeout: Duration) -> Self {
        if e.is_timeout() {
            ProbeError::Timeout(timeout)
        } else if e.is_decode() {
            ProbeError::Malformed(e.without_url().to_string())
        } else {
            ProbeError::Unreachable(e.without_url().to_string())
        }
    }

    /// Classifies a failed capped read ([`crate::limits::read`]): an answer over its cap is
    /// a malformed answer, a transport failure as in [`Self::from_reqwest`].
    pub(crate) fn from_read(e: crate::limits::ReadError, timeout: Duration) -> Self {
        match e {
            crate::limits::ReadError::Transport(e) => Self::from_reqwest(e, timeout),
            too_large => ProbeError::Malformed(too_large.to_string()),
        }
    }
}

/// Takes one sample. `collector` is the check's scrape collector (scrape checks, and slo
/// checks counting scraped events);
/// `since` is when the observed deployment started.
pub async fn sample(
    client: &reqwest::Client,
    probe: &Probe,
    collector: Option<&scrape::Collector>,
    since: DateTime<Utc>,
) -> Result<Reading, ProbeError> {
    match probe {
        Probe::Http { url, timeout } => http::sample(client, url, *timeout).await,
        Probe::Prometheus {
            url,
            query,
            timeout,
            ..
        } => prometheus::instant(client, url, query, *timeout)
            .await
            .map(Reading::Value),
        Probe::Scrape(_) => collector
            .ok_or(ProbeError::Scrape(scrape::ScrapeError::NotYet))?
            .sample(Utc::now(), since)
            .map(Reading::Value),
        Probe::Alert(a) => alert::sample(client, a, since).await,
        Probe::Slo(s) => slo::sample(client, s, collector, since, Utc::now()).await,
    }
}

/// The pre-deployment baseline of a probe: `Ok(None)` for probes without a baseline window.
pub async fn baseline(
    client: &reqwest::Client,
    probe: &Probe,
    deployed_at: DateTime<Utc>,
    collector: Option<&scrape::Collector>,
) -> Result<Option<f64>, ProbeError> {
    Ok(baseline_series(client, probe, deployed_at, collector)
        .await?
        .0)
}

/// [`baseline`] and the series it is the mean of (for the evidence: `None` when the probe has
/// no baseline window). One fetch serves both, so the chart shows what was judged against.
pub async fn baseline_series(
    client: &reqwest::Client,
    probe: &Probe,
    deployed_at: DateTime<Utc>,
    collector: Option<&scrape::Collector>,
) -> Result<(Option<f64>, Option<crate::model::BeforeSeries>), ProbeError> {
    match probe {
        Probe::Http { .. } | Probe::Alert(_) | Probe::Slo(_) => Ok((None, None)),
        Probe::Prometheus {
            baseline_window: None,
            ..
        } => Ok((None, None)),
        Probe::Prometheus {
            url,
            query,
            timeout,
            baseline_window: Some(window),
            ..
        } => {
            let points =
                prometheus::range_timed(client, url, query, deployed_at, *window, *timeout).await?;
            let values: Vec<f64> = points.iter().map(|(_, v)| *v).collect();
            let mean = crate::judge::baseline::mean(&values).ok_or(ProbeError::NoData)?;
            let from = deployed_at - chrono::Duration::from_std(*window).unwrap_or_default();
            Ok((
                Some(mean),
                Some(crate::model::BeforeSeries {
                    from,
                    to: deployed_at,
                    points,
                }),
            ))
        }
        Probe::Scrape(_) => {
            let col = collector.ok_or(ProbeError::Scrape(scrape::ScrapeError::NotYet))?;
            let mean = col.baseline(deployed_at)?;
            Ok((mean, mean.and(col.baseline_points(deployed_at))))
        }
    }
}

/// `compare` checks: the pre-deployment samples (over `baseline_window` ending at `until`)
/// and the post-deployment samples (from `post_from` to now). Prometheus: `query_range` at
/// the check's `step`, each side limited to its newest
/// [`crate::judge::compare::MAX_SAMPLES`] steps; scrape: the collector's own values.
pub async fn compare_samples(
    client: &reqwest::Client,
    probe: &Probe,
    step: Duration,
    collector: Option<&scrape::Collector>,
    side: CompareSide,
) -> Result<Vec<f64>, ProbeError> {
    let newest = |from: DateTime<Utc>, to: DateTime<Utc>| {
        let cap = step * crate::judge::compare::MAX_SAMPLES as u32;
        from.max(to - chrono::Duration::from_std(cap).unwrap_or_default())
    };
    match (probe, side) {
        // No compare on these (config refuses it).
        (Probe::Http { .. } | Probe::Alert(_) | Probe::Slo(_), _) => Ok(Vec::new()),
        (
            Probe::Prometheus {
                url,
                query,
                timeout,
                baseline_window,
                ..
            },
            side,
        ) => {
            let (from, to) = match side {
                CompareSide::Pre { until } => {
                    let window = baseline_window.unwrap_or_default();
                    (
                        until - chrono::Duration::from_std(window).unwrap_or_default(),
                        until,
                    )
                }
                CompareSide::Post { from, .. } => (from, Utc::now()),
            };
            if from >= to {
                return Ok(Vec::new());
            }
            prometheus::range_at(client, url, query, newest(from, to), to, step, *timeout).await
        }
        (Probe::Scrape(_), side) => {
            let col = collector.ok_or(ProbeError::Scrape(scrape::ScrapeError::NotYet))?;
            match side {
                CompareSide::Pre { until } => col.compare_pre(until),
                CompareSide::Post { since, from } => Ok(col.compare_post(since, from)),
            }
        }
    }
}

/// Which of `compare`'s sample sets to fetch.
#[derive(Debug, Clone, Copy)]
pub enum CompareSide {
    /// The pre-deployment samples: `baseline_window` ending at `until`.
    Pre { until: DateTime<Utc> },
    /// The post-deployment samples: from `from` to now, of a release deployed at `since`.
    Post {
        since: DateTime<Utc>,
        from: DateTime<Utc>,
    },
}
