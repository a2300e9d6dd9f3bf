//! One sample round's I/O: baselines still missing and every check, concurrently.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::lifecycle::{CheckResult, CompareSamples, ControlReading, RoundResult, Unmeasured};
use super::watch::WatchActor;
use crate::checks;
use crate::config::{ControlConfig, Probe, TrafficSource};

impl WatchActor {
    /// `timer_lag`: how late the actor's timer for this round fired (while it was waiting).
    pub(super) async fn round(
        &self,
        scheduled: DateTime<Utc>,
        timer_lag: std::time::Duration,
    ) -> RoundResult {
        let Some(obs) = &self.record.observation else {
            return RoundResult {
                scheduled,
                checks: Vec::new(),
            };
        };
        let http = &self.shared.http;
        let since = obs.deployed_at;
        // After a condemned release (a rollback), the baseline is the good release's past:
        // it ends where the bad release began.
        let baseline_until = obs.baseline_until.unwrap_or(obs.deployed_at);
        let results = futures_util::future::join_all(self.cfg.checks.iter().map(|c| {
            let collector = self
                .collectors
                .iter()
                .find(|(n, _)| *n == c.name)
                .and_then(|(_, col)| col.as_ref());
            // A control compares the check's move from its baseline with the control's.
            let need = (c.rules.iter().any(|r| r.needs_baseline()) || c.control.is_some())
                && obs
                    .tracker
                    .checks
                    .iter()
                    .find(|t| t.name == c.name)
                    .is_none_or(|t| t.baseline.is_none());
            let track = obs.tracker.checks.iter().find(|t| t.name == c.name);
            let need_pre = track.is_none_or(|t| t.pre.is_none());
            let need_control_baseline = track.is_none_or(|t| t.control_baseline.is_none());
            // Post samples start when judging does, and after the query's look-back has left
            // the deployment behind: a point that mixes both releases is in neither set.
            let lookback = match &c.probe {
                Probe::Prometheus { lookback, .. } => *lookback,
                _ => Duration::ZERO,
            };
            let post_from = obs
                .judging_from
                .max(since + chrono::Duration::from_std(lookback).unwrap_or_default());
            async move {
                let compare = match c.compare {
                    Some(cmp) => {
                        let fetch = |side| async move {
                            checks::compare_samples(http, &c.probe, cmp.step, collector, side)
                                .await
                                .map_err(|e| e.to_string())
                        };
                        let pre = async {
                            if need_pre {
                                Some(fetch(checks::CompareSide::Pre { until: baseline_until }).await)
                            } else {
                                None
                            }
                        };
                        let post = fetch(checks::CompareSide::Post { since, from: post_from });
                        let (pre, post) = futures_util::join!(pre, post);
                        Some(CompareSamples { pre, post })
                    }
                    None => None,
                };
                let (baseline, before) = if need {
                    match checks::baseline_series(http, &c.probe, baseline_until, collector).await {
                        Ok((mean, series)) => (Some(Ok(mean)), series),
                        Err(e) => (Some(Err(e.to_string())), None),
                    }
                } else {
                    (None, None)
                };
                let traffic_query = async {
                    match (c.min_traffic.as_ref().map(|m| &m.source), &c.probe) {
                        (Some(TrafficSource::Query(q)), Probe::Prometheus { url, timeout, .. }) => Some(
                            checks::prometheus::instant(http, url, q, *timeout)
                                .await
                                .map_err(|e| e.to_string()),
                        ),
                        // From the collector's scrapes: no I/O of its own.
                        (Some(TrafficSource::Series(_)), Probe::Scrape(_)) => Some(
                            collector
                                .and_then(|col| col.traffic(Utc::now(), since))
                                .unwrap_or(Err(checks::ProbeError::Scrape(
                                    checks::scrape::ScrapeError::NotYet,
                                )))
                                .map_err(|e| e.to_string()),
                        ),
                        _ => None,
                    }
                };
                let control_query = async {
                    let ctl = c.control.as_ref()?;
                    Some(control(http, ctl, need_control_baseline.then_some(baseline_until)).await)
                };
                // The probe's time runs from the moment its request is sent (after any
                // baseline or compare fetch above), and is its own: not the traffic's or the
                // control's, which may take longer.
                // A probe that sends a request waits for a slot first (a collector's reading
                // sends nothing). The wait is before the request, so it cannot turn an answer
                // into a timeout, and it excuses nothing: the probe's time starts once sent.
                let sample = async {
                    let _slot = match collector {
                        Some(_) => None,
                        None => self.shared.probes.0.acquire().await.ok(),
                    };
                    let sent = Instant::now();
                    let reading = checks::sample(http, &c.probe, collector, since).await;
                    (reading, sent, sent.elapsed())
                };
                let ((reading, sent, elapsed), traffic, control) =
                    futures_util::join!(sample, traffic_query, control_query);
                let lag = self.lag_around(&c.probe, collector.is_some(), sent, elapsed, timer_lag);
                // Prometheus and alert servers are telemetry: their being down is never the
                // application's.
                let app_probe = c.probe.reads_the_app();
                let reading = reading.map_err(|e| {
                    tracing::debug!(watch = %self.cfg.name, check = %c.name, reason = %e, "check could not measure");
                    match e.app_down().filter(|_| app_probe) {
                        Some(timed_out) => Unmeasured { reason: e.to_string(), app_down: true, timed_out, empty: false },
                        None => Unmeasured { empty: e.is_no_data(), ..Unmeasured::other(e.to_string()) },
                    }
                });
                CheckResult {
                    name: c.name.clone(),
                    baseline,
                    before,
                    reading,
                    lag,
                    traffic,
                    compare,
                    control,
                }
            }
        }))
        .await;
        RoundResult {
            scheduled,
            checks: results,
        }
    }

    /// How late backstop was around a probe sent at `sent` that took `elapsed`: the worst of
    /// the round's timer lag, the scheduler lag while the probe was in flight, and its own
    /// timer firing after its timeout. A probe read from a collector got its answer from a
    /// scrape up to an interval and a timeout earlier: the look-back covers that scrape.
    fn lag_around(
        &self,
        probe: &Probe,
        collected: bool,
        sent: Instant,
        elapsed: Duration,
        timer_lag: Duration,
    ) -> Duration {
        let timeout = probe_timeout(probe);
        let from = if collected {
            sent.checked_sub(self.cfg.interval + timeout)
                .unwrap_or(sent)
        } else {
            sent
        };
        let overrun = elapsed.saturating_sub(timeout);
        timer_lag.max(self.shared.lag.max_since(from)).max(overrun)
    }
}

/// A check's control: its value now (queried at the same time as the check), and its
/// baseline when `baseline_until` is given (once per observation): the mean over the check's
/// `baseline_window` ending there, as a ratio baseline is taken.
async fn control(
    http: &reqwest::Client,
    ctl: &ControlConfig,
    baseline_until: Option<DateTime<Utc>>,
) -> ControlReading {
    let now = checks::prometheus::instant(http, &ctl.url, &ctl.query, ctl.timeout);
    let baseline = async {
        let until = baseline_until?;
        let values = checks::prometheus::range(
            http,
            &ctl.url,
            &ctl.query,
            until,
            ctl.baseline_window,
            ctl.timeout,
        )
        .await;
        Some(
            values
                .and_then(|v| crate::judge::baseline::mean(&v).ok_or(checks::ProbeError::NoData))
                .map_err(|e| e.to_string()),
        )
    };
    let (now, baseline) = futures_util::join!(now, baseline);
    ControlReading {
        now: now.map_err(|e| e.to_string()),
        baseline,
    }
}

/// Checks' probes in flight at once across every watch, at most (baseline, compare, traffic and
/// control queries are not counted: they are a few per observation or go with a probe): far
/// above what a healthy fleet needs
/// (20,000 probes a second answered in a few milliseconds keep about a hundred in flight),
/// and far below the ~28,000 ephemeral ports a host has towards one address (an ingress in
/// front of every service). Unbounded, a stall of backstop turned into a collapse: every
/// round came due at once, each probe that timed out dropped its connection, the pool opened
/// one per check, and connecting through a crowded port range took the CPU the rounds needed
/// (the scale benchmark past 5,000 watches, bench/RESULTS.md). The wait for a slot comes before
/// the request, so it is never the probe's time, and it excuses nothing: it shows in the
/// rounds' jitter (and, when backstop is overloaded, in `backstop_scheduler_lag_seconds`).
pub const MAX_PROBES_IN_FLIGHT: usize = 2048;

/// The semaphore behind [`MAX_PROBES_IN_FLIGHT`], shared by every actor.
#[derive(Debug, Clone)]
pub struct ProbeGate(std::sync::Arc<tokio::sync::Semaphore>);

impl Default for ProbeGate {
    fn default() -> Self {
        ProbeGate(std::sync::Arc::new(tokio::sync::Semaphore::new(
            MAX_PROBES_IN_FLIGHT,
        )))
    }
}

/// The probe's own timeout (scrape checks: the collector's).
fn probe_timeout(p: &Probe) -> Duration {
    match p {
        Probe::Http { timeout, .. } | Probe::Prometheus { timeout, .. } => *timeout,
        Probe::Scrape(s) => s.timeout,
        Probe::Alert(a) => a.timeout,
        Probe::Slo(s) => s.timeout,
    }
}
