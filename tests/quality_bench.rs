//! The detection-quality benchmark's Prometheus emulation and generator (`bench/quality/`),
//! checked where its figures depend on them: PromQL's `rate()` (extrapolation, counter resets,
//! fewer than two samples), `histogram_quantile`'s interpolation, and a generated healthy
//! service reading, through the emulated queries, what it was generated with. The benchmark
//! itself is a `harness = false` bench, never run by `cargo test`; these are milliseconds.

#[allow(dead_code)]
#[path = "../bench/quality/dist.rs"]
mod dist;
#[allow(dead_code)]
#[path = "../bench/quality/generate.rs"]
mod generate;
#[allow(dead_code)]
#[path = "../bench/quality/prom.rs"]
mod prom;
#[allow(dead_code)]
#[path = "../bench/quality/scenario.rs"]
mod scenario;

use prom::{histogram_quantile, rate, Prom, Query};

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[test]
fn rate_extrapolates_to_the_window_edges_like_prometheus() {
    // 1 request per second, scraped every 15 s; the window (−60, 0] holds four samples, 5 s
    // after its start and 10 s before its end: both gaps are extrapolated (under 1.1 × 15 s).
    let s = [
        (-55.0, 100.0),
        (-40.0, 115.0),
        (-25.0, 130.0),
        (-10.0, 145.0),
    ];
    assert!(close(rate(s.into_iter(), 0.0).unwrap(), 1.0));
    // A gap to the end of 20 s (over 1.1 intervals) is extrapolated by half an interval only.
    let s = [(-55.0, 100.0), (-40.0, 115.0), (-25.0, 130.0)];
    let r = rate(s.into_iter(), 5.0).unwrap();
    assert!(close(r, 30.0 * (30.0 + 0.0 + 7.5) / 30.0 / 60.0), "{r}");
    // Never extrapolated back past zero: a series that starts at 3 started ~3 s earlier.
    let s = [(-45.0, 3.0), (-30.0, 18.0), (-15.0, 33.0), (0.0, 48.0)];
    let r = rate(s.into_iter(), 0.0).unwrap();
    assert!(close(r, 45.0 * (45.0 + 3.0) / 45.0 / 60.0), "{r}");
}

#[test]
fn rate_counts_across_a_counter_reset_and_needs_two_samples() {
    // The process restarted between 115 and 5: the increase is 15 + 5 + 15.
    let s = [(-55.0, 100.0), (-40.0, 115.0), (-25.0, 5.0), (-10.0, 20.0)];
    assert!(close(
        rate(s.into_iter(), 0.0).unwrap(),
        35.0 * 60.0 / 45.0 / 60.0
    ));
    // NaN (a series absent from a scrape) is skipped; one sample left is no result.
    let s = [(-55.0, f64::NAN), (-10.0, 20.0)];
    assert_eq!(rate(s.into_iter(), 0.0), None);
}

#[test]
fn histogram_quantile_interpolates_in_its_bucket() {
    // le: 0.005 .. 10, +Inf; 10 observations up to 0.1 s, 10 more up to 0.25 s.
    let mut b = [0.0; generate::NB];
    for (k, v) in b.iter_mut().enumerate() {
        *v = match k {
            0..=3 => 0.0,
            4 => 10.0,
            _ => 20.0,
        };
    }
    // rank 18: 8 of the 10 in (0.1, 0.25].
    assert!(close(histogram_quantile(0.9, &b), 0.1 + 0.15 * 0.8));
    assert!(histogram_quantile(0.9, &[0.0; generate::NB]).is_nan());
    // Beyond the last finite bound: the highest finite bound.
    let mut tail = [0.0; generate::NB];
    tail[generate::NB - 1] = 5.0;
    assert!(close(histogram_quantile(0.5, &tail), 10.0));
}

#[test]
fn a_generated_healthy_service_reads_what_it_was_generated_with() {
    let mut r = dist::Rand::new(7);
    let mut svc = scenario::Service::draw(&mut r, scenario::Scenario::Good);
    svc.rate = 300.0;
    svc.diurnal = 0.0;
    svc.error_p = 0.01;
    let tel = generate::telemetry(&mut r, scenario::Scenario::Good, &svc);
    let mut p = Prom::new(&tel);
    // Ten minutes after the deployment: the new process's own data.
    let traffic = p.instant(Query::Traffic, 600.0).unwrap();
    assert!((traffic / 300.0 - 1.0).abs() < 0.1, "traffic {traffic}");
    let errors: Vec<f64> = p
        .range(Query::ErrorRatio, 300.0, 600.0, 60.0, 600.0)
        .unwrap();
    let mean = errors.iter().sum::<f64>() / errors.len() as f64;
    assert!((mean / 0.01 - 1.0).abs() < 0.2, "error ratio {mean}");
    let p90 = p.instant(Query::LatencyP90, 600.0).unwrap();
    let cdf = generate::BOUNDS.map(|b| {
        if b.is_finite() {
            svc.latency.cdf(b, 1.0)
        } else {
            1.0
        }
    });
    let nominal = histogram_quantile(0.9, &cdf);
    assert!((p90 / nominal - 1.0).abs() < 0.25, "p90 {p90} vs {nominal}");
    // Right after the deployment the old process's samples are still in the window; a minute
    // and a scrape later they are not (the look-back the lifecycle knows about).
    assert!(p.instant(Query::Traffic, 1.0).is_ok());
}

#[test]
fn or_vector_zero_reads_a_missing_5xx_series_as_no_errors() {
    let mut r = dist::Rand::new(11);
    let mut svc = scenario::Service::draw(&mut r, scenario::Scenario::Good);
    svc.rate = 50.0;
    svc.error_p = 0.0; // no error ever: the 5xx series is never created after the restart
    let tel = generate::telemetry(&mut r, scenario::Scenario::Good, &svc);
    let mut p = Prom::new(&tel);
    assert_eq!(
        p.instant(Query::ErrorRatio, 300.0),
        Err(prom::Failure::Empty)
    );
    assert_eq!(p.instant(Query::ErrorRatioOrZero, 300.0), Ok(0.0));
    assert_eq!(
        Query::parse(Query::ERROR_RATIO_OR_ZERO),
        Some(Query::ErrorRatioOrZero)
    );
}
