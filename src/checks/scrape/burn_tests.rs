//! Counting an slo's good and total events over its burn windows from scrape history.

use super::super::maths::History;
use super::super::parse::parse;
use super::super::Collector;
use super::*;
use crate::config::{LabelMatch, ScrapeMode, SeriesSelector, WatchConfig};
use crate::judge::burn::{judge, windows, BurnVerdict};

/// Seconds after the epoch.
fn t(secs: f64) -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH + chrono::Duration::milliseconds((secs * 1000.0) as i64)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// good = `http_requests_total{code!~"5.."}`, total = `http_requests_total`, recorded as the
/// collector of an slo check records them.
fn mode() -> ScrapeMode {
    let all = SeriesSelector {
        metric: "http_requests_total".into(),
        labels: Default::default(),
    };
    let mut good = all.clone();
    good.labels.insert(
        "code".into(),
        LabelMatch::NotRe(LabelMatch::anchored("5..").unwrap()),
    );
    ScrapeMode::Ratio {
        numerator: good,
        denominator: all,
    }
}

/// The app's counters: `ok` requests answered 200 and `bad` answered 503 (the 503 series
/// absent while `None`, as client libraries create it on its first increment).
fn exposition(ok: f64, bad: Option<f64>) -> String {
    let mut s = format!("http_requests_total{{code=\"200\"}} {ok}\n");
    if let Some(bad) = bad {
        s += &format!("http_requests_total{{code=\"503\"}} {bad}\n");
    }
    s
}

/// One scrape: when, and the `ok` and `bad` counters (`None`: the scrape failed).
type Scrape = (f64, Option<(f64, Option<f64>)>);

/// A history of scrapes.
fn history(scrapes: &[Scrape]) -> Vec<Point> {
    let mode = mode();
    let mut h = History::new(1000);
    for &(at, counters) in scrapes {
        let exp = counters.map(|(ok, bad)| parse(&exposition(ok, bad)).unwrap());
        let scrape = exp
            .as_ref()
            .ok_or_else(|| ScrapeError::Failed("HTTP 503".into()));
        h.record(t(at), scrape, &selections(&mode));
    }
    h.points().to_vec()
}

/// Scrapes every `every` seconds from 0 to `until`: 100 requests a second, `errors_per_sec`
/// of them 503s.
fn steady(until: f64, every: f64, errors_per_sec: f64) -> Vec<Point> {
    let scrapes: Vec<_> = (0..)
        .map(|i| i as f64 * every)
        .take_while(|at| *at <= until)
        .map(|at| {
            let bad = errors_per_sec * at;
            (at, Some((100.0 * at - bad, Some(bad))))
        })
        .collect();
    history(&scrapes)
}

fn pair(c: WindowCounts) -> (f64, f64) {
    (c.good, c.total)
}

#[test]
fn each_window_counts_from_the_newest_scrape_at_or_before_its_start() {
    let points = steady(240.0, 1.0, 2.0);
    // 4 minutes of 100 requests a second: 24,000 events, 480 of them bad.
    let long = counts(&points, secs(240)).unwrap();
    assert_eq!(long.window_secs, 240);
    assert_eq!(pair(long), (23_520.0, 24_000.0));
    let short = counts(&points, secs(20)).unwrap();
    assert_eq!(pair(short), (1960.0, 2000.0));
}

#[test]
fn a_window_shorter_than_the_scrape_period_spans_the_last_two_scrapes() {
    let points = steady(30.0, 2.0, 0.0);
    // Scrapes at 26, 28, 30: a 1s window has one scrape in it, and is rounded out to two.
    assert_eq!(pair(counts(&points, secs(1)).unwrap()), (200.0, 200.0));
    // 3s from 30 is 27: from the scrape at 26.
    assert_eq!(pair(counts(&points, secs(3)).unwrap()), (400.0, 400.0));
    // Exactly on a scrape: from that scrape.
    assert_eq!(pair(counts(&points, secs(4)).unwrap()), (400.0, 400.0));
}

#[test]
fn a_window_reaching_before_the_first_scrape_counts_from_it_and_not_its_own_increase() {
    // The previous release failed every request until 10s; the deployment is at 10s and the
    // caller passes the scrapes from it on. The first one's increase (5 to 10s, all bad) is
    // the previous release's and is not counted, however long the window.
    let mut scrapes = vec![
        (0.0, Some((0.0, Some(0.0)))),
        (5.0, Some((0.0, Some(500.0)))),
    ];
    scrapes.extend((0..=10).map(|i| {
        let at = 10.0 + i as f64;
        (at, Some((100.0 * i as f64, Some(1000.0))))
    }));
    let all = history(&scrapes);
    let since: Vec<Point> = all.iter().filter(|p| p.at >= t(10.0)).cloned().collect();
    assert_eq!(pair(counts(&since, secs(3600)).unwrap()), (1000.0, 1000.0));
    // Unclipped, the same window would blame the release for the old errors.
    assert_eq!(pair(counts(&all, secs(3600)).unwrap()), (1000.0, 2000.0));
}

#[test]
fn counter_resets_and_late_series_count_as_in_ratio_mode() {
    let points = history(&[
        (0.0, Some((1000.0, None))),
        (1.0, Some((1100.0, None))),
        // The 503 series appears: it counts from its first value (the 7 before are unseen).
        (2.0, Some((1200.0, Some(7.0)))),
        (3.0, Some((1300.0, Some(17.0)))),
        // The process restarted: both counters start again; the increase is the new value.
        (4.0, Some((50.0, Some(5.0)))),
        (5.0, Some((150.0, Some(5.0)))),
    ]);
    let c = counts(&points, secs(10)).unwrap();
    // good: 100 + 100 + 100 + 50 + 100; bad: 0 + 10 + 5 + 0.
    assert_eq!(pair(c), (450.0, 465.0));
}

#[test]
fn a_failed_scrape_is_spanned_and_a_restart_of_backstop_is_not() {
    let points = history(&[
        (0.0, Some((0.0, Some(0.0)))),
        (1.0, Some((100.0, Some(0.0)))),
        (2.0, None),
        (3.0, Some((290.0, Some(10.0)))),
    ]);
    assert_eq!(pair(counts(&points, secs(1)).unwrap()), (190.0, 200.0));
    assert_eq!(pair(counts(&points, secs(10)).unwrap()), (290.0, 300.0));
    // After a restart of backstop the series snapshots are gone: the first scrape's increase
    // is unknown and no window reaches across it.
    let mut resumed = History::resume(1000, points);
    let mode = mode();
    let sels = selections(&mode);
    for (at, ok, bad) in [(10.0, 1000.0, 10.0), (11.0, 1090.0, 20.0)] {
        let exp = parse(&exposition(ok, Some(bad))).unwrap();
        resumed.record(t(at), Ok(&exp), &sels);
    }
    assert_eq!(
        pair(counts(resumed.points(), secs(3600)).unwrap()),
        (90.0, 100.0)
    );
    let one_after = &resumed.points()[..5];
    assert_eq!(
        counts(one_after, secs(3600)),
        Err(ScrapeError::TooFewScrapes(secs(3600)))
    );
}

fn selections(mode: &ScrapeMode) -> Vec<super::super::select::Selection<'_>> {
    super::super::select::selections(mode, None)
}

#[test]
fn too_few_scrapes_is_an_error_and_no_traffic_is_no_data() {
    assert_eq!(counts(&[], secs(60)), Err(ScrapeError::NotYet));
    let one = steady(0.0, 1.0, 0.0);
    assert_eq!(
        counts(&one, secs(60)),
        Err(ScrapeError::TooFewScrapes(secs(60)))
    );
    // Counters that do not move: a window with no events, which the judge calls no traffic.
    let quiet = history(&[(0.0, Some((5.0, None))), (1.0, Some((5.0, None)))]);
    let w = windows(secs(12), secs(3600)).unwrap();
    let r = reading(&quiet, t(1.0), secs(1), 0.999, w).unwrap();
    assert_eq!(pair(r.long), (0.0, 0.0));
    assert_eq!(
        judge(14.4, &r),
        BurnVerdict::NoTraffic("no traffic over 12s".into())
    );
}

#[test]
fn a_reading_needs_a_fresh_successful_newest_scrape() {
    let w = windows(secs(4), secs(3600)).unwrap();
    let points = steady(4.0, 1.0, 0.0);
    assert!(reading(&points, t(5.0), secs(1), 0.999, w).is_ok());
    assert_eq!(
        reading(&points, t(7.0), secs(1), 0.999, w),
        Err(ScrapeError::Stale(secs(3)))
    );
    let mut failed = history(&[(0.0, Some((0.0, None))), (1.0, Some((100.0, None)))]);
    failed.extend(history(&[(2.0, None)]));
    assert_eq!(
        reading(&failed, t(2.0), secs(1), 0.999, w),
        Err(ScrapeError::Failed("HTTP 503".into()))
    );
}

#[test]
fn a_fast_burn_over_both_windows_is_judged_too_fast() {
    // 4 minutes after the deployment, 2.35% errors all along: 23.5x the 0.1% budget.
    let points = steady(240.0, 2.0, 2.35);
    let w = windows(secs(240), secs(3600)).unwrap();
    let r = reading(&points, t(240.5), secs(2), 0.999, w).unwrap();
    let BurnVerdict::TooFast(text) = judge(14.4, &r) else {
        panic!("expected too fast: {r:?}");
    };
    assert_eq!(
        text,
        "burning the error budget 23.5x too fast (allowed 14.4x): 2.35% errors over 4m, 2.35% over 20s, objective 99.9%"
    );
    // A release that stopped failing 30s ago: the short window is clean, the sample passes.
    let mut scrapes: Vec<_> = (0..=105)
        .map(|i| {
            let at = i as f64 * 2.0;
            (at, Some((97.65 * at, Some(2.35 * at))))
        })
        .collect();
    scrapes.extend((1..=15).map(|i| {
        let at = 210.0 + i as f64 * 2.0;
        (
            at,
            Some((97.65 * 210.0 + 100.0 * (at - 210.0), Some(2.35 * 210.0))),
        )
    }));
    let recovered = history(&scrapes);
    let r = reading(&recovered, t(240.5), secs(2), 0.999, w).unwrap();
    assert_eq!(judge(14.4, &r), BurnVerdict::Within);
}

/// One watch with a scrape-counting slo check, a PromQL one and an http one.
fn slo_watch() -> WatchConfig {
    let toml = r#"
[deployers.d]
kind = "command"
argv = ["/bin/true"]
[[watch]]
name = "w"
deployer = "d"
warmup = "15s"
window = "10m"
[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"
[[watch.check]]
name = "scraped"
kind = "slo"
url = "http://app/metrics"
objective = 0.999
good = { metric = "http_requests_total", labels = { code = { not_regex = "5.." } } }
total = { metric = "http_requests_total" }
[[watch.check]]
name = "queried"
kind = "slo"
url = "http://prom:9090"
objective = 0.999
good = 'sum(increase(ok_total[$window]))'
total = 'sum(increase(all_total[$window]))'
"#;
    let dir = tempfile::tempdir().unwrap();
    let c = crate::config::load_str(toml, dir.path()).unwrap_or_else(|e| panic!("{e}"));
    (*c.watches[0]).clone()
}

#[test]
fn an_slo_check_counting_scraped_events_has_a_collector_of_its_two_counters() {
    let w = slo_watch();
    let kinds: Vec<bool> = w
        .checks
        .iter()
        .map(|c| super::super::collected(c, &w).is_some())
        .collect();
    assert_eq!(kinds, vec![false, true, false]);
    let (p, traffic) = super::super::collected(&w.checks[1], &w).unwrap();
    assert!(traffic.is_none());
    assert_eq!(p.url, "http://app/metrics");
    assert_eq!(p.baseline_window, None);
    // Its windows never outlast the observation: 10m15s, not the default hour.
    assert_eq!(p.rate_window, Duration::from_secs(615));
    // Recorded (and stored, and fingerprinted) as a ratio of the same selections is.
    assert_eq!(
        super::super::record::fingerprint(&p, None),
        r#"http://app/metrics http_requests_total{code!~"5.."} http_requests_total"#
    );
}

#[test]
fn an_slo_sample_counts_only_scrapes_since_the_deployment_and_sees_the_app_down() {
    let w = slo_watch();
    let (p, _) = super::super::collected(&w.checks[1], &w).unwrap();
    let collector = Collector::new(
        History::new(100),
        p,
        None,
        Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let start = Utc::now() - chrono::Duration::seconds(10);
    let at = |s: i64| start + chrono::Duration::seconds(s);
    // The previous release failed half its requests until 5s; the deployment is at 5s.
    for (s, ok, bad) in [
        (0, 0, 0),
        (4, 400, 400),
        (5, 500, 500),
        (6, 600, 500),
        (7, 700, 500),
    ] {
        let exp = parse(&format!(
            "http_requests_total{{code=\"200\"}} {ok}\nhttp_requests_total{{code=\"500\"}} {bad}\n"
        ))
        .unwrap();
        collector
            .lock()
            .record(at(s), Ok(&exp), &collector.selections());
    }
    let windows =
        crate::judge::burn::windows(Duration::from_secs(2), Duration::from_secs(3600)).unwrap();
    let r = collector.burn(at(7), at(5), 0.999, windows).unwrap();
    assert_eq!((r.long.good, r.long.total), (200.0, 200.0));
    assert_eq!(
        r.value(),
        0.0,
        "the previous release's errors are not this one's"
    );
    let down = ScrapeError::Unreachable {
        reason: "target unreachable: connection refused".into(),
        timed_out: false,
    };
    collector
        .lock()
        .record(at(8), Err(down), &collector.selections());
    let e = collector.burn(at(8), at(5), 0.999, windows).unwrap_err();
    assert_eq!(e.app_down(), Some(false), "{e}");
}
