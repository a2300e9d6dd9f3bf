//! The random draws the generator needs, on fastrand's seeded generator (no `rand` stack for a
//! handful of distributions). Every deployment gets its own generator, seeded from the run's
//! seed and its index, so a run is reproducible whatever the thread count.

/// A seeded source of the draws below.
pub struct Rand(fastrand::Rng);

impl Rand {
    pub fn new(seed: u64) -> Self {
        Rand(fastrand::Rng::with_seed(seed))
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0.f64()
    }

    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform on a log scale: as likely to be 10 to 20 as 100 to 200.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + (hi.ln() - lo.ln()) * self.unit()).exp()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        self.0.usize(..n)
    }

    /// Standard normal (Box-Muller; the second value is dropped for simplicity).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]: ln is finite
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Poisson counts: exact (Knuth) below a mean of 30, the normal approximation above,
    /// where it is indistinguishable at the resolution anything here reads.
    pub fn poisson(&mut self, mean: f64) -> u64 {
        if mean <= 0.0 || mean.is_nan() {
            return 0;
        }
        if mean < 30.0 {
            let limit = (-mean).exp();
            let (mut k, mut p) = (0u64, 1.0);
            loop {
                p *= self.unit();
                if p <= limit {
                    return k;
                }
                k += 1;
            }
        }
        (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64
    }

    /// Binomial counts: Bernoulli trials for small `n`, Poisson in either tail, else normal.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return n;
        }
        if n < 40 {
            return (0..n).filter(|_| self.chance(p)).count() as u64;
        }
        let (nf, q) = (n as f64, 1.0 - p);
        if nf * p < 15.0 {
            return self.poisson(nf * p).min(n);
        }
        if nf * q < 15.0 {
            return n - self.poisson(nf * q).min(n);
        }
        let draw = nf * p + (nf * p * q).sqrt() * self.normal();
        draw.round().clamp(0.0, nf) as u64
    }
}

/// A stateless uniform draw in [0, 1) for `(seed, key)`: what a probe at a given moment reads
/// must not depend on which policy asked first, or how often.
pub fn hash_unit(seed: u64, key: u64) -> f64 {
    let x = splitmix(seed ^ splitmix(key));
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash.
pub fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}
