//! The stored form of a scrape check's history, so a restart keeps its baseline: compact JSON,
//! and the fingerprint of the settings the points were scraped with. Pure: points in, text
//! out, and back.
//!
//! The records are their own types, not serde on [`Point`]/[`Measure`], so the stored form
//! only changes on purpose: short field names (`{"t":1700000000000,"m":[{"s":42.0,"n":2,
//! "i":3.0}]}`, about 30 bytes a measure), numbers that JSON cannot hold written as text, and
//! new fields added with `#[serde(default)]` so rows written before them still read. A row
//! that does not read (garbled, or from a newer format) is an error the caller logs before
//! starting empty: history is an optimisation, never a reason not to run.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::maths::{Measure, Point, ScrapeError};
use super::select::{selections, selector_text, Keep};
use crate::config::{ScrapeProbe, SeriesSelector};
use crate::secret::redact_url;

/// Version of the stored form. A row of a higher version (written by a newer backstop, read
/// after a downgrade) is not guessed at: the check starts empty.
const FORMAT: u32 = 1;

/// Why a stored history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a stored scrape history: {0}")]
    Json(#[from] serde_json::Error),
    #[error("stored in format {0}, this backstop reads format {FORMAT}")]
    Format(u32),
    #[error("point {0}: {1}")]
    Point(usize, &'static str),
}

/// What identifies the series a history holds: the endpoint and the selectors, in order.
/// Stored points are only reused when it is unchanged, so a check pointed elsewhere never
/// mixes two sources. Credentials in the URL are masked (changing a password keeps the
/// history, and the state file holds no secret). The mode and the windows are left out on
/// purpose: the points keep per-scrape sums and increases, which do not depend on them, so
/// widening `rate_window` or switching `gauge` to `rate` keeps the baseline.
/// The `min_traffic` counter is part of what is recorded, and a histogram's selector records
/// its buckets too (marked `[le]`): either changes the points, so either starts afresh.
pub fn fingerprint(probe: &ScrapeProbe, traffic: Option<&SeriesSelector>) -> String {
    let selectors: Vec<String> = selections(&probe.mode, traffic)
        .into_iter()
        .map(|s| match s.keep {
            Keep::Sum => selector_text(s.selector),
            Keep::Buckets => format!("{}[le]", selector_text(s.selector)),
        })
        .collect();
    format!("{} {}", redact_url(&probe.url), selectors.join(" "))
}

/// The points as stored, oldest first.
pub fn encode(points: &[Point]) -> Result<String, serde_json::Error> {
    serde_json::to_string(&HistoryRecord {
        v: FORMAT,
        p: points.iter().map(PointRecord::from).collect(),
    })
}

/// The points of a stored history, in stored order.
pub fn decode(text: &str) -> Result<Vec<Point>, DecodeError> {
    let h: HistoryRecord = serde_json::from_str(text)?;
    if h.v > FORMAT {
        return Err(DecodeError::Format(h.v));
    }
    h.p.into_iter()
        .enumerate()
        .map(|(i, p)| Point::try_from(p).map_err(|e| DecodeError::Point(i, e)))
        .collect()
}

#[derive(Serialize, Deserialize)]
struct HistoryRecord {
    v: u32,
    p: Vec<PointRecord>,
}

/// One scrape: `t` in Unix milliseconds (scrapes are an interval apart; finer is noise), and
/// either `m`, the measures, or `e`, why there are none.
#[derive(Serialize, Deserialize)]
struct PointRecord {
    t: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<Vec<MeasureRecord>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<ErrorRecord>,
}

/// One selector's [`Measure`]. A field added to `Measure` gets a short name here with
/// `#[serde(default)]` (and `skip_serializing_if` when empty), e.g.
/// `#[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")] buckets:
/// Vec<(Num, Num)>`, and a line in each conversion below; rows written before it read as
/// the default.
#[derive(Serialize, Deserialize)]
struct MeasureRecord {
    #[serde(rename = "s")]
    sum: Num,
    #[serde(rename = "n")]
    series: usize,
    /// Absent for the first scrape, whose increase is unknown.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    increase: Option<Num>,
    /// Histogram selectors: per finite bucket bound, its increase.
    #[serde(rename = "b", default, skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<(Num, Num)>,
    /// Histogram selectors: the `+Inf` bucket's increase.
    #[serde(rename = "f", default, skip_serializing_if = "Option::is_none")]
    inf_bucket: Option<Num>,
}

/// A failed scrape. Only failures of the scrape itself are ever recorded in a point; the
/// errors computed when reading (no series, too few scrapes, ...) are kept as their text.
#[derive(Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum ErrorRecord {
    Failed {
        r: String,
    },
    Unreachable {
        r: String,
        #[serde(default)]
        to: bool,
    },
    Nan {
        s: String,
        v: Num,
    },
}

/// A number: JSON's own when finite, else `"NaN"`, `"inf"` or `"-inf"` (serde_json writes
/// non-finite numbers as `null`, which does not read back as a number).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num(pub f64);

impl Serialize for Num {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_finite() {
            s.serialize_f64(self.0)
        } else {
            s.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(Num(v)),
            Repr::Text(t) => t
                .parse()
                .map(Num)
                .map_err(|_| serde::de::Error::custom(format!("{t:?} is not a number"))),
        }
    }
}

impl From<&Point> for PointRecord {
    fn from(p: &Point) -> Self {
        let (m, e) = match &p.measures {
            Ok(ms) => (Some(ms.iter().map(MeasureRecord::from).collect()), None),
            Err(e) => (None, Some(ErrorRecord::from(e))),
        };
        PointRecord {
            t: p.at.timestamp_millis(),
            m,
            e,
        }
    }
}

impl TryFrom<PointRecord> for Point {
    type Error = &'static str;

    fn try_from(p: PointRecord) -> Result<Self, Self::Error> {
        let at = DateTime::<Utc>::from_timestamp_millis(p.t).ok_or("time out of range")?;
        let measures = match (p.m, p.e) {
            (Some(ms), None) => Ok(ms.into_iter().map(Measure::from).collect()),
            (None, Some(e)) => Err(ScrapeError::from(e)),
            _ => return Err("needs exactly one of measures and error"),
        };
        Ok(Point { at, measures })
    }
}

impl From<&Measure> for MeasureRecord {
    fn from(m: &Measure) -> Self {
        MeasureRecord {
            sum: Num(m.sum),
            series: m.series,
            increase: m.increase.map(Num),
            buckets: m.buckets.iter().map(|&(le, n)| (Num(le), Num(n))).collect(),
            inf_bucket: m.inf_bucket.map(Num),
        }
    }
}

impl From<MeasureRecord> for Measure {
    fn from(m: MeasureRecord) -> Self {
        Measure {
            sum: m.sum.0,
            series: m.series,
            increase: m.increase.map(|n| n.0),
            buckets: m.buckets.into_iter().map(|(le, n)| (le.0, n.0)).collect(),
            inf_bucket: m.inf_bucket.map(|n| n.0),
        }
    }
}

impl From<&ScrapeError> for ErrorRecord {
    fn from(e: &ScrapeError) -> Self {
        match e {
            ScrapeError::Failed(r) => ErrorRecord::Failed { r: r.clone() },
            ScrapeError::Unreachable { reason, timed_out } => ErrorRecord::Unreachable {
                r: reason.clone(),
                to: *timed_out,
            },
            ScrapeError::NotANumber { series, value } => ErrorRecord::Nan {
                s: series.clone(),
                v: Num(*value),
            },
            other => ErrorRecord::Failed {
                r: other.to_string(),
            },
        }
    }
}

impl From<ErrorRecord> for ScrapeError {
    fn from(e: ErrorRecord) -> Self {
        match e {
            ErrorRecord::Failed { r } => ScrapeError::Failed(r),
            ErrorRecord::Unreachable { r, to } => ScrapeError::Unreachable {
                reason: r,
                timed_out: to,
            },
            ErrorRecord::Nan { s, v } => ScrapeError::NotANumber {
                series: s,
                value: v.0,
            },
        }
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
