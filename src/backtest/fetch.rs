//! The I/O of a replay: every replayed check's history around one deployment, in a few range
//! queries per check, all at once. What they mean round by round is [`super::sample`]'s.
//!
//! A prometheus check's query is evaluated every `fast_interval` (the watch's finest cadence)
//! from where judging starts to just past the window; `min_traffic` and `control_query`
//! alike; `compare`'s post-deployment query at its `step` from where the live check starts
//! them. The baselines (the check's, the control's, `compare`'s pre-deployment samples) are
//! fetched by the same functions the daemon uses. An alert check reads the `ALERTS` series
//! matching its labels from shortly before the deployment.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::checks::{replayable, Replayed};
use super::sample::{AlertHistory, CompareHistory, Grid, History, PromHistory};
use crate::checks::prometheus::{self, RangeSeries};
use crate::checks::{self, CompareSide, ProbeError};
use crate::config::{CheckConfig, Probe, TrafficSource, WatchConfig};

/// Steps asked for in one range query, under Prometheus' limit of 11,000 points per series.
const MAX_STEPS: u32 = 10_000;

/// The shortest timeout of a range query: the checks' own are meant for one instant query,
/// a range over a whole window takes the server longer.
const MIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long before the deployment an alert check's series are read, so that an alert active
/// since before the deployment is seen as such.
const ALERT_LEAD: Duration = Duration::from_secs(60);

/// The times that bound one deployment's replay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub deployed_at: DateTime<Utc>,
    /// Where judging starts (after `warmup`): the first round, and the grids' origin.
    pub judging_from: DateTime<Utc>,
    /// Just past the last round (the end of the window and two intervals).
    pub end: DateTime<Utc>,
}

impl Span {
    pub fn of(watch: &WatchConfig, deployed_at: DateTime<Utc>) -> Span {
        let judging_from = at(deployed_at, watch.warmup);
        Span {
            deployed_at,
            judging_from,
            end: at(
                at(judging_from, watch.window),
                watch.interval.saturating_mul(2),
            ),
        }
    }
}

/// `t + d`, saturating: no configured duration can make a replay panic.
fn at(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    crate::deployer::octopus::protocol::at(t, d)
}

fn dur(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Every replayed check's history around the deployment, by check name, in the watch's order.
pub async fn histories(
    http: &reqwest::Client,
    watch: &WatchConfig,
    span: Span,
) -> Vec<(String, History)> {
    let all = futures_util::future::join_all(watch.checks.iter().map(|c| async move {
        history(http, watch, c, span)
            .await
            .map(|h| (c.name.clone(), h))
    }))
    .await;
    all.into_iter().flatten().collect()
}

/// One check's history; `None` for a check that is not replayed.
async fn history(
    http: &reqwest::Client,
    watch: &WatchConfig,
    c: &CheckConfig,
    span: Span,
) -> Option<History> {
    let fast = watch.fast_interval;
    match (replayable(&c.probe).ok()?, &c.probe) {
        (
            Replayed::Prometheus,
            Probe::Prometheus {
                url,
                query,
                timeout,
                lookback,
                ..
            },
        ) => {
            let timeout = (*timeout).max(MIN_TIMEOUT);
            let grid = |url: String, query: String| async move {
                fetch_grid(
                    http,
                    &url,
                    &query,
                    span.judging_from,
                    span.end,
                    fast,
                    timeout,
                )
                .await
            };
            let reading = grid(url.clone(), query.clone());
            let traffic = async {
                match c.min_traffic.as_ref().map(|m| &m.source) {
                    Some(TrafficSource::Query(q)) => Some(grid(url.clone(), q.clone()).await),
                    _ => None,
                }
            };
            let baseline = async {
                let needed = c.control.is_some() || c.rules.iter().any(|r| r.needs_baseline());
                if !needed {
                    return None;
                }
                Some(
                    checks::baseline(http, &c.probe, span.deployed_at, None)
                        .await
                        .map_err(|e| e.to_string()),
                )
            };
            let control = async {
                let ctl = c.control.as_ref()?;
                let now = grid(ctl.url.clone(), ctl.query.clone());
                let base = async {
                    prometheus::range(
                        http,
                        &ctl.url,
                        &ctl.query,
                        span.deployed_at,
                        ctl.baseline_window,
                        ctl.timeout,
                    )
                    .await
                    .and_then(|v| crate::judge::baseline::mean(&v).ok_or(ProbeError::NoData))
                    .map_err(|e| e.to_string())
                };
                Some(futures_util::join!(now, base))
            };
            let compare = async {
                let cmp = c.compare?;
                // As the live check: post samples start when judging does, and once the
                // query's look-back has left the deployment behind.
                let from = span.judging_from.max(at(span.deployed_at, *lookback));
                let pre = checks::compare_samples(
                    http,
                    &c.probe,
                    cmp.step,
                    None,
                    CompareSide::Pre {
                        until: span.deployed_at,
                    },
                );
                let post = fetch_grid(http, url, query, from, span.end, cmp.step, timeout);
                let (pre, post) = futures_util::join!(pre, post);
                Some(CompareHistory {
                    pre: pre.map_err(|e| e.to_string()),
                    post,
                    from,
                    cap: cmp.step * crate::judge::compare::MAX_SAMPLES as u32,
                })
            };
            let (reading, traffic, baseline, control, compare) =
                futures_util::join!(reading, traffic, baseline, control, compare);
            Some(History::Prometheus(Box::new(PromHistory {
                reading,
                baseline,
                compare,
                traffic,
                control,
            })))
        }
        (Replayed::Alerts, Probe::Alert(a)) => {
            // On the rounds' grid, extended back past the deployment.
            let lead = span.judging_from - span.deployed_at + dur(ALERT_LEAD);
            let steps = (lead.num_milliseconds() as f64 / fast.as_millis().max(1) as f64).ceil();
            let start = span.judging_from - dur(fast.mul_f64(steps));
            let query = alerts_query(&a.labels);
            let timeout = a.timeout.max(MIN_TIMEOUT);
            Some(History::Alerts(AlertHistory {
                grid: fetch_grid(http, &a.url, &query, start, span.end, fast, timeout).await,
                labels: a.labels.clone(),
                include_silenced: a.include_silenced,
                deployed_at: span.deployed_at,
            }))
        }
        _ => None,
    }
}

/// `ALERTS{name="value",...}`: the series Prometheus keeps of its alerts, pending and firing.
pub fn alerts_query(labels: &BTreeMap<String, String>) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("ALERTS{{{}}}", matchers.join(","))
}

type Labels = BTreeMap<String, String>;

/// `query` every `step` from `start` to `end`, in as many range queries as the server's point
/// limit needs, series joined by their labels.
/// Steps one query may take in one deployment's replay: a day at 1 s is 86,400; a year's
/// window at 1 s would hold 31 million points a series in memory.
const MAX_GRID_POINTS: u128 = 1_000_000;

/// Why a replay was not even asked of Prometheus.
fn prometheus_refused(message: String) -> ProbeError {
    ProbeError::Api {
        error_type: "backtest".into(),
        message,
    }
}

async fn fetch_grid(
    http: &reqwest::Client,
    url: &str,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
    timeout: Duration,
) -> Grid {
    let step = step.max(Duration::from_millis(1));
    let points = (end - start).num_milliseconds().max(0) as u128 / step.as_millis().max(1);
    if points > MAX_GRID_POINTS {
        return Grid {
            start,
            step,
            series: Err(prometheus_refused(format!(
                "{points} steps of {} in one deployment's replay (at most {MAX_GRID_POINTS}): shorten the watch's window or raise its fast_interval",
                humantime::format_duration(step)
            ))),
        };
    }
    let mut joined: BTreeMap<Labels, Vec<(DateTime<Utc>, f64)>> = BTreeMap::new();
    let mut failed = None;
    for (from, to) in chunks(start, end, step) {
        match prometheus::range_series(http, url, query, from, to, step, timeout).await {
            Ok(found) => {
                for s in found {
                    joined.entry(s.labels).or_default().extend(s.points);
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    let series = match failed {
        Some(e) => Err(e),
        None => Ok(joined
            .into_iter()
            .map(|(labels, points)| RangeSeries { labels, points })
            .collect()),
    };
    Grid {
        start,
        step,
        series,
    }
}

/// The spans of the range queries that evaluate every `step` from `start` to `end`: at most
/// [`MAX_STEPS`] points each, each starting one step after the last one ended.
fn chunks(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut from = start;
    while from <= end {
        let to = at(from, step.saturating_mul(MAX_STEPS - 1)).min(end);
        out.push((from, to));
        if to >= end {
            break;
        }
        from = at(to, step);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ranges_are_split_on_the_grid_under_the_point_limit() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = |secs: i64| t0 + chrono::Duration::seconds(secs);
        let step = Duration::from_secs(1);
        assert_eq!(chunks(s(0), s(100), step), vec![(s(0), s(100))]);
        assert_eq!(
            chunks(s(0), s(25_000), step),
            vec![
                (s(0), s(9_999)),
                (s(10_000), s(19_999)),
                (s(20_000), s(25_000))
            ]
        );
        assert!(chunks(s(10), s(0), step).is_empty());
        // Saturated at the end of time: it still ends.
        let end = DateTime::<Utc>::MAX_UTC;
        assert_eq!(chunks(end, end, Duration::MAX).len(), 1);
    }

    #[test]
    fn alert_queries_match_every_label_with_values_escaped() {
        let labels: BTreeMap<String, String> = [
            ("service".to_string(), "shop".to_string()),
            ("severity".to_string(), "pa\"ge\\".to_string()),
        ]
        .into();
        assert_eq!(
            alerts_query(&labels),
            r#"ALERTS{service="shop",severity="pa\"ge\\"}"#
        );
    }

    #[test]
    fn a_span_runs_from_the_deployment_past_the_window() {
        let w = crate::engine::lifecycle::test_config("");
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let s = Span::of(&w, at);
        assert_eq!(s.judging_from, at, "warmup 0s");
        assert_eq!(
            s.end,
            at + chrono::Duration::seconds(12),
            "window 10s + 2 × 1s"
        );
    }

    #[tokio::test]
    async fn a_replay_too_long_for_memory_is_refused_before_any_query() {
        let start = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let end = start + chrono::Duration::days(365);
        // Nothing listens on port 1: an attempted query would be "unreachable", not this.
        let g = fetch_grid(
            &reqwest::Client::new(),
            "http://127.0.0.1:1",
            "up",
            start,
            end,
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .await;
        let e = g.series.unwrap_err().to_string();
        assert!(
            e.contains("31536000 steps") && e.contains("fast_interval"),
            "{e}"
        );
    }
}
