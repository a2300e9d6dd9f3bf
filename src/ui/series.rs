//! From an evidence document to the charts of its checks: which samples, which limit lines,
//! which baseline, which moments and which condemning run.
//!
//! Documents may carry more than [`crate::evidence::CheckEvidence`] knows: the whole
//! observation's `series`, the pre-deployment series `before` behind the baseline and the
//! `condemning` run's bounds. They are read from the document's JSON when present; without
//! them the charts fall back to the recent `samples`, the baseline value alone and a
//! condemning run found from the samples.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::chart::{Baseline, Bound, Chart, Moment, MomentKind, Point, State, Threshold};
use crate::evidence::{CheckEvidence, Evidence};
use crate::judge::observation::Sample;
use crate::judge::{num, Outcome, Rule};

/// A time span `{from, to}`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Span {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// `before`: the pre-deployment series behind the baseline.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Before {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    #[serde(default)]
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// The optional fields of one `checks[]` element; each is dropped alone when malformed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extras {
    pub series: Option<Vec<Sample>>,
    pub before: Option<Before>,
    pub condemning: Option<Span>,
}

impl Extras {
    /// Reads the optional fields of `check`, a `checks[]` element as JSON.
    pub fn read(check: &Value) -> Self {
        fn field<T: for<'de> Deserialize<'de>>(v: &Value, key: &str) -> Option<T> {
            v.get(key)
                .filter(|v| !v.is_null())
                .and_then(|v| T::deserialize(v).ok())
        }
        Extras {
            series: field::<Vec<Sample>>(check, "series").filter(|s| !s.is_empty()),
            before: field(check, "before"),
            condemning: field(check, "condemning"),
        }
    }

    /// The extras of every check of `ev`, in order.
    pub fn of(ev: &Evidence) -> Vec<Extras> {
        let doc = serde_json::to_value(ev).unwrap_or(Value::Null);
        (0..ev.checks.len())
            .map(|i| Extras::read(&doc["checks"][i]))
            .collect()
    }
}

/// The y axis's label: what the check measures, with its unit.
pub fn unit(kind: &str, query: Option<&str>) -> String {
    let q = query.unwrap_or("");
    match kind {
        "http" => "HTTP status".into(),
        "alert" => "new alerts (count)".into(),
        "slo" => "error-budget burn rate (×)".into(),
        _ if q.contains("_seconds") => "seconds".into(),
        _ if q.contains("_bytes") => "bytes".into(),
        _ if q.contains("ratio") || q.contains(" / ") => "ratio".into(),
        _ => "value".into(),
    }
}

/// The limit lines of `rules` (ratios need the baseline to be drawn).
pub fn thresholds(rules: &[Rule], baseline: Option<f64>) -> Vec<Threshold> {
    let mut out = Vec::new();
    for r in rules {
        match r {
            Rule::Max(v) => out.push(Threshold {
                value: *v,
                bound: Bound::Upper,
                label: format!("max {}", num(*v)),
            }),
            Rule::Min(v) => out.push(Threshold {
                value: *v,
                bound: Bound::Lower,
                label: format!("min {}", num(*v)),
            }),
            Rule::MaxRatio(k) | Rule::MinRatio(k) => {
                if let Some(b) = baseline {
                    let upper = matches!(r, Rule::MaxRatio(_));
                    out.push(Threshold {
                        value: k * b,
                        bound: if upper { Bound::Upper } else { Bound::Lower },
                        label: format!(
                            "{} {} × baseline = {}",
                            if upper { "max" } else { "min" },
                            num(*k),
                            num(k * b)
                        ),
                    });
                }
            }
            Rule::ExpectStatus(codes) => out.extend(codes.iter().map(|c| Threshold {
                value: f64::from(*c),
                bound: Bound::Expected,
                label: format!("expected {c}"),
            })),
            Rule::NoNewAlert => out.push(Threshold {
                value: 0.0,
                bound: Bound::Upper,
                label: "max 0 new alerts".into(),
            }),
            Rule::BurnRate(v) => out.push(Threshold {
                value: *v,
                bound: Bound::Upper,
                label: format!("max burn {}×", num(*v)),
            }),
        }
    }
    out
}

/// The run that condemned: from the last pass, the failures to the end (errors and samples
/// without data do not break a run, as in [`crate::judge::observation::Tracker::record`]).
pub fn condemning_run(samples: &[Sample]) -> Option<Span> {
    let mut run: Option<Span> = None;
    for s in samples.iter().rev() {
        match s.outcome {
            Outcome::Pass => break,
            Outcome::Fail { .. } => {
                run = Some(match run {
                    None => Span {
                        from: s.at,
                        to: s.at,
                    },
                    Some(r) => Span {
                        from: s.at,
                        to: r.to,
                    },
                })
            }
            Outcome::Error { .. } | Outcome::NoData { .. } => {}
        }
    }
    run
}

/// Whether this check condemned the release (rather than made it inconclusive).
pub fn condemned_by(c: &CheckEvidence) -> bool {
    c.track
        .limit_hit
        .as_deref()
        .is_some_and(|h| h.contains("failure_limit"))
}

/// When backstop deployed another release over this one (a rollback or a retry), from the
/// document's timeline.
pub fn rollback_moment(ev: &Evidence) -> Option<Moment> {
    ev.timeline.iter().find_map(|e| {
        let label = if e.event.starts_with("deploying") || e.event.starts_with("rolled back") {
            "rollback"
        } else if e.event.starts_with("redeployed") {
            "retry"
        } else {
            return None;
        };
        Some(Moment {
            at: e.at,
            kind: MomentKind::Rollback,
            label: label.into(),
        })
    })
}

/// The chart of check `c` of `ev`.
pub fn chart(id: &str, ev: &Evidence, c: &CheckEvidence, x: &Extras) -> Chart {
    let samples: Vec<Sample> = match &x.series {
        Some(s) => s.clone(),
        None => c.track.samples.iter().cloned().collect(),
    };
    let condemning = x
        .condemning
        .or_else(|| condemned_by(c).then(|| condemning_run(&samples)).flatten());
    let points = samples
        .iter()
        .map(|s| {
            let (state, text) = match &s.outcome {
                Outcome::Pass => (State::Pass, String::new()),
                Outcome::Fail { limit } => (State::Fail, limit.clone()),
                Outcome::Error { reason, .. } => (State::Error, reason.clone()),
                Outcome::NoData { reason } => (State::NoData, reason.clone()),
            };
            let text = match &s.note {
                Some(n) if text.is_empty() => n.clone(),
                Some(n) => format!("{text}; {n}"),
                None => text,
            };
            Point {
                at: s.at,
                value: s.value.filter(|v| v.is_finite()),
                state,
                mixed: s.mixed,
                condemning: state == State::Fail
                    && condemning.is_some_and(|r| s.at >= r.from && s.at <= r.to),
                text,
            }
        })
        .collect();
    let d = &ev.deployment;
    let mut moments = vec![Moment {
        at: d.deployed_at,
        kind: MomentKind::Deployed,
        label: format!(
            "{} {}",
            d.kind.as_str().replace("deployment", "deployed"),
            d.release
        ),
    }];
    if d.judging_from > d.deployed_at {
        moments.push(Moment {
            at: d.judging_from,
            kind: MomentKind::Judging,
            label: "judging".into(),
        });
    }
    moments.extend(rollback_moment(ev));
    let baseline = c.track.baseline.map(|value| Baseline {
        value,
        window: x.before.as_ref().map(|b| (b.from, b.to)),
        points: x
            .before
            .as_ref()
            .map(|b| b.points.clone())
            .unwrap_or_default(),
    });
    Chart {
        id: id.to_string(),
        title: format!("{} ({})", c.track.name, c.kind),
        unit: unit(&c.kind, c.query.as_deref()),
        points,
        thresholds: thresholds(&c.track.rules, c.track.baseline),
        baseline,
        moments,
        condemning: condemning.map(|r| (r.from, r.to)),
    }
}

/// The checks in the order a reader needs them: the one that decided first, then those that
/// failed, then the rest (configuration order within each).
pub fn order(checks: &[CheckEvidence]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..checks.len()).collect();
    idx.sort_by_key(|i| {
        let c = &checks[*i];
        (
            !condemned_by(c),
            c.track.limit_hit.is_none(),
            c.track.failures == 0,
        )
    });
    idx
}

#[cfg(test)]
#[path = "series_tests.rs"]
mod tests;
