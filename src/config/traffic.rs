//! `min_traffic`: the request rate below which a check's sample is no data. Each check kind
//! that has traffic names its source its own way: a PromQL `query` for prometheus checks, a
//! counter (`metric` + `labels`) from the check's own scrapes for scrape checks.

use super::fields::Table;
use super::{MinTraffic, TrafficSource};

/// `min_traffic = { query, min }` on a prometheus check, `{ metric, labels, min }` on a scrape
/// check; an error on any other kind.
pub(super) fn min_traffic(t: &Table, kind: Option<&str>) -> Option<MinTraffic> {
    let m = t.table("min_traffic")?;
    let source = match kind {
        Some("prometheus") => query(&m),
        Some("scrape") => series(&m),
        Some(_) => {
            t.error(
                "min_traffic",
                "applies to prometheus and scrape checks only (it needs a request rate to read)",
            );
            return None;
        }
        None => None,
    };
    let min = m.number("min");
    if min.is_none() && !m.has("min") {
        m.error(
            "min",
            "is required: the request rate (per second) below which a sample is no data",
        );
    }
    m.finish();
    Some(MinTraffic {
        min: min?,
        source: source?,
    })
}

/// A prometheus check's traffic: `query`, parsed here so a typo is a config error.
fn query(m: &Table) -> Option<TrafficSource> {
    for key in ["metric", "labels"] {
        if m.has(key) {
            m.error(
                key,
                "prometheus checks take query: PromQL returning the request rate, e.g. sum(rate(http_requests_total[1m]))",
            );
            // Read, so it is reported once (misplaced) and not also as unknown.
            if m.table_if_table(key).is_none() {
                drop(m.string(key));
            }
        }
    }
    let query = m.required_string("query")?;
    if let Err(e) = crate::judge::lookback::lookback(&query) {
        m.error("query", format!("is not valid PromQL: {e}"));
        return None;
    }
    Some(TrafficSource::Query(query))
}

/// A scrape check's traffic: a counter, `metric` + `labels` as scrape checks select series.
fn series(m: &Table) -> Option<TrafficSource> {
    if m.has("query") {
        m.error(
            "query",
            "scrape checks take metric and labels: the request counter, e.g. { metric = \"http_requests_total\" }",
        );
        drop(m.string("query"));
    }
    super::scrape::selector(m).map(TrafficSource::Series)
}
