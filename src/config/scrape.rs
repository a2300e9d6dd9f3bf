//! `kind = "scrape"` checks: the mode, the series it selects and its windows.

use std::collections::BTreeMap;
use std::time::Duration;

use super::fields::Table;
use super::validate::{consume, threshold_rules};
use super::{LabelMatch, Probe, ScrapeMode, ScrapeProbe, SeriesSelector};
use crate::judge::Rule;

const DEFAULT_RATE_WINDOW: Duration = Duration::from_secs(60);

/// Parses the scrape-specific keys of a check; `url` and `timeout` are already read.
pub(super) fn scrape(
    t: &Table,
    url: Option<String>,
    timeout: Duration,
    interval: Duration,
) -> (Option<Probe>, Vec<Rule>) {
    let (rules, baseline_window) = threshold_rules(t, "scrape");
    let name = t.string("mode");
    let mode = mode(t, name.as_deref());
    let given_window = t.duration("rate_window");
    let gauge = matches!(name.as_deref(), None | Some("gauge"));
    // The min_traffic counter's rate is taken over rate_window too, whatever the mode.
    let traffic = t.has("min_traffic");
    let counts = matches!(name.as_deref(), Some("rate" | "ratio" | "quantile")) || traffic;
    if gauge && !traffic && given_window.is_some() {
        t.error(
            "rate_window",
            "only applies to mode = \"rate\", \"ratio\" or \"quantile\", or with min_traffic",
        );
    }
    let rate_window = given_window.unwrap_or(DEFAULT_RATE_WINDOW);
    if counts && rate_window < interval * 2 {
        let shown = humantime::format_duration(rate_window);
        let what = if given_window.is_some() {
            shown.to_string()
        } else {
            format!("the default {shown}")
        };
        t.error(
            "rate_window",
            format!(
                "{what} is shorter than two intervals ({}): a rate needs two scrapes inside its window",
                humantime::format_duration(interval * 2)
            ),
        );
    }
    let probe = match (url, mode) {
        (Some(url), Some(mode)) => Some(Probe::Scrape(ScrapeProbe {
            url,
            timeout,
            mode,
            rate_window,
            baseline_window,
        })),
        _ => None,
    };
    (probe, rules)
}

fn mode(t: &Table, name: Option<&str>) -> Option<ScrapeMode> {
    if name != Some("ratio") {
        for key in ["numerator", "denominator"] {
            if t.has(key) {
                t.error(key, "only applies to mode = \"ratio\"");
                consume(t, key);
            }
        }
    }
    if name != Some("quantile") && t.has("quantile") {
        t.error("quantile", "only applies to mode = \"quantile\"");
        consume(t, "quantile");
    }
    match name {
        None | Some("gauge") => selector(t).map(ScrapeMode::Gauge),
        Some("rate") => selector(t).map(ScrapeMode::Rate),
        Some("quantile") => {
            let q = quantile(t);
            let buckets = bucket_selector(t);
            Some(ScrapeMode::Quantile {
                quantile: q?,
                buckets: buckets?,
            })
        }
        Some("ratio") => {
            for key in ["metric", "labels"] {
                if t.has(key) {
                    t.error(
                        key,
                        "does not apply to mode = \"ratio\": give numerator and denominator tables",
                    );
                    consume(t, key);
                }
            }
            let numerator = side(t, "numerator");
            let denominator = side(t, "denominator");
            Some(ScrapeMode::Ratio {
                numerator: numerator?,
                denominator: denominator?,
            })
        }
        Some(other) => {
            // Read the selection keys so they are not also reported as unknown.
            for key in ["metric", "labels", "numerator", "denominator", "quantile"] {
                if t.has(key) {
                    consume(t, key);
                }
            }
            t.error(
                "mode",
                format!("unknown value {other:?}; expected \"gauge\", \"rate\", \"ratio\" or \"quantile\""),
            );
            None
        }
    }
}

/// `quantile` of `mode = "quantile"`: required, within [0, 1] (PromQL answers ±Inf outside,
/// which no rule could judge).
fn quantile(t: &Table) -> Option<f64> {
    if !t.has("quantile") {
        t.error(
            "quantile",
            "is required with mode = \"quantile\": a number from 0 to 1, e.g. 0.9 for p90",
        );
        return None;
    }
    let q = t.number("quantile")?;
    if !(0.0..=1.0).contains(&q) {
        t.error(
            "quantile",
            format!("must be a number from 0 to 1 (0.9 for p90), found {q}"),
        );
        return None;
    }
    Some(q)
}

/// `metric` + `labels` of `mode = "quantile"`: a histogram's `_bucket` series. `le` is what
/// the quantile is computed across, so selecting on it would leave one bucket.
fn bucket_selector(t: &Table) -> Option<SeriesSelector> {
    let s = selector(t)?;
    let mut ok = true;
    if !s.metric.ends_with("_bucket") {
        t.error(
            "metric",
            format!(
                "{:?} is not a histogram's bucket series: mode = \"quantile\" reads the series ending in _bucket (e.g. {}_bucket)",
                s.metric, s.metric
            ),
        );
        ok = false;
    }
    if s.labels.contains_key("le") {
        t.error(
            "labels.le",
            "cannot be selected with mode = \"quantile\": the quantile is computed across every bucket bound (le)",
        );
        ok = false;
    }
    ok.then_some(s)
}

/// `numerator` or `denominator`: a table with its own `metric` and `labels`.
fn side(t: &Table, key: &str) -> Option<SeriesSelector> {
    if !t.has(key) {
        t.error(
            key,
            "is required with mode = \"ratio\": a table such as { metric = \"http_requests_total\" }",
        );
        return None;
    }
    let sub = t.table(key)?;
    let s = selector(&sub);
    sub.finish();
    s
}

/// `metric` and `labels` of one table.
pub(super) fn selector(t: &Table) -> Option<SeriesSelector> {
    let metric = t.required_string("metric").filter(|m| {
        let ok = valid_name(m, true);
        if !ok {
            t.error(
                "metric",
                format!("{m:?} is not a metric name (letters, digits, '_' and ':', not starting with a digit)"),
            );
        }
        ok
    });
    let labels = label_matchers(t);
    for name in labels.keys() {
        if !valid_name(name, false) {
            t.error(
                &format!("labels.{name}"),
                "is not a label name (letters, digits and '_', not starting with a digit)",
            );
        }
    }
    Some(SeriesSelector {
        metric: metric?,
        labels,
    })
}

/// Prometheus metric names (`[a-zA-Z_:][a-zA-Z0-9_:]*`) and label names (no `:`).
fn valid_name(name: &str, colon: bool) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':');
    name.chars().next().is_some_and(|c| !c.is_ascii_digit()) && name.chars().all(ok)
}

/// `labels`: each value a string (`=`) or a one-key table `{ not | regex | not_regex = "..." }`.
fn label_matchers(t: &Table) -> BTreeMap<String, LabelMatch> {
    let mut out = BTreeMap::new();
    let Some(labels) = t.table("labels") else {
        return out;
    };
    for name in labels.keys() {
        let key = name.as_str();
        if let Some(sub) = labels.table_if_table(key) {
            let given: Vec<String> = sub.keys();
            let m = match given.as_slice() {
                [k] if k == "not" => sub.string("not").map(LabelMatch::Ne),
                [k] if k == "regex" || k == "not_regex" => {
                    sub.string(k).and_then(|p| match LabelMatch::anchored(&p) {
                        Ok(r) if k == "regex" => Some(LabelMatch::Re(r)),
                        Ok(r) => Some(LabelMatch::NotRe(r)),
                        Err(e) => {
                            sub.error(k, format!("is not a valid regex: {e}"));
                            None
                        }
                    })
                }
                _ => {
                    labels.error(
                        key,
                        "expected a string or one of { not = \"...\" }, { regex = \"...\" }, { not_regex = \"...\" }",
                    );
                    None
                }
            };
            if let Some(m) = m {
                out.insert(name.clone(), m);
            }
        } else if let Some(v) = labels.string(key) {
            if let Some(hint) = promql_operator(key, &v) {
                labels.error(key, hint);
            } else {
                out.insert(name.clone(), LabelMatch::Eq(v));
            }
        }
    }
    out
}

/// A plain label value that starts with a PromQL operator (`code = "!~5.."`) would be matched
/// literally and select nothing, silently: what to write instead.
fn promql_operator(name: &str, value: &str) -> Option<String> {
    let (table, rest) = [("!~", "not_regex"), ("=~", "regex"), ("!=", "not")]
        .into_iter()
        .find_map(|(op, table)| value.strip_prefix(op).map(|rest| (table, rest)))?;
    Some(format!(
        "{value:?} would match the text {value:?} exactly (a plain string is `=`); for PromQL's {name}{}{rest:?} write {name} = {{ {table} = {rest:?} }}",
        &value[..2]
    ))
}
