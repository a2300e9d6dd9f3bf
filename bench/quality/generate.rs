//! The telemetry of one deployment as a real Prometheus would hold it: per instance, the
//! scrapes of `http_requests_total` (all codes, and 5xx) and of the request-duration
//! histogram, every 15 s at the target's own offset, with jitter and lost scrapes.
//!
//! The deployment is in place, as Octopus does it on hosts: at t = 0 the old process stops and
//! the new one starts on the same instance (same series, counters back to zero: a counter
//! reset). The load balancer routes to an instance only once its `/health` passes, so requests
//! made while the new release warms up never reach it (nor its metrics). Series are created
//! when first incremented, as client libraries do with labelled counters: after a restart the
//! 5xx series exists only from the instance's first error, and a quiet service has none.

use crate::dist::Rand;
use crate::scenario::{effect, Outage, Scenario, Service, Signal, Start, AFTER, BEFORE, INSTANCES};

/// Upper bounds of the histogram's buckets (Prometheus' client default), `+Inf` last.
pub const BOUNDS: [f64; 12] = [
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    f64::INFINITY,
];
pub const NB: usize = BOUNDS.len();

/// Prometheus' scrape interval (the shipped `prometheus.yml`).
pub const SCRAPE_EVERY: f64 = 15.0;

/// Traffic is drawn in slices this long (so blips and ramps shape it).
const SLICE: f64 = 5.0;

/// One successful scrape of one instance. A series absent from it is NaN (not created yet).
#[derive(Debug, Clone)]
pub struct Scrape {
    pub t: f64,
    pub requests: f64,
    pub errors: f64,
    /// Cumulative bucket counts (`le`), present with `requests`.
    pub buckets: [f64; NB],
}

/// The scrapes of every instance, oldest first, and the outage Prometheus itself suffers.
#[derive(Debug, Clone)]
pub struct Telemetry {
    pub series: Vec<Vec<Scrape>>,
    pub outage: Option<Outage>,
}

/// One process's counters.
#[derive(Clone)]
struct Counters {
    requests: f64,
    errors: f64,
    buckets: [f64; NB],
    /// Series created yet (requests and buckets together; errors on the first error).
    has_requests: bool,
    has_errors: bool,
}

impl Counters {
    /// A process that has run for a while (days): every series exists, with large values.
    fn running(r: &mut Rand, rate: f64) -> Self {
        let requests = (rate * r.uniform(3_600.0, 7.0 * 86_400.0)).round();
        Counters {
            requests,
            errors: (requests * 0.005).round() + 1.0,
            buckets: [requests; NB],
            has_requests: true,
            has_errors: true,
        }
    }

    fn fresh() -> Self {
        Counters {
            requests: 0.0,
            errors: 0.0,
            buckets: [0.0; NB],
            has_requests: false,
            has_errors: false,
        }
    }

    fn scrape(&self, t: f64) -> Scrape {
        let absent = |present: bool, v: f64| if present { v } else { f64::NAN };
        Scrape {
            t,
            requests: absent(self.has_requests, self.requests),
            errors: absent(self.has_errors, self.errors),
            buckets: self.buckets.map(|v| absent(self.has_requests, v)),
        }
    }
}

/// Generates the telemetry of a deployment of `scenario` to `svc`.
pub fn telemetry(r: &mut Rand, scenario: Scenario, svc: &Service) -> Telemetry {
    let series = (0..INSTANCES)
        .map(|i| instance(r, scenario, svc, i))
        .collect();
    Telemetry {
        series,
        outage: svc.outage,
    }
}

fn instance(r: &mut Rand, scenario: Scenario, svc: &Service, i: usize) -> Vec<Scrape> {
    // The old process's counters are large (rates are differences: their values do not matter).
    let mut old = Counters::running(r, svc.rate * svc.shares[i]);
    let mut new = Counters::fresh();
    let (up, ready) = match svc.start {
        Start::Up { up, ready } => (Some(up), Some(ready)),
        Start::Dead => (None, None),
    };
    let scrapes_lost =
        |t: f64| matches!(svc.outage, Some(Outage::Scrapes { from, to }) if t >= from && t < to);
    let mut out = Vec::new();
    let first = (-BEFORE / SCRAPE_EVERY).floor() * SCRAPE_EVERY + svc.scrape_phase[i];
    let mut last = first - SCRAPE_EVERY;
    let mut k = 0.0;
    loop {
        let at = first + k * SCRAPE_EVERY + 0.1 * r.normal();
        k += 1.0;
        if at > AFTER {
            break;
        }
        // Traffic since the previous scrape, cut where the serving process changes.
        let mut cuts = vec![last, at];
        cuts.extend(
            [0.0, ready.unwrap_or(f64::INFINITY)]
                .iter()
                .filter(|c| **c > last && **c < at),
        );
        cuts.sort_by(f64::total_cmp);
        for w in cuts.windows(2) {
            let (a, b) = (w[0], w[1]);
            let serving = if b <= 0.0 {
                Some(&mut old)
            } else if ready.is_some_and(|ready| a >= ready) {
                Some(&mut new)
            } else {
                None
            };
            if let Some(c) = serving {
                traffic(r, scenario, svc, i, a, b, c);
            }
        }
        last = at;
        let process = if at < 0.0 {
            Some(&old)
        } else if up.is_some_and(|up| at >= up) {
            Some(&new)
        } else {
            None // no process answers the scrape
        };
        if let Some(c) = process {
            if !r.chance(svc.scrape_miss) && !scrapes_lost(at) {
                out.push(c.scrape(at));
            }
        }
    }
    out
}

/// Adds the requests served by `c` on `instance` between `a` and `b`.
fn traffic(
    r: &mut Rand,
    scenario: Scenario,
    svc: &Service,
    instance: usize,
    a: f64,
    b: f64,
    c: &mut Counters,
) {
    let mut t = a;
    while t < b {
        let end = (t + SLICE).min(b);
        let mid = (t + end) / 2.0;
        let burst = if svc.burstiness > 0.0 {
            let s = svc.burstiness;
            (s * r.normal() - s * s / 2.0).exp()
        } else {
            1.0
        };
        let mean = svc.load(mid) * svc.shares[instance] * (end - t) * burst;
        let (blip_errors, blip_latency) = svc.blip(mid, instance);
        let scale =
            svc.load_scale(mid) * blip_latency * effect(scenario, Signal::Latency, mid, instance);
        let error_p =
            (svc.error_p * blip_errors * effect(scenario, Signal::Errors, mid, instance)).min(1.0);
        let mut below = 0.0;
        let mut n = 0u64;
        let mut cumulative = 0.0;
        for (k, bound) in BOUNDS.iter().enumerate() {
            let cdf = if bound.is_finite() {
                svc.latency.cdf(*bound, scale)
            } else {
                1.0
            };
            let count = r.poisson(mean * (cdf - below).max(0.0));
            below = cdf;
            n += count;
            cumulative += count as f64;
            c.buckets[k] += cumulative;
        }
        let errors = r.binomial(n, error_p);
        if n > 0 {
            c.has_requests = true;
            c.requests += n as f64;
        }
        if errors > 0 {
            c.has_errors = true;
            c.errors += errors as f64;
        }
        t = end;
    }
}

/// What `/health` answers at `t`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Health {
    Status(u16),
    /// Connection refused: nothing listens.
    Refused,
    /// No answer within the probe's timeout.
    Timeout,
}

/// `/health` at `t` for the deployment seeded `seed`: the same answer whoever asks.
pub fn health(svc: &Service, seed: u64, t: f64) -> Health {
    match svc.start {
        Start::Dead => Health::Refused,
        Start::Up { up, .. } if t < up => Health::Refused,
        Start::Up { ready, .. } if t < ready => Health::Status(503),
        Start::Up { .. } => {
            let u = crate::dist::hash_unit(seed, (t * 1000.0).round() as i64 as u64);
            if u < svc.health_flake / 2.0 {
                Health::Status(503)
            } else if u < svc.health_flake {
                Health::Timeout
            } else {
                Health::Status(200)
            }
        }
    }
}

/// One generated deployment: its label, its service and its telemetry.
pub struct Deployment {
    /// Seeds what is drawn per probe (`/health` flakes), and the alternatives' phases.
    pub seed: u64,
    pub scenario: Scenario,
    pub service: Service,
    pub telemetry: Telemetry,
}

impl Deployment {
    /// Deployment `index` of the run seeded `run_seed`.
    pub fn generate(run_seed: u64, index: usize, scenario: Scenario) -> Self {
        let seed = crate::dist::splitmix(run_seed ^ crate::dist::splitmix(index as u64));
        let mut r = Rand::new(seed);
        let service = Service::draw(&mut r, scenario);
        let telemetry = telemetry(&mut r, scenario, &service);
        Deployment {
            seed,
            scenario,
            service,
            telemetry,
        }
    }

    pub fn health(&self, t: f64) -> Health {
        health(&self.service, self.seed, t)
    }

    /// What the service's dashboard shows for `q` at the daily mean, as a person setting a
    /// static threshold reads it: the error share, and the p90 as `histogram_quantile`
    /// interpolates it from these buckets.
    pub fn nominal(&self, q: crate::prom::Query) -> f64 {
        match q {
            crate::prom::Query::ErrorRatio | crate::prom::Query::ErrorRatioOrZero => {
                self.service.error_p
            }
            crate::prom::Query::LatencyP90 => {
                let cdf = BOUNDS.map(|b| {
                    if b.is_finite() {
                        self.service.latency.cdf(b, 1.0)
                    } else {
                        1.0
                    }
                });
                crate::prom::histogram_quantile(0.9, &cdf)
            }
            crate::prom::Query::Traffic => self.service.rate,
        }
    }
}
