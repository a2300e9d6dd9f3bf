//! `kind = "scrape"`: backstop reads a service's `/metrics` itself, without a Prometheus
//! server, and judges a gauge, a counter rate, a ratio of two counter rates, or a histogram
//! quantile ([`quantile`]).
//!
//! A rate needs successive scrapes and a baseline needs scrapes from *before* the deployment,
//! so each scrape check has a [`Collector`]: a task, started with the watch's actor and
//! cancelled with it, that scrapes every interval into a bounded [`maths::History`]. A round
//! reads the collector's newest value instead of doing I/O; the baseline is the mean over the
//! collector's own scrapes in the window before the deployment. A `min_traffic` counter is
//! recorded by the same collector, beside the mode's series, so the request rate and the
//! value judged come from the same scrapes. History lives in memory: after
//! a restart (or a config change to the watch) rates need `rate_window` and baselines
//! `baseline_window` of fresh scrapes before they can be computed (errors until then, never
//! failures).
//!
//! Parser: hand-written ([`parse`]), because no maintained crate fits. `prometheus-parse`
//! (0.2.5, Apache-2.0) splits labels on `,` and `=` without regard to quoting, so a label value
//! such as `path="/a,b"` is cut and invents a label (the fix, ccakes/prometheus-parse-rs#10,
//! has been open since 2024); it does not unescape values, silently drops lines it cannot
//! read, and folds histogram buckets into one value under the family name, so `x_bucket`
//! series cannot be selected by name. `openmetrics-parser` is LGPL-3.0, which does not sit
//! well in a statically linked Apache-2.0 binary shipped as a .deb. `prom_text_format_parser`
//! parses correctly but had one release (0.1.0, 2023), leaves escapes in label values and
//! brings old `derive_more`/`strum`/`winnow` versions. The text format is small and stable;
//! the parser here is about 200 lines, strict (a malformed line fails the scrape, as in
//! Prometheus) and unit-tested, escapes included.

mod maths;
mod parse;
mod quantile;
mod select;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use maths::{describe, ScrapeError};

use super::ProbeError;
use crate::config::{Probe, ScrapeProbe, SeriesSelector, TrafficSource, WatchConfig};
use crate::secret::redact_url;

/// Largest exposition read; a bigger one is a failed scrape, not an out-of-memory daemon.
const MAX_BODY: usize = 32 << 20;

/// Extra history kept beyond what the windows need, for deployments learned late (a slow
/// webhook, a poll) whose baseline window lies further back.
const SLACK: Duration = Duration::from_secs(300);

/// Hard bound on the points kept per check (a very short interval with long windows).
const MAX_POINTS: usize = 100_000;

/// Handle on the history one collector task keeps. Cheap to clone.
#[derive(Clone)]
pub struct Collector {
    history: Arc<Mutex<maths::History>>,
    probe: Arc<ScrapeProbe>,
    /// The check's `min_traffic` counter, recorded beside the mode's series.
    traffic: Option<Arc<SeriesSelector>>,
    interval: Duration,
}

/// Starts a collector for every scrape check of `watch` (`None` for other kinds), on
/// `tasks`; they stop when `cancel` fires.
pub fn start(
    watch: &WatchConfig,
    http: &reqwest::Client,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Vec<Option<Collector>> {
    watch
        .checks
        .iter()
        .map(|c| match &c.probe {
            Probe::Scrape(p) => {
                let keep = p.baseline_window.unwrap_or_default() + p.rate_window + watch.warmup;
                let collector = Collector {
                    history: Arc::new(Mutex::new(maths::History::new(capacity(
                        keep,
                        watch.interval,
                    )))),
                    probe: Arc::new(p.clone()),
                    traffic: c.min_traffic.as_ref().and_then(|m| match &m.source {
                        TrafficSource::Series(s) => Some(Arc::new(s.clone())),
                        TrafficSource::Query(_) => None,
                    }),
                    interval: watch.interval,
                };
                tasks.spawn(collect(
                    collector.clone(),
                    http.clone(),
                    cancel.clone(),
                    format!("{}/{}", watch.name, c.name),
                ));
                Some(collector)
            }
            _ => None,
        })
        .collect()
}

/// Points to keep so that `keep` (plus slack) of scrapes every `interval` fit.
fn capacity(keep: Duration, interval: Duration) -> usize {
    let n = (keep + SLACK).as_secs_f64() / interval.as_secs_f64().max(1e-3);
    (n.ceil() as usize + 2).min(MAX_POINTS)
}

impl Collector {
    fn lock(&self) -> std::sync::MutexGuard<'_, maths::History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What every scrape records.
    fn selections(&self) -> Vec<select::Selection<'_>> {
        select::selections(&self.probe.mode, self.traffic.as_deref())
    }

    /// The value judged now. Rates and ratios only use scrapes taken at or after `since` (the
    /// deployment): the previous release's traffic must not be judged as the new one's, which
    /// matters most for a rollback, observed right after the bad release.
    pub fn sample(&self, now: DateTime<Utc>, since: DateTime<Utc>) -> Result<f64, ProbeError> {
        let p = &self.probe;
        let mut h = self.lock();
        let points = h.points();
        let first = points.partition_point(|pt| pt.at < since);
        // The newest scrape found the application down: say so, whatever older scrapes hold.
        if let Some(Err(ScrapeError::Unreachable { reason, timed_out })) =
            points[first..].last().map(|p| &p.measures)
        {
            return Err(ProbeError::Scrape(ScrapeError::Unreachable {
                reason: reason.clone(),
                timed_out: *timed_out,
            }));
        }
        Ok(maths::current(
            &points[first..],
            now,
            self.interval,
            &p.mode,
            p.rate_window,
        )?)
    }

    /// The `min_traffic` request rate now (requests per second of the check's counter over
    /// `rate_window`), from scrapes taken at or after `since` like the value judged; `None`
    /// when the check has no `min_traffic` counter. Fewer than two scrapes since the
    /// deployment is an error: the traffic is unknown, not zero.
    pub fn traffic(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
    ) -> Option<Result<f64, ProbeError>> {
        self.traffic.as_ref()?;
        let p = &self.probe;
        let mut h = self.lock();
        let points = h.points();
        let first = points.partition_point(|pt| pt.at < since);
        Some(
            maths::traffic(
                &points[first..],
                now,
                self.interval,
                select::traffic_index(&p.mode),
                p.rate_window,
            )
            .map_err(ProbeError::from),
        )
    }

    /// The mean value over `baseline_window` before `deployed_at`; `Ok(None)` without one.
    pub fn baseline(&self, deployed_at: DateTime<Utc>) -> Result<Option<f64>, ProbeError> {
        let p = &self.probe;
        let Some(window) = p.baseline_window else {
            return Ok(None);
        };
        let from = deployed_at - chrono::Duration::from_std(window).unwrap_or_default();
        let mut h = self.lock();
        Ok(Some(maths::baseline(
            h.points(),
            from,
            deployed_at,
            &p.mode,
            p.rate_window,
        )?))
    }
}

/// The collector task: scrape every interval until cancelled. Logs when scraping starts and
/// stops failing, not every failure.
async fn collect(
    collector: Collector,
    http: reqwest::Client,
    cancel: CancellationToken,
    check: String,
) {
    let probe = collector.probe.clone();
    let selections = collector.selections();
    // Logged, so without the credentials the URL may carry.
    let shown_url = redact_url(&probe.url);
    let mut tick = tokio::time::interval(collector.interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut failing = false;
    let mut checked_names = false;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let at = Utc::now();
        let fetched = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            r = fetch(&http, &probe.url, probe.timeout) => r,
        };
        let exposition = fetched.and_then(|text| {
            parse::parse(&text)
                .map_err(|e| ScrapeError::Failed(format!("malformed exposition: {e}")))
        });
        match &exposition {
            Err(e) if !failing => {
                tracing::warn!(%check, url = %shown_url, error = %e, "scrape failing");
                failing = true;
            }
            Ok(_) if failing => {
                tracing::info!(%check, url = %shown_url, "scrape recovered");
                failing = false;
            }
            _ => {}
        }
        if let (Ok(exp), false) = (&exposition, checked_names) {
            checked_names = true;
            for s in selections
                .iter()
                .map(|s| s.selector)
                .filter(|s| !exp.knows(&s.metric))
            {
                tracing::warn!(%check, url = %shown_url, metric = %s.metric,
                    "metric not in the scrape: a counter counts as 0 until it appears, a gauge has no value");
            }
        }
        collector
            .lock()
            .record(at, exposition.as_ref().map_err(Clone::clone), &selections);
    }
    tracing::debug!(%check, "scrape collector stopped");
}

/// GETs the exposition as text (never protobuf), bounded in time and size.
async fn fetch(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<String, ScrapeError> {
    // No answer (refused, reset, no answer in time) is the application being down.
    let failed = |e: reqwest::Error| match ProbeError::from_reqwest(e, timeout) {
        ProbeError::Malformed(m) => ScrapeError::Failed(m),
        p => ScrapeError::Unreachable {
            timed_out: matches!(p, ProbeError::Timeout(_)),
            reason: p.to_string(),
        },
    };
    let mut resp = http
        .get(url)
        .header(
            reqwest::header::ACCEPT,
            "text/plain;version=0.0.4;q=1,*/*;q=0.1",
        )
        .timeout(timeout)
        .send()
        .await
        .map_err(failed)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(ScrapeError::Failed(format!("HTTP {}", status.as_u16())));
    }
    let protobuf = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("protobuf"));
    if protobuf {
        return Err(ScrapeError::Failed(
            "the endpoint answered in protobuf; only the text format is read".into(),
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ScrapeError::Failed(format!(
                "exposition larger than {} MiB",
                MAX_BODY >> 20
            )));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| ScrapeError::Failed("exposition is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use axum::http::header::{ACCEPT, CONTENT_TYPE};
    use axum::http::HeaderMap;
    use axum::routing::get;

    use super::*;
    use crate::config::ScrapeMode;

    #[test]
    fn capacity_covers_the_windows_and_is_bounded() {
        let c = capacity(Duration::from_secs(660), Duration::from_secs(10));
        assert_eq!(c, (660 + 300) / 10 + 2);
        assert_eq!(
            capacity(Duration::from_secs(3600), Duration::from_micros(1)),
            MAX_POINTS
        );
    }

    /// A `/metrics` endpoint whose counter grows by 10 per scrape, and failing neighbours.
    async fn serve() -> String {
        let count = Arc::new(AtomicU64::new(0));
        let router = axum::Router::new()
            .route(
                "/metrics",
                get(move |headers: HeaderMap| {
                    let count = count.clone();
                    async move {
                        let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
                        assert!(accept.is_some_and(|a| a.starts_with("text/plain")));
                        let n = count.fetch_add(10, Ordering::SeqCst) + 10;
                        format!("# TYPE c counter\nc_total{{code=\"200\"}} {n}\n")
                    }
                }),
            )
            .route(
                "/down",
                get(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "") }),
            )
            .route(
                "/proto",
                get(|| async { ([(CONTENT_TYPE, "application/vnd.google.protobuf")], "x") }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    "x 1\n"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        format!("http://{addr}")
    }

    #[tokio::test]
    async fn fetch_failures_are_scrape_errors() {
        let base = serve().await;
        let http = reqwest::Client::new();
        let t = Duration::from_millis(200);
        for (path, needle) in [
            ("/down", "scrape failed: HTTP 503"),
            ("/proto", "answered in protobuf"),
            ("/slow", "timed out after 200ms"),
        ] {
            let e = fetch(&http, &format!("{base}{path}"), t).await.unwrap_err();
            assert!(e.to_string().contains(needle), "{path}: {e}");
        }
        let closed = format!("http://127.0.0.1:{}/metrics", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        });
        let e = fetch(&http, &closed, t).await.unwrap_err();
        assert!(e.to_string().contains("target unreachable"), "{e}");
        // No answer is the application being down; a bad answer is not.
        assert!(
            matches!(
                e,
                ScrapeError::Unreachable {
                    timed_out: false,
                    ..
                }
            ),
            "{e:?}"
        );
        let slow = fetch(&http, &format!("{base}/slow"), t).await.unwrap_err();
        assert!(
            matches!(
                slow,
                ScrapeError::Unreachable {
                    timed_out: true,
                    ..
                }
            ),
            "{slow:?}"
        );
        let down = fetch(&http, &format!("{base}/down"), t).await.unwrap_err();
        assert!(matches!(down, ScrapeError::Failed(_)), "{down:?}");
    }

    #[test]
    fn a_sample_whose_newest_scrape_found_the_app_down_says_so() {
        let now = Utc::now();
        let collector = Collector {
            history: Arc::new(Mutex::new(maths::History::new(100))),
            probe: Arc::new(ScrapeProbe {
                url: "http://127.0.0.1:1/metrics".into(),
                timeout: Duration::from_millis(500),
                mode: ScrapeMode::Gauge(SeriesSelector {
                    metric: "g".into(),
                    labels: Default::default(),
                }),
                rate_window: Duration::from_secs(60),
                baseline_window: None,
            }),
            traffic: None,
            interval: Duration::from_secs(1),
        };
        let down = ScrapeError::Unreachable {
            reason: "target unreachable: connection refused".into(),
            timed_out: false,
        };
        collector
            .lock()
            .record(now, Err(down), &collector.selections());
        let e = collector
            .sample(now, now - chrono::Duration::seconds(1))
            .unwrap_err();
        assert_eq!(e.app_down(), Some(false), "{e}");
    }

    #[tokio::test]
    async fn the_collector_scrapes_every_interval_until_cancelled() {
        let base = serve().await;
        let collector = Collector {
            history: Arc::new(Mutex::new(maths::History::new(100))),
            probe: Arc::new(ScrapeProbe {
                url: format!("{base}/metrics"),
                timeout: Duration::from_millis(500),
                mode: ScrapeMode::Rate(SeriesSelector {
                    metric: "c_total".into(),
                    labels: [(
                        "code".to_string(),
                        crate::config::LabelMatch::Eq("200".into()),
                    )]
                    .into(),
                }),
                rate_window: Duration::from_secs(5),
                baseline_window: Some(Duration::from_secs(60)),
            }),
            traffic: Some(Arc::new(SeriesSelector {
                metric: "c_total".into(),
                labels: Default::default(),
            })),
            interval: Duration::from_millis(20),
        };
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(collect(
            collector.clone(),
            reqwest::Client::new(),
            cancel.clone(),
            "w/c".into(),
        ));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while collector.lock().points().len() < 5 {
            assert!(std::time::Instant::now() < deadline, "no scrapes recorded");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let rate = collector
            .sample(Utc::now(), DateTime::<Utc>::UNIX_EPOCH)
            .unwrap();
        assert!(rate > 0.0, "{rate}");
        let base = collector.baseline(Utc::now()).unwrap().unwrap();
        assert!(base > 0.0, "{base}");
        // The min_traffic counter is recorded by the same scrapes.
        let traffic = collector
            .traffic(Utc::now(), DateTime::<Utc>::UNIX_EPOCH)
            .expect("a traffic counter is configured")
            .unwrap();
        assert!(traffic > 0.0, "{traffic}");
        // Clipped to the deployment: none of these scrapes are after a deployment now.
        assert!(collector
            .traffic(Utc::now(), Utc::now() + chrono::Duration::seconds(1))
            .unwrap()
            .is_err());
        cancel.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(5), tasks.wait())
            .await
            .expect("the collector stops when cancelled");
    }
}
