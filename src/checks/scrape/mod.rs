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
//! value judged come from the same scrapes.
//!
//! The history outlives the process ([`persist`]): each collector saves its recent points
//! (what the windows need, plus slack) to the store every [`persist::SAVE_EVERY`] (or every
//! interval, if longer) and when it stops, and a new collector of the same check continues
//! from them, so a deployment learned right after a restart or a reload (or found by polling,
//! from while backstop was down) still has its baseline. A crash loses at most the last save
//! period of scrapes. History is discarded when the check's endpoint or selectors change
//! ([`record::fingerprint`]), and deleted with the check or its watch. The per-series
//! snapshots are not saved: the first scrape after a restart has nothing to be differenced
//! against, so its increase is unknown, and rates start again from it instead of counting
//! the time backstop was down as no traffic (rates need two fresh scrapes; a baseline from
//! before the restart is unaffected).
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

mod burn;
mod maths;
/// Crate-visible for `crate::fuzzing`, which checks the parser against its renderer.
pub(crate) mod parse;
mod persist;
mod quantile;
mod record;
mod select;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use maths::{describe, ScrapeError};
pub use select::selector_text;

use super::ProbeError;
use crate::config::{
    CheckConfig, Probe, ScrapeMode, ScrapeProbe, SeriesSelector, SloEvents, TrafficSource,
    WatchConfig,
};
use crate::secret::redact_url;
use crate::store::Store;

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
    /// Scrape at this cadence while the watch samples fast (see [`Cadence`]).
    fast_interval: Duration,
    cadence: Arc<Cadence>,
}

/// Whether a collector scrapes at the watch's fast cadence. A round can only judge what was
/// scraped: while the watch samples every `fast_interval` (right after a deployment, and while
/// a failure is confirmed), a collector scraping every `interval` would have rounds judge the
/// same stale scrape several times, so one scrape could condemn a release on its own. Set by
/// the watch's actor; idle watches scrape at `interval` (the baseline does not need more).
#[derive(Debug, Default)]
pub struct Cadence {
    fast: std::sync::atomic::AtomicBool,
    /// Woken when the cadence turns fast: scrape at once (a deployment was just learned; its
    /// first rate needs a scrape at its start).
    wake: tokio::sync::Notify,
}

impl Cadence {
    fn is_fast(&self) -> bool {
        self.fast.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// The collectors of one watch, as started.
pub struct Collectors {
    /// Per check of the watch, in order, its collector (`None` for other kinds).
    pub list: Vec<Option<Collector>>,
    cancel: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Collectors {
    /// Stops the collectors and waits until they have saved their history: the next actor of
    /// the watch (a reload) resumes from it.
    pub async fn stop(self) {
        self.cancel.cancel();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts a collector for every check of `watch` that scrapes (see [`collected`]) on `tasks`,
/// each continuing from the history stored for it; they stop when `cancel` fires (or
/// [`Collectors::stop`]). Stored history of the watch's checks that are gone is deleted.
pub async fn start(
    watch: &WatchConfig,
    http: &reqwest::Client,
    store: &Store,
    tasks: &TaskTracker,
    cancel: &CancellationToken,
) -> Collectors {
    let cancel = cancel.child_token();
    let scraped: Vec<_> = watch.checks.iter().map(|c| collected(c, watch)).collect();
    let fingerprints: Vec<(String, String)> = watch
        .checks
        .iter()
        .zip(&scraped)
        .filter_map(|(c, s)| {
            let (p, traffic) = s.as_ref()?;
            Some((c.name.clone(), record::fingerprint(p, traffic.as_ref())))
        })
        .collect();
    let mut claimed = persist::claim(store, &watch.name, &fingerprints)
        .await
        .into_iter();
    let mut started = Collectors {
        list: Vec::new(),
        cancel: cancel.clone(),
        tasks: Vec::new(),
    };
    for (c, scraped) in watch.checks.iter().zip(scraped) {
        let Some((p, traffic)) = scraped else {
            started.list.push(None);
            continue;
        };
        let keep = horizon(&p, watch.warmup);
        let (history, saved) = persist::resume(
            claimed.next().flatten(),
            persist::Persist::new(
                store,
                &watch.name,
                &c.name,
                record::fingerprint(&p, traffic.as_ref()),
                keep,
            ),
            Utc::now(),
            capacity(
                keep,
                watch.interval,
                watch.window + watch.fast_for,
                watch.fast_interval,
            ),
        );
        let collector = Collector::new(history, p, traffic, watch.interval, watch.fast_interval);
        started.tasks.push(tasks.spawn(collect(
            collector.clone(),
            http.clone(),
            cancel.clone(),
            format!("{}/{}", watch.name, c.name),
            saved,
        )));
        started.list.push(Some(collector));
    }
    started
}

/// What a check's collector scrapes, and the `min_traffic` counter it records beside: a scrape
/// check's own settings, or an slo check's `good` and `total` selections. Those are recorded
/// as a ratio's numerator and denominator are (same selections, same differencing of
/// counters, same stored form), and their increases over the burn windows are read by
/// [`Collector::burn`]. The windows never reach before the deployment, and an observation
/// lasts at most `warmup + window`: that, capped at `long_window`, is the slo's `rate_window`
/// here, so its history keeps what its longest window can read.
fn collected(
    c: &CheckConfig,
    watch: &WatchConfig,
) -> Option<(ScrapeProbe, Option<SeriesSelector>)> {
    match &c.probe {
        Probe::Scrape(p) => {
            let traffic = c.min_traffic.as_ref().and_then(|m| match &m.source {
                TrafficSource::Series(s) => Some(s.clone()),
                TrafficSource::Query(_) => None,
            });
            Some((p.clone(), traffic))
        }
        Probe::Slo(s) => match &s.events {
            SloEvents::Scrape { good, total } => Some((
                ScrapeProbe {
                    url: s.url.clone(),
                    timeout: s.timeout,
                    mode: ScrapeMode::Ratio {
                        numerator: good.clone(),
                        denominator: total.clone(),
                    },
                    rate_window: s.long_window.min(watch.warmup + watch.window),
                    baseline_window: None,
                },
                None,
            )),
            SloEvents::Query { .. } => None,
        },
        Probe::Http { .. } | Probe::Prometheus { .. } | Probe::Alert(_) => None,
    }
}

/// How far back a check's scrapes are worth keeping: its windows, and slack for deployments
/// learned late.
fn horizon(p: &ScrapeProbe, warmup: Duration) -> Duration {
    p.baseline_window.unwrap_or_default() + p.rate_window + warmup + SLACK
}

/// Points to keep so that `keep` of scrapes every `interval` fit, plus a whole window and the
/// fast period at the fast cadence (a failure confirmed all through the window keeps it fast).
fn capacity(keep: Duration, interval: Duration, fast: Duration, fast_interval: Duration) -> usize {
    let count = |d: Duration, every: Duration| d.as_secs_f64() / every.as_secs_f64().max(1e-3);
    let n = count(keep, interval) + count(fast, fast_interval);
    (n.ceil() as usize + 2).min(MAX_POINTS)
}

impl Collector {
    fn new(
        history: maths::History,
        probe: ScrapeProbe,
        traffic: Option<SeriesSelector>,
        interval: Duration,
        fast_interval: Duration,
    ) -> Self {
        Collector {
            history: Arc::new(Mutex::new(history)),
            probe: Arc::new(probe),
            traffic: traffic.map(Arc::new),
            interval,
            fast_interval,
            cadence: Arc::default(),
        }
    }

    /// Scrape at the fast cadence (`true`) or at `interval`. Turning fast scrapes at once.
    pub fn set_fast(&self, fast: bool) {
        let was = self
            .cadence
            .fast
            .swap(fast, std::sync::atomic::Ordering::Relaxed);
        if fast && !was {
            self.cadence.wake.notify_one();
        }
    }

    /// The time between scrapes now.
    fn period(&self) -> Duration {
        if self.cadence.is_fast() {
            self.fast_interval
        } else {
            self.interval
        }
    }

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
        let points = since_deployment(h.points(), since)?;
        Ok(maths::current(
            points,
            now,
            self.period(),
            &p.mode,
            p.rate_window,
        )?)
    }

    /// An slo check's sample now: the good and total events of both `windows`, counted from
    /// the scrapes taken at or after `since` (the deployment) only, so no window ever counts
    /// the previous release's events. The newest scrape must be recent and successful, as
    /// for [`Collector::sample`]; one that found the application down says so.
    pub fn burn(
        &self,
        now: DateTime<Utc>,
        since: DateTime<Utc>,
        objective: f64,
        windows: crate::judge::burn::Windows,
    ) -> Result<crate::judge::burn::BurnReading, ProbeError> {
        let mut h = self.lock();
        let points = since_deployment(h.points(), since)?;
        Ok(burn::reading(
            points,
            now,
            self.period(),
            objective,
            windows,
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

    /// `compare`: the values at each scrape in `baseline_window` before `until`, oldest first.
    /// None at all is an error (backstop was not scraping before the deployment).
    pub fn compare_pre(&self, until: DateTime<Utc>) -> Result<Vec<f64>, ProbeError> {
        let p = &self.probe;
        let window = p.baseline_window.unwrap_or_default();
        let from = until - chrono::Duration::from_std(window).unwrap_or_default();
        let mut h = self.lock();
        let values = maths::values(h.points(), from, until, &p.mode, p.rate_window);
        if values.is_empty() {
            return Err(ProbeError::Scrape(ScrapeError::NoBaseline));
        }
        Ok(values)
    }

    /// `compare`: the values at each scrape from `from` to now, oldest first, computed from
    /// the scrapes since `since` (the deployment) only, as the value judged is: a rate never
    /// mixes the previous release's counters into the new one's.
    pub fn compare_post(&self, since: DateTime<Utc>, from: DateTime<Utc>) -> Vec<f64> {
        let p = &self.probe;
        let mut h = self.lock();
        let points = h.points();
        let first = points.partition_point(|pt| pt.at < since);
        maths::values(
            &points[first..],
            from,
            DateTime::<Utc>::MAX_UTC,
            &p.mode,
            p.rate_window,
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

    /// The values behind [`Self::baseline`] with their scrape times, over the same window
    /// (finite ones: the evidence's chart); `None` without a baseline window.
    pub fn baseline_points(
        &self,
        deployed_at: DateTime<Utc>,
    ) -> Option<crate::model::BeforeSeries> {
        let p = &self.probe;
        let window = p.baseline_window?;
        let from = deployed_at - chrono::Duration::from_std(window).unwrap_or_default();
        let mut h = self.lock();
        let points = maths::timed_values(h.points(), from, deployed_at, &p.mode, p.rate_window)
            .into_iter()
            .filter(|(_, v)| v.is_finite())
            .collect();
        Some(crate::model::BeforeSeries {
            from,
            to: deployed_at,
            points,
        })
    }
}

/// The points taken at or after `since`; an error when the newest of them found the
/// application down (say so, whatever older scrapes hold).
fn since_deployment(
    points: &[maths::Point],
    since: DateTime<Utc>,
) -> Result<&[maths::Point], ProbeError> {
    let points = &points[points.partition_point(|pt| pt.at < since)..];
    if let Some(Err(e @ ScrapeError::Unreachable { .. })) = points.last().map(|p| &p.measures) {
        return Err(ProbeError::Scrape(e.clone()));
    }
    Ok(points)
}

/// The collector task: scrape every interval until cancelled, saving the history (when
/// `saved` says where) every save period with new scrapes and once more when stopping. Logs
/// when scraping starts and stops failing, not every failure.
async fn collect(
    collector: Collector,
    http: reqwest::Client,
    cancel: CancellationToken,
    check: String,
    saved: Option<Arc<persist::Persist>>,
) {
    let probe = collector.probe.clone();
    let selections = collector.selections();
    // Logged, so without the credentials the URL may carry.
    let shown_url = redact_url(&probe.url);
    // The first scrape at once, then every period (which the watch may change meanwhile).
    let mut next = tokio::time::Instant::now();
    let every = collector.interval.max(persist::SAVE_EVERY);
    let mut save_tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    save_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut unsaved = false;
    let mut failing = false;
    let mut checked_names = false;
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = save_tick.tick() => {
                if let (true, Some(p)) = (unsaved, &saved) {
                    unsaved = !persist::save(&collector, p).await;
                }
                continue;
            }
            _ = tokio::time::sleep_until(next) => {}
            _ = collector.cadence.wake.notified() => {}
        }
        let started = tokio::time::Instant::now();
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
        unsaved = true;
        // On the schedule, not after the scrape: a slow endpoint does not stretch the period.
        next = (started + collector.period()).max(tokio::time::Instant::now());
    }
    if let (true, Some(p)) = (unsaved, &saved) {
        persist::save(&collector, p).await;
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

    #[test]
    fn capacity_covers_the_windows_and_is_bounded() {
        let probe = ScrapeProbe {
            url: "http://127.0.0.1:1/metrics".into(),
            timeout: Duration::from_secs(1),
            mode: ScrapeMode::Rate(SeriesSelector {
                metric: "c".into(),
                labels: Default::default(),
            }),
            rate_window: Duration::from_secs(60),
            baseline_window: Some(Duration::from_secs(600)),
        };
        let keep = horizon(&probe, Duration::ZERO);
        assert_eq!(keep, Duration::from_secs(600 + 60 + 300));
        let c = capacity(
            keep,
            Duration::from_secs(10),
            Duration::ZERO,
            Duration::from_secs(2),
        );
        assert_eq!(c, (660 + 300) / 10 + 2);
        let with_fast = capacity(
            keep,
            Duration::from_secs(10),
            Duration::from_secs(720),
            Duration::from_secs(2),
        );
        assert_eq!(with_fast, (660 + 300) / 10 + 720 / 2 + 2);
        assert_eq!(
            capacity(
                Duration::from_secs(3600),
                Duration::from_micros(1),
                Duration::ZERO,
                Duration::from_secs(1)
            ),
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
        let collector = Collector::new(
            maths::History::new(100),
            ScrapeProbe {
                url: "http://127.0.0.1:1/metrics".into(),
                timeout: Duration::from_millis(500),
                mode: ScrapeMode::Gauge(SeriesSelector {
                    metric: "g".into(),
                    labels: Default::default(),
                }),
                rate_window: Duration::from_secs(60),
                baseline_window: None,
            },
            None,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
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
    async fn turning_fast_scrapes_at_once_and_then_at_the_fast_interval() {
        let base = serve().await;
        let collector = Collector::new(
            maths::History::new(100),
            ScrapeProbe {
                url: format!("{base}/metrics"),
                timeout: Duration::from_millis(500),
                mode: ScrapeMode::Gauge(SeriesSelector {
                    metric: "c_total".into(),
                    labels: Default::default(),
                }),
                rate_window: Duration::from_secs(60),
                baseline_window: None,
            },
            None,
            // An hour at the normal cadence: any second scrape is the fast cadence's.
            Duration::from_secs(3600),
            Duration::from_millis(20),
        );
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(collect(
            collector.clone(),
            reqwest::Client::new(),
            cancel.clone(),
            "w/c".into(),
            None,
        ));
        let wait = |n: usize| {
            let collector = collector.clone();
            async move {
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                while collector.lock().points().len() < n {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "fewer than {n} scrapes"
                    );
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        wait(1).await; // the first scrape is at once
        collector.set_fast(true);
        wait(5).await;
        collector.set_fast(false);
        let n = collector.lock().points().len();
        // Back to the normal cadence: at most the scrape in flight is added.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(collector.lock().points().len() <= n + 1);
        cancel.cancel();
        tasks.close();
        tasks.wait().await;
    }

    #[tokio::test]
    async fn the_collector_scrapes_every_interval_until_cancelled() {
        let base = serve().await;
        let collector = Collector::new(
            maths::History::new(100),
            ScrapeProbe {
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
            },
            Some(SeriesSelector {
                metric: "c_total".into(),
                labels: Default::default(),
            }),
            Duration::from_millis(20),
            Duration::from_millis(20),
        );
        let store = Store::in_memory().unwrap();
        let claimed = persist::claim(
            &store,
            "w",
            &[("c".into(), record::fingerprint(&collector.probe, None))],
        )
        .await;
        let keep = Duration::from_secs(60);
        let saved = persist::Persist::new(
            &store,
            "w",
            "c",
            record::fingerprint(&collector.probe, None),
            keep,
        );
        let (_, saved) = persist::resume(claimed[0].clone(), saved, Utc::now(), 100);
        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(collect(
            collector.clone(),
            reqwest::Client::new(),
            cancel.clone(),
            "w/c".into(),
            saved,
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
        // Stopping saved every scrape (the save period is far off).
        let again = persist::claim(
            &store,
            "w",
            &[("c".into(), record::fingerprint(&collector.probe, None))],
        )
        .await;
        let Some(crate::store::Claimed::Found(text)) = &again[0] else {
            panic!("nothing saved: {again:?}");
        };
        let stored = record::decode(text).unwrap();
        assert_eq!(stored.len(), collector.lock().points().len());
    }
}
