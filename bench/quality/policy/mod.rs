//! The policies compared, each judging one deployment from what its probes would have read.
//!
//! backstop's own policies run through the real lifecycle core ([`backstop::replay`]); the
//! others are written here from their documented defaults (see
//! `/work/shared/reference/analysis-anchors.md` and each module). Every policy reads the same
//! signals from the same emulated Prometheus: the 5xx ratio and the p90 latency of the whole
//! service, and (where it has one) `/health`.

pub mod argo;
pub mod backstop;
pub mod configs;
pub mod flagger;
pub mod kayenta;

use crate::generate::Deployment;

/// The policies of the table, then backstop's diagnostic variants. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// backstop with no timing key set and the checks of the shipped example config.
    Backstop,
    /// The same plus `compare = "mann-whitney"` on latency: backstop as a careful user
    /// configures it (the suggestion).
    BackstopCompare,
    /// Flagger-style static thresholds: 1 m interval, cumulative failed checks, empty = failed.
    Flagger,
    /// Argo Rollouts-style AnalysisRun: failureLimit and consecutiveErrorLimit.
    Argo,
    /// Kayenta-style Mann-Whitney canary judge against a time-shifted control.
    Kayenta,
    /// Diagnostics, outside the five (see [`configs::Config`]).
    BackstopPrevious,
    BackstopSlowConfirm,
    BackstopCompareErrors,
    /// Diagnostic: the Kayenta-style judge with a 1-minute step (points that do not overlap).
    KayentaMinuteStep,
}

impl Kind {
    pub const ALL: [Kind; 9] = [
        Kind::Backstop,
        Kind::BackstopCompare,
        Kind::Flagger,
        Kind::Argo,
        Kind::Kayenta,
        Kind::BackstopPrevious,
        Kind::BackstopSlowConfirm,
        Kind::BackstopCompareErrors,
        Kind::KayentaMinuteStep,
    ];

    /// The five of the table (without the diagnostic variants).
    pub const FIVE: [Kind; 5] = [
        Kind::Backstop,
        Kind::BackstopCompare,
        Kind::Flagger,
        Kind::Argo,
        Kind::Kayenta,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Kind::Backstop => "backstop",
            Kind::BackstopCompare => "backstop_compare",
            Kind::Flagger => "flagger",
            Kind::Argo => "argo",
            Kind::Kayenta => "kayenta",
            Kind::BackstopPrevious => "backstop_previous",
            Kind::BackstopSlowConfirm => "backstop_1m",
            Kind::BackstopCompareErrors => "backstop_compare_errors",
            Kind::KayentaMinuteStep => "kayenta_1m_step",
        }
    }

    /// backstop's configuration, for backstop's rows.
    fn config(self) -> Option<configs::Config> {
        match self {
            Kind::Backstop => Some(configs::Config::Defaults),
            Kind::BackstopCompare => Some(configs::Config::CompareLatency),
            Kind::BackstopPrevious => Some(configs::Config::Previous),
            Kind::BackstopSlowConfirm => Some(configs::Config::SlowConfirm),
            Kind::BackstopCompareErrors => Some(configs::Config::CompareErrors),
            Kind::Flagger | Kind::Argo | Kind::Kayenta | Kind::KayentaMinuteStep => None,
        }
    }
}

/// How a policy ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Rolled back (backstop: condemned, and the rollback deploy decided).
    RolledBack,
    /// Condemned without a rollback (backstop with no target: never happens here).
    Held,
    /// Kept: verified, promoted, passed.
    Verified,
    /// Could not judge; nothing done (backstop's inconclusive).
    Inconclusive,
    /// Still undecided when the telemetry ran out.
    Undecided,
}

impl Verdict {
    pub fn key(self) -> &'static str {
        match self {
            Verdict::RolledBack => "rolled_back",
            Verdict::Held => "held",
            Verdict::Verified => "verified",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Undecided => "undecided",
        }
    }
}

/// A policy's decision about one deployment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub verdict: Verdict,
    /// Seconds from the deployment to the decision.
    pub at: Option<f64>,
    /// The signal that decided a rollback, when the policy says: `health`, `errors`, `latency`,
    /// `not_ready` (Flagger's progress deadline).
    pub cause: Option<&'static str>,
}

impl Judgement {
    pub fn at(verdict: Verdict, t: f64) -> Self {
        Judgement {
            verdict,
            at: Some(t),
            cause: None,
        }
    }

    pub fn because(self, cause: &'static str) -> Self {
        Judgement {
            cause: Some(cause),
            ..self
        }
    }

    pub fn undecided() -> Self {
        Judgement {
            verdict: Verdict::Undecided,
            at: None,
            cause: None,
        }
    }
}

/// The name of the signal a query reads, for [`Judgement::cause`].
pub fn signal(q: crate::prom::Query) -> &'static str {
    match q {
        crate::prom::Query::ErrorRatio | crate::prom::Query::ErrorRatioOrZero => "errors",
        crate::prom::Query::LatencyP90 => "latency",
        crate::prom::Query::Traffic => "traffic",
    }
}

/// The policies, with what they load once per run: backstop's configs, loaded as the daemon
/// loads them.
pub struct Policies {
    backstop: Vec<(Kind, backstop::Backstop)>,
}

impl Policies {
    pub fn load() -> Result<Self, String> {
        let mut loaded = Vec::new();
        for kind in Kind::ALL {
            if let Some(c) = kind.config() {
                let b = backstop::Backstop::load(&c.toml())
                    .map_err(|e| format!("{}: {e}", kind.key()))?;
                loaded.push((kind, b));
            }
        }
        Ok(Policies { backstop: loaded })
    }

    /// The TOML of backstop's rows, for the report.
    pub fn configs() -> Vec<(&'static str, String)> {
        Kind::ALL
            .iter()
            .filter_map(|k| k.config().map(|c| (k.key(), c.toml())))
            .collect()
    }

    fn backstop(&self, kind: Kind) -> Option<&backstop::Backstop> {
        self.backstop
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, b)| b)
    }

    /// backstop's reasons for its verdicts on `d` (every configuration).
    pub fn explain(&self, d: &Deployment) -> String {
        self.backstop
            .iter()
            .map(|(k, b)| format!("{}:\n{}", k.key(), b.explain(d)))
            .collect()
    }

    pub fn judge(&self, kind: Kind, d: &Deployment) -> Judgement {
        match (kind, self.backstop(kind)) {
            (Kind::Flagger, _) => flagger::judge(d),
            (Kind::Argo, _) => argo::judge(d),
            (Kind::Kayenta, _) => kayenta::judge(d, kayenta::STEP),
            (Kind::KayentaMinuteStep, _) => kayenta::judge(d, kayenta::MINUTE_STEP),
            (_, Some(b)) => b.judge(d),
            (_, None) => unreachable!("every backstop row is loaded"),
        }
    }
}
