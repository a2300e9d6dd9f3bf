//! Which series a scrape check reads from each scrape (its selections: the mode's selectors
//! and the `min_traffic` counter), and how one scrape's selection is differenced against the
//! previous one's into a [`Measure`]. Pure, like the rest of the maths.

use std::collections::BTreeMap;

use super::maths::{Measure, ScrapeError};
use super::parse::{Exposition, Series};
use crate::config::{ScrapeMode, SeriesSelector};

/// The selected series of one selector in one scrape, keyed by their labels.
pub type Snapshot = BTreeMap<String, f64>;

/// How a collector keeps what one selector selects. Closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Summed over the series (gauges, counters).
    Sum,
    /// Also per histogram bucket bound (`le`), for `mode = "quantile"`.
    Buckets,
}

/// One selector a collector records from every scrape, and how.
#[derive(Debug, Clone, Copy)]
pub struct Selection<'a> {
    pub selector: &'a SeriesSelector,
    pub keep: Keep,
}

/// What a collector records: the mode's selectors (in [`ScrapeMode::selectors`] order), then
/// the `min_traffic` counter when the check has one (at [`traffic_index`]).
pub fn selections<'a>(
    mode: &'a ScrapeMode,
    traffic: Option<&'a SeriesSelector>,
) -> Vec<Selection<'a>> {
    let keep = match mode {
        ScrapeMode::Quantile { .. } => Keep::Buckets,
        ScrapeMode::Gauge(_) | ScrapeMode::Rate(_) | ScrapeMode::Ratio { .. } => Keep::Sum,
    };
    mode.selectors()
        .into_iter()
        .map(|selector| Selection { selector, keep })
        .chain(traffic.map(|selector| Selection {
            selector,
            keep: Keep::Sum,
        }))
        .collect()
}

/// Where the `min_traffic` counter's measure is in a point of `mode`'s collector.
pub fn traffic_index(mode: &ScrapeMode) -> usize {
    mode.selectors().len()
}

fn label<'a>(s: &'a Series, name: &str) -> &'a str {
    s.labels
        .iter()
        .find(|(l, _)| l == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Whether `sel` selects `s`: same name, and every label matcher holds (as in PromQL, a
/// missing label has the value `""`).
pub fn matches(sel: &SeriesSelector, s: &Series) -> bool {
    s.name == sel.metric && sel.labels.iter().all(|(k, m)| m.matches(label(s, k)))
}

/// `a="1",b="2"`: labels sorted and escaped as in the exposition format.
fn label_text<'a>(pairs: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let mut pairs: Vec<_> = pairs.into_iter().collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `metric{a="1"}`, or `metric` without labels.
pub fn selector_text(sel: &SeriesSelector) -> String {
    if sel.labels.is_empty() {
        sel.metric.clone()
    } else {
        let matchers: Vec<String> = sel
            .labels
            .iter()
            .map(|(k, m)| format!("{k}{}", m.text()))
            .collect();
        format!("{}{{{}}}", sel.metric, matchers.join(","))
    }
}

/// The series `sel` selects. A NaN or infinite value cannot be judged or counted: an error.
pub fn select(exp: &Exposition, sel: &SeriesSelector) -> Result<Snapshot, ScrapeError> {
    exp.series
        .iter()
        .filter(|s| matches(sel, s))
        .map(keyed)
        .collect()
}

/// A selected series' labels as its key, and its value, which must be a number.
fn keyed(s: &Series) -> Result<(String, f64), ScrapeError> {
    let key = label_text(s.labels.iter().map(|(k, v)| (k, v)));
    if !s.value.is_finite() {
        return Err(ScrapeError::NotANumber {
            series: format!("{}{{{key}}}", s.name),
            value: s.value,
        });
    }
    Ok((key, s.value))
}

/// The bucket series `sel` selects, grouped by their bound (`le`), sorted by bound. Series
/// without a numeric `le` are left out, as `histogram_quantile` leaves them out; so is a
/// bound of NaN or -Inf, which no observation can be at or below.
fn select_buckets(exp: &Exposition, sel: &SeriesSelector) -> Result<Buckets, ScrapeError> {
    let mut groups: Buckets = Vec::new();
    for s in exp.series.iter().filter(|s| matches(sel, s)) {
        let (key, value) = keyed(s)?;
        let bound = label(s, "le")
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|b| !b.is_nan() && *b != f64::NEG_INFINITY);
        let Some(bound) = bound else { continue };
        match groups.iter_mut().find(|(b, _)| *b == bound) {
            Some((_, snap)) => {
                snap.insert(key, value);
            }
            None => groups.push((bound, Snapshot::from([(key, value)]))),
        }
    }
    groups.sort_by(|a, b| a.0.total_cmp(&b.0));
    Ok(groups)
}

/// A histogram's series per bucket bound.
pub(super) type Buckets = Vec<(f64, Snapshot)>;

/// A count (or an increase) per bucket bound.
pub(super) type Counts = Vec<(f64, f64)>;

/// What one scrape selected for one [`Selection`], kept to difference the next scrape against.
#[derive(Debug, Clone)]
pub(super) enum Selected {
    Series(Snapshot),
    Buckets(Buckets),
}

impl Selected {
    pub(super) fn take(exp: &Exposition, s: &Selection) -> Result<Self, ScrapeError> {
        Ok(match s.keep {
            Keep::Sum => Selected::Series(select(exp, s.selector)?),
            Keep::Buckets => Selected::Buckets(select_buckets(exp, s.selector)?),
        })
    }

    /// The measure of this scrape, differenced against `prev` (the last successful scrape's
    /// selection of the same selector), if any.
    pub(super) fn measure(&self, prev: Option<&Selected>) -> Measure {
        match (self, prev) {
            (Selected::Series(cur), prev) => Measure {
                sum: cur.values().sum(),
                series: cur.len(),
                increase: match prev {
                    Some(Selected::Series(p)) => Some(increase(p, cur)),
                    _ => None,
                },
                buckets: Vec::new(),
                inf_bucket: None,
            },
            (Selected::Buckets(cur), prev) => {
                let per_bound = match prev {
                    Some(Selected::Buckets(p)) => Some(bucket_increases(p, cur)),
                    _ => None,
                };
                let inf = per_bound
                    .iter()
                    .flatten()
                    .find(|(b, _)| *b == f64::INFINITY)
                    .map(|(_, i)| *i);
                Measure {
                    sum: cur.iter().flat_map(|(_, s)| s.values()).sum(),
                    series: cur.iter().map(|(_, s)| s.len()).sum(),
                    increase: per_bound.as_ref().map(|p| p.iter().map(|(_, i)| i).sum()),
                    buckets: per_bound
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|(b, _)| b.is_finite())
                        .collect(),
                    inf_bucket: inf,
                }
            }
        }
    }
}

/// Per bucket bound of `cur`, the increase since `prev`, each series differenced as a counter.
/// A bound absent from `prev` counts nothing, like a late series.
fn bucket_increases(prev: &Buckets, cur: &Buckets) -> Counts {
    cur.iter()
        .map(|(bound, snap)| {
            let before = prev.iter().find(|(b, _)| b == bound).map(|(_, s)| s);
            (*bound, before.map_or(0.0, |before| increase(before, snap)))
        })
        .collect()
}

/// Counter increase from `prev` to `cur`, summed over the series present in both: a decrease
/// is a reset (the increase is the new value); a series absent from `prev` counts nothing.
pub fn increase(prev: &Snapshot, cur: &Snapshot) -> f64 {
    cur.iter()
        .filter_map(|(k, &v)| prev.get(k).map(|&p| if v >= p { v - p } else { v }))
        .sum()
}
