//! The labelled deployments: which kind of release each one is (good, noisy good, a regression
//! of a given size, ...), in what proportions, and the service each one is deployed to.

use crate::dist::Rand;

/// Which signal a regression degrades.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    /// The share of requests answered 5xx.
    Errors,
    /// Every request's duration (the p90 moves with it).
    Latency,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Errors => "errors",
            Signal::Latency => "latency",
        }
    }
}

/// What a deployment is. Closed set: the list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scenario {
    /// A healthy release on a well-behaved service.
    Good,
    /// A healthy release on a noisy service: bursty traffic, error and latency blips (one
    /// instance or all), more missed scrapes, a flaky `/health`.
    NoisyGood,
    /// A healthy release on a service with well under 1 request per second.
    LowTraffic,
    /// A healthy release while telemetry is broken: Prometheus unreachable, or every scrape
    /// failing, for minutes.
    TelemetryOutage,
    /// A healthy release that answers `/health` 503 while it warms up, for less than the
    /// warmup it runs with (backstop's default: 15 s).
    SlowStart,
    /// A regression from the deployment on: the signal `factor` times what it was.
    Step { signal: Signal, factor: f64 },
    /// A regression that grows from nothing to 3x over the first 10 minutes (a leak).
    Gradual { signal: Signal },
    /// One instance of four bad: its signal 5x (errors 5x on one instance is 2x overall).
    Partial { signal: Signal },
    /// The release never starts: connection refused, no metrics.
    DeadOnStart,
}

/// The regression sizes of the step scenarios.
pub const FACTORS: [f64; 4] = [1.2, 1.5, 2.0, 5.0];

/// Where a gradual regression ends, and how long it takes to get there.
pub const GRADUAL_TO: f64 = 3.0;
pub const GRADUAL_OVER: f64 = 600.0;

/// How bad the bad instance of a partial regression is.
pub const PARTIAL_FACTOR: f64 = 5.0;

impl Scenario {
    /// Whether rolling it back is right.
    pub fn bad(&self) -> bool {
        matches!(
            self,
            Scenario::Step { .. }
                | Scenario::Gradual { .. }
                | Scenario::Partial { .. }
                | Scenario::DeadOnStart
        )
    }

    /// A stable name for reports: `good`, `errors_x1.5`, `gradual_latency`, ...
    pub fn key(&self) -> String {
        match self {
            Scenario::Good => "good".into(),
            Scenario::NoisyGood => "noisy_good".into(),
            Scenario::LowTraffic => "low_traffic".into(),
            Scenario::TelemetryOutage => "telemetry_outage".into(),
            Scenario::SlowStart => "slow_start".into(),
            Scenario::Step { signal, factor } => format!("{}_x{factor}", signal.as_str()),
            Scenario::Gradual { signal } => format!("gradual_{}", signal.as_str()),
            Scenario::Partial { signal } => format!("partial_{}", signal.as_str()),
            Scenario::DeadOnStart => "dead_on_start".into(),
        }
    }

    /// The regression's size for the recall table: the step factor; `None` for the others.
    pub fn factor(&self) -> Option<f64> {
        match self {
            Scenario::Step { factor, .. } => Some(*factor),
            _ => None,
        }
    }
}

/// The mix of a run, in percent (sums to 100): healthy releases are 40%, as in a fleet where
/// most deployments are fine; every regression cell gets enough deployments for its recall to
/// be read to about a percent at 10,000 deployments.
pub fn mix() -> Vec<(Scenario, f64)> {
    let mut m = vec![
        (Scenario::Good, 24.0),
        (Scenario::NoisyGood, 16.0),
        (Scenario::LowTraffic, 5.0),
        (Scenario::TelemetryOutage, 5.0),
        (Scenario::SlowStart, 5.0),
        (Scenario::DeadOnStart, 5.0),
    ];
    for signal in [Signal::Errors, Signal::Latency] {
        for factor in FACTORS {
            m.push((Scenario::Step { signal, factor }, 4.0));
        }
        m.push((Scenario::Gradual { signal }, 2.0));
        m.push((Scenario::Partial { signal }, 2.0));
    }
    m
}

/// `n` scenarios in the proportions of [`mix`] (largest remainder), in a fixed order.
pub fn assign(n: usize) -> Vec<Scenario> {
    let m = mix();
    let total: f64 = m.iter().map(|(_, w)| w).sum();
    let exact: Vec<f64> = m.iter().map(|(_, w)| w / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut rest: Vec<usize> = (0..m.len()).collect();
    rest.sort_by(|&a, &b| {
        let fa = exact[a] - exact[a].floor();
        let fb = exact[b] - exact[b].floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    let short = n - counts.iter().sum::<usize>();
    for &i in rest.iter().take(short) {
        counts[i] += 1;
    }
    m.iter()
        .zip(counts)
        .flat_map(|((s, _), c)| std::iter::repeat_n(*s, c))
        .collect()
}

/// The latency of one request: log-normal body, Pareto tail (GC pauses, cold caches, retries).
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Median of the body, seconds.
    pub median: f64,
    /// Log-normal shape of the body.
    pub sigma: f64,
    /// Share of requests in the tail.
    pub tail: f64,
    /// Pareto index of the tail (lower is heavier), which starts at 3x the median.
    pub alpha: f64,
}

impl Latency {
    /// `P(duration <= x)` for requests slowed by `scale` (1 = as usual).
    pub fn cdf(&self, x: f64, scale: f64) -> f64 {
        let y = x / scale;
        if y <= 0.0 {
            return 0.0;
        }
        let z = (y / self.median).ln() / self.sigma;
        let body = 1.0 - backstop::judge::stats::normal_sf(z);
        let xm = 3.0 * self.median;
        let tail = if y < xm {
            0.0
        } else {
            1.0 - (xm / y).powf(self.alpha)
        };
        (1.0 - self.tail) * body + self.tail * tail
    }
}

/// A short disturbance of a healthy service (noisy scenarios): a dependency's hiccup, a GC
/// pause. It is there before the deployment as after it.
#[derive(Debug, Clone, Copy)]
pub struct Blip {
    pub from: f64,
    pub to: f64,
    /// The instance it hits; `None`: all of them (a shared dependency).
    pub instance: Option<usize>,
    pub errors: f64,
    pub latency: f64,
}

/// Telemetry broken for a while (times in seconds from the deployment).
#[derive(Debug, Clone, Copy)]
pub enum Outage {
    /// Prometheus itself is unreachable: every query errors.
    Server { from: f64, to: f64 },
    /// Prometheus is up, but no scrape succeeds (network, exporter): results go empty.
    Scrapes { from: f64, to: f64 },
}

/// How the new release starts (seconds from the deployment).
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// The process answers from `up` (503 until `ready`, 200 after).
    Up { up: f64, ready: f64 },
    /// It never answers.
    Dead,
}

/// Instances behind the load balancer.
pub const INSTANCES: usize = 4;

/// The service a deployment goes to, and what the release does to it.
#[derive(Debug, Clone)]
pub struct Service {
    /// Requests per second over all instances at the daily mean.
    pub rate: f64,
    /// Diurnal swing (0.5: from half to 1.5 times the mean) and the phase at the deployment.
    pub diurnal: f64,
    pub phase: f64,
    /// Share of requests failing, as usual.
    pub error_p: f64,
    pub latency: Latency,
    /// How much latency follows load (0.2: 10% more load, 2% slower).
    pub load_latency: f64,
    /// Share of traffic per instance.
    pub shares: [f64; INSTANCES],
    /// Prometheus' scrape offset per instance, seconds into the 15 s interval.
    pub scrape_phase: [f64; INSTANCES],
    /// Chance that one scrape is lost.
    pub scrape_miss: f64,
    /// Spread of traffic bursts (log-normal sigma per 5 s; 0 is plain Poisson).
    pub burstiness: f64,
    /// Chance that one `/health` probe fails on a healthy instance (503 or timeout).
    pub health_flake: f64,
    pub blips: Vec<Blip>,
    pub outage: Option<Outage>,
    pub start: Start,
}

/// Seconds of history before the deployment: the 10 m baseline and its first 1 m rate window,
/// plus Kayenta's control window 11 m back.
pub const BEFORE: f64 = 12.0 * 60.0 + 30.0;
/// Seconds after it: Flagger with 4 failed checks runs 14 one-minute iterations.
pub const AFTER: f64 = 16.0 * 60.0;

impl Service {
    /// Draws the service of a deployment of `scenario`.
    pub fn draw(r: &mut Rand, scenario: Scenario) -> Self {
        let noisy = match scenario {
            Scenario::NoisyGood => true,
            Scenario::Good
            | Scenario::LowTraffic
            | Scenario::TelemetryOutage
            | Scenario::SlowStart
            | Scenario::DeadOnStart => false,
            // Regressions happen on noisy services too, in the healthy mix's proportion.
            _ => r.chance(0.4),
        };
        let rate = match scenario {
            Scenario::LowTraffic => r.log_uniform(0.05, 1.0),
            _ => r.log_uniform(5.0, 500.0),
        };
        let mut shares = [0.0; INSTANCES];
        for s in shares.iter_mut() {
            *s = r.uniform(0.9, 1.1);
        }
        let sum: f64 = shares.iter().sum();
        shares.iter_mut().for_each(|s| *s /= sum);
        let mut scrape_phase = [0.0; INSTANCES];
        scrape_phase
            .iter_mut()
            .for_each(|p| *p = r.uniform(0.0, 15.0));
        let start = match scenario {
            Scenario::DeadOnStart => Start::Dead,
            Scenario::SlowStart => Start::Up {
                up: r.uniform(0.5, 2.0),
                ready: r.uniform(5.0, 14.0),
            },
            _ => {
                let up = r.uniform(0.5, 3.0);
                Start::Up { up, ready: up }
            }
        };
        let outage = match scenario {
            Scenario::TelemetryOutage => {
                let from = r.uniform(-60.0, 300.0);
                let to = from + r.uniform(60.0, 480.0);
                Some(if r.chance(0.5) {
                    Outage::Server { from, to }
                } else {
                    Outage::Scrapes { from, to }
                })
            }
            _ => None,
        };
        Service {
            rate,
            diurnal: r.uniform(0.2, 0.8),
            phase: r.uniform(0.0, std::f64::consts::TAU),
            error_p: r.log_uniform(0.001, 0.02),
            latency: Latency {
                median: r.log_uniform(0.02, 0.3),
                sigma: r.uniform(0.3, 0.8),
                tail: r.uniform(0.01, 0.05),
                alpha: r.uniform(1.5, 3.0),
            },
            load_latency: r.uniform(0.0, 0.3),
            shares,
            scrape_phase,
            scrape_miss: if noisy { 0.03 } else { 0.005 },
            burstiness: if noisy { 0.3 } else { 0.0 },
            health_flake: if noisy { 0.01 } else { 0.001 },
            blips: if noisy { blips(r) } else { Vec::new() },
            outage,
            start,
        }
    }

    /// Requests per second over all instances at `t` (seconds from the deployment).
    pub fn load(&self, t: f64) -> f64 {
        let day = std::f64::consts::TAU / 86_400.0;
        self.rate * (1.0 + self.diurnal * (self.phase + day * t).sin())
    }

    /// Latency scale from load alone at `t` (1 at the daily mean).
    pub fn load_scale(&self, t: f64) -> f64 {
        1.0 + self.load_latency * (self.load(t) / self.rate - 1.0)
    }

    /// The error and latency multipliers of the blips at `t` on `instance`.
    pub fn blip(&self, t: f64, instance: usize) -> (f64, f64) {
        self.blips
            .iter()
            .filter(|b| t >= b.from && t < b.to && b.instance.is_none_or(|i| i == instance))
            .fold((1.0, 1.0), |(e, l), b| (e * b.errors, l * b.latency))
    }

    /// Whether the new release is ready (its `/health` passes, the load balancer routes to it).
    pub fn ready(&self, t: f64) -> bool {
        matches!(self.start, Start::Up { ready, .. } if t >= ready)
    }
}

/// The disturbances of a noisy service over the whole timeline, before the deployment as
/// after it: about one error blip and one latency blip every 6 minutes. Most hit one instance
/// (a bad host, a GC pause: errors 2-5x for 5-30 s, latency 1.5-4x for 2-15 s); a third hit
/// every instance at once, milder (a shared dependency's hiccup: errors 2-3x, latency
/// 1.5-2.5x). Loud enough to cross a tight threshold now and then; not what a person reading
/// the graph would call a bad release, since the same blips are there before it.
fn blips(r: &mut Rand) -> Vec<Blip> {
    let span = BEFORE + AFTER;
    let mut out = Vec::new();
    for kind in 0..2 {
        let n = r.poisson(span / 360.0);
        for _ in 0..n {
            let from = r.uniform(-BEFORE, AFTER);
            let instance = (!r.chance(1.0 / 3.0)).then(|| r.below(INSTANCES));
            let one = instance.is_some();
            let (len, errors, latency) = match (kind, one) {
                (0, true) => (r.uniform(5.0, 30.0), r.uniform(2.0, 5.0), 1.0),
                (0, false) => (r.uniform(5.0, 30.0), r.uniform(2.0, 3.0), 1.0),
                (_, true) => (r.uniform(2.0, 15.0), 1.0, r.uniform(1.5, 4.0)),
                (_, false) => (r.uniform(2.0, 15.0), 1.0, r.uniform(1.5, 2.5)),
            };
            out.push(Blip {
                from,
                to: from + len,
                instance,
                errors,
                latency,
            });
        }
    }
    out
}

/// What the release does to a signal at `t` on `instance`: a multiplier (1 = nothing).
pub fn effect(scenario: Scenario, signal: Signal, t: f64, instance: usize) -> f64 {
    if t < 0.0 {
        return 1.0;
    }
    match scenario {
        Scenario::Step { signal: s, factor } if s == signal => factor,
        Scenario::Gradual { signal: s } if s == signal => {
            1.0 + (GRADUAL_TO - 1.0) * (t / GRADUAL_OVER).min(1.0)
        }
        Scenario::Partial { signal: s } if s == signal && instance == 0 => PARTIAL_FACTOR,
        _ => 1.0,
    }
}
