//! The per-watch series (`backstop_watch_state`, `backstop_observation_started_timestamp_seconds`,
//! `backstop_verdicts_total`, and `backstop_checks_total` without `per_check`), kept in one
//! table of atomics and written straight into the exposition text.
//!
//! Why not the `prometheus` crate's vectors, as for every other family: with thousands of
//! watches these are nearly all of `/metrics`, and the crate builds every series as a
//! protobuf message (label pairs, strings, a sort) on each scrape before encoding it: 3,400
//! watches took about 50 ms to render under load, against a 20 ms target (bench/RESULTS.md).
//! Each of its series also keeps its own label pairs, several hundred bytes, ten times per
//! watch. Here a watch is one row of counters, and a scrape writes its lines directly, in
//! the same text format (labels sorted by name, values escaped) the crate writes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

use crate::judge::observation::VerdictKind;
use crate::status::WatchState;

/// The `result` label of check samples, in the order of a row's `checks`.
pub(super) const CHECK_RESULTS: [&str; 4] = ["pass", "fail", "error", "no_data"];

/// `started` when the watch has no such series (removed from the config).
const NO_SERIES: u64 = u64::MAX;

/// Every watch's row, by name (so a scrape lists them in a stable order).
pub(super) struct WatchTable {
    /// Whether `backstop_checks_total` is rendered here; with `per_check` it is a vector of
    /// the registry, with a `check` label.
    checks: bool,
    rows: RwLock<BTreeMap<Box<str>, Arc<Row>>>,
}

/// One watch's series.
struct Row {
    /// Samples by result, as [`CHECK_RESULTS`].
    checks: [AtomicU64; 4],
    /// Verdicts, as [`VerdictKind::ALL`].
    verdicts: [AtomicU64; 4],
    /// 1 + the index of the current state in [`WatchState::ALL`]; 0: no series.
    state: AtomicU8,
    /// The bits of the observation start (unix seconds, 0 when not observing), or
    /// [`NO_SERIES`].
    started: AtomicU64,
}

impl Default for Row {
    fn default() -> Self {
        Row {
            checks: Default::default(),
            verdicts: Default::default(),
            state: AtomicU8::new(0),
            started: AtomicU64::new(0f64.to_bits()),
        }
    }
}

impl WatchTable {
    pub(super) fn new(checks: bool) -> Self {
        WatchTable {
            checks,
            rows: RwLock::default(),
        }
    }

    /// The watch's row, created (all zero) if it has none.
    fn row(&self, watch: &str) -> Arc<Row> {
        if let Some(r) = self
            .rows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(watch)
        {
            return Arc::clone(r);
        }
        let mut rows = self.rows.write().unwrap_or_else(|e| e.into_inner());
        Arc::clone(rows.entry(watch.into()).or_default())
    }

    /// A watch (re)starting: its series exist from now on, its observation start at 0 until
    /// the actor resumes or starts one.
    pub(super) fn register(&self, watch: &str) {
        self.row(watch)
            .started
            .store(0f64.to_bits(), Ordering::Relaxed);
    }

    /// A watch removed from the config: its gauges go (a stale `failed` must not keep an
    /// alert firing); its counters stay, their history is still true.
    pub(super) fn forget(&self, watch: &str) {
        if let Some(r) = self
            .rows
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(watch)
        {
            r.state.store(0, Ordering::Relaxed);
            r.started.store(NO_SERIES, Ordering::Relaxed);
        }
    }

    pub(super) fn set_state(&self, watch: &str, state: WatchState) {
        let i = WatchState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or(0);
        self.row(watch).state.store(i as u8 + 1, Ordering::Relaxed);
    }

    /// One check sample, by its index in [`CHECK_RESULTS`].
    pub(super) fn check_sample(&self, watch: &str, result: usize) {
        if let Some(c) = self.row(watch).checks.get(result) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn verdict(&self, watch: &str, verdict: VerdictKind) {
        let row = self.row(watch);
        if let Some(i) = VerdictKind::ALL.iter().position(|v| *v == verdict) {
            row.verdicts[i].fetch_add(1, Ordering::Relaxed);
        }
        row.started.store(0f64.to_bits(), Ordering::Relaxed);
    }

    pub(super) fn started(&self, watch: &str, at_unix: f64) {
        self.row(watch)
            .started
            .store(at_unix.to_bits(), Ordering::Relaxed);
    }

    /// Appends the table's families to an exposition. A family without series is left out,
    /// as the registry leaves out an empty vector.
    pub(super) fn render(&self, out: &mut String) {
        let rows = self.rows.read().unwrap_or_else(|e| e.into_inner());
        let mut family = Family::new(out);
        if self.checks {
            family.start(
                "backstop_checks_total",
                "Check samples taken by all the checks of a watch, by watch and result (pass, fail, error, no_data); [metrics] per_check adds a check label.",
                "counter",
            );
            family.counters(&rows, "result", &CHECK_RESULTS, |r| &r.checks);
        }
        family.start(
            "backstop_observation_started_timestamp_seconds",
            "Unix time the current observation of a watch started; 0 when not observing.",
            "gauge",
        );
        for (name, row) in rows.iter() {
            let bits = row.started.load(Ordering::Relaxed);
            if bits != NO_SERIES {
                family.line_unlabelled(name, f64::from_bits(bits));
            }
        }
        family.start(
            "backstop_verdicts_total",
            "Final verdicts on releases by watch and verdict (verified, condemned, inconclusive, superseded).",
            "counter",
        );
        let verdicts = VerdictKind::ALL.map(|v| v.as_str());
        family.counters(&rows, "verdict", &verdicts, |r| &r.verdicts);
        family.start(
            "backstop_watch_state",
            "1 for the current state of each watch (idle, observing, rolling_back, failed, paused); other states have no series.",
            "gauge",
        );
        for (name, row) in rows.iter() {
            let state = row.state.load(Ordering::Relaxed);
            if let Some(s) = (state as usize)
                .checked_sub(1)
                .and_then(|i| WatchState::ALL.get(i))
            {
                family.line(("state", s.as_str()), name, 1u64);
            }
        }
    }
}

/// Writes one family at a time; its `# HELP` and `# TYPE` lines only once it has a series.
struct Family<'a> {
    out: &'a mut String,
    /// The header of the family being written, until its first line.
    pending: Option<String>,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String) -> Self {
        Family {
            out,
            pending: None,
            name: "",
        }
    }

    fn start(&mut self, name: &'static str, help: &str, kind: &str) {
        self.name = name;
        self.pending = Some(format!(
            "# HELP {name} {}\n# TYPE {name} {kind}\n",
            help.replace('\\', "\\\\").replace('\n', "\\n")
        ));
    }

    fn header(&mut self) {
        if let Some(h) = self.pending.take() {
            self.out.push_str(&h);
        }
    }

    /// `name{label="value",watch="…"} v`: the other label sorts before `watch`, as every one
    /// used here does.
    fn line(&mut self, (label, value): (&str, &str), watch: &str, v: impl std::fmt::Display) {
        self.header();
        let _ = write!(self.out, "{}{{{label}=\"", self.name);
        escape_into(self.out, value);
        self.out.push_str("\",watch=\"");
        escape_into(self.out, watch);
        let _ = writeln!(self.out, "\"}} {v}");
    }

    /// One counter line per watch and label value: `values[i]` counts `pick(row)[i]`.
    fn counters(
        &mut self,
        rows: &BTreeMap<Box<str>, Arc<Row>>,
        label: &str,
        values: &[&str; 4],
        pick: fn(&Row) -> &[AtomicU64; 4],
    ) {
        for (name, row) in rows {
            for (value, n) in values.iter().zip(pick(row)) {
                self.line((label, value), name, n.load(Ordering::Relaxed));
            }
        }
    }

    fn line_unlabelled(&mut self, watch: &str, v: f64) {
        self.header();
        let _ = write!(self.out, "{}{{watch=\"", self.name);
        escape_into(self.out, watch);
        self.out.push_str("\"} ");
        float_into(self.out, v);
        self.out.push('\n');
    }
}

/// A label value as the text format escapes it: backslash, double quote, line feed (also the
/// inverse of the scrape parser's unescaping, for its renderer).
pub(crate) fn escape_into(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as the text format writes it (`+Inf`, `-Inf`, `NaN`, else the shortest
/// decimal that reads back the same).
fn float_into(out: &mut String, v: f64) {
    if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.is_nan() {
        out.push_str("NaN");
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_escaped_and_empty_families_left_out() {
        let t = WatchTable::new(true);
        let mut out = String::new();
        t.render(&mut out);
        assert_eq!(out, "", "no watch, no family");
        t.register("a\"b\\c\nd");
        t.set_state("a\"b\\c\nd", WatchState::Observing);
        t.check_sample("a\"b\\c\nd", 1);
        t.started("a\"b\\c\nd", 1.5);
        t.render(&mut out);
        assert!(
            out.contains("backstop_checks_total{result=\"fail\",watch=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{out}"
        );
        assert!(out.contains(
            "backstop_observation_started_timestamp_seconds{watch=\"a\\\"b\\\\c\\nd\"} 1.5\n"
        ));
        assert_eq!(out.matches("# TYPE backstop_watch_state gauge").count(), 1);
    }

    #[test]
    fn without_the_checks_family_only_the_other_three_are_written() {
        let t = WatchTable::new(false);
        t.register("shop");
        let mut out = String::new();
        t.render(&mut out);
        assert!(!out.contains("backstop_checks_total"), "{out}");
        assert!(out.contains("backstop_verdicts_total{verdict=\"condemned\",watch=\"shop\"} 0"));
        assert!(
            !out.contains("backstop_watch_state{"),
            "no state set yet: {out}"
        );
    }

    #[test]
    fn values_are_written_as_the_text_format_reads_them() {
        let mut s = String::new();
        for v in [
            0.0,
            1733212345.0,
            0.25,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            float_into(&mut s, v);
            s.push(' ');
        }
        assert_eq!(s, "0 1733212345 0.25 +Inf -Inf NaN ");
    }
}
