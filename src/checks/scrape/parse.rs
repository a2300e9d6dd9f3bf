//! The Prometheus text exposition format (version 0.0.4; OpenMetrics text is read too, its
//! `# EOF` and exemplars ignored), parsed into plain series.
//!
//! Every sample line becomes one [`Series`] under its full name, so histogram and summary
//! parts (`x_bucket{le="0.5"}`, `x_sum`, `x_count`, `x{quantile="0.9"}`) are selected like any
//! other series. Timestamps are read and ignored: a scrape's time is when backstop took it.
//! NaN and infinite values parse (they are legal here); whether they can be judged is decided
//! where a series is selected. A malformed line fails the whole scrape, as it does for
//! Prometheus: a half-read exposition could silently drop the series a check needs.

use std::collections::BTreeSet;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// Label pairs in the order written, values unescaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// A parsed exposition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    pub series: Vec<Series>,
    /// Metric names that `# HELP` or `# TYPE` lines declare, with or without samples (a
    /// labelled counter is often declared before its first series exists).
    pub declared: BTreeSet<String>,
}

impl Exposition {
    /// Whether the exposition knows `metric`: a sample of it, or a declaration of it or of
    /// the family it belongs to (`x` declares `x_total`, `x_bucket`, `x_count`, `x_sum`).
    pub fn knows(&self, metric: &str) -> bool {
        self.declared.contains(metric)
            || ["_total", "_bucket", "_count", "_sum", "_created"]
                .iter()
                .filter_map(|s| metric.strip_suffix(s))
                .any(|family| self.declared.contains(family))
            || self.series.iter().any(|s| s.name == metric)
    }
}

/// A line that is not valid exposition text.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, ParseError> {
    let mut out = Exposition::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let error = |message: String| ParseError {
            line: i + 1,
            message,
        };
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if let (Some("HELP" | "TYPE"), Some(name)) = (words.next(), words.next()) {
                out.declared.insert(name.to_string());
            }
            continue;
        }
        out.series.push(sample(line).map_err(error)?);
    }
    Ok(out)
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// Splits a leading metric or label name off `s`.
fn name(s: &str) -> Option<(&str, &str)> {
    let end = s
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(s.len(), |(i, _)| i);
    (end > 0).then(|| s.split_at(end))
}

fn sample(line: &str) -> Result<Series, String> {
    let (metric, mut rest) =
        name(line).ok_or_else(|| format!("expected a metric name, found {:?}", clip(line)))?;
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(after)?;
        labels = parsed;
        rest = after;
    }
    if rest.trim().is_empty() {
        return Err(format!("{metric} has no value"));
    }
    if !rest.starts_with([' ', '\t']) {
        return Err(format!(
            "expected a space before the value of {metric}, found {:?}",
            clip(rest)
        ));
    }
    let mut words = rest.split_whitespace();
    let value_text = words.next().unwrap_or_default();
    let value = number(value_text).ok_or_else(|| format!("{value_text:?} is not a number"))?;
    match words.next() {
        None => {}
        // An OpenMetrics exemplar follows: ignored.
        Some(w) if w.starts_with('#') => {}
        Some(ts) => {
            number(ts).ok_or_else(|| format!("{ts:?} is not a timestamp"))?;
            if let Some(extra) = words.next().filter(|w| !w.starts_with('#')) {
                return Err(format!("unexpected {extra:?} after the timestamp"));
            }
        }
    }
    Ok(Series {
        name: metric.to_string(),
        labels,
        value,
    })
}

/// Go's ParseFloat forms: decimals, exponents, `NaN`, `+Inf`, `-Inf` (Rust reads the same
/// spellings, case-insensitively).
fn number(s: &str) -> Option<f64> {
    s.parse().ok()
}

/// The labels after `{`, up to and including `}`: `a="x",b="y"` with an optional trailing
/// comma and blanks around the pairs.
type Labels = Vec<(String, String)>;

fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels: Labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let (label, rest) =
            name(s).ok_or_else(|| format!("expected a label name, found {:?}", clip(s)))?;
        if label.contains(':') {
            return Err(format!("{label:?} is not a label name"));
        }
        let rest = rest.trim_start();
        let rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected '=' after label {label}"))?
            .trim_start();
        let rest = rest
            .strip_prefix('"')
            .ok_or_else(|| format!("expected '\"' to open the value of label {label}"))?;
        let (value, rest) = quoted(rest).map_err(|e| format!("label {label}: {e}"))?;
        if labels.iter().any(|(l, _)| l == label) {
            return Err(format!("label {label} given twice"));
        }
        labels.push((label.to_string(), value));
        s = rest.trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err(format!(
                "expected ',' or '}}' after label {label}, found {:?}",
                clip(s)
            ));
        }
    }
}

/// A label value after its opening quote: unescapes `\\`, `\"` and `\n`, returns the rest
/// after the closing quote.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => out.push('\\'),
                Some((_, '"')) => out.push('"'),
                Some((_, 'n')) => out.push('\n'),
                Some((_, other)) => return Err(format!("invalid escape \\{other}")),
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("unterminated value".into())
}

/// The exposition as text that [`parse`] reads back to an equal value: one `# TYPE NAME
/// untyped` line per declared name, then one line per series with its labels escaped and its
/// value written exactly (shortest round-trip digits; `NaN`, `+Inf`, `-Inf` as Prometheus
/// spells them). Timestamps were dropped by the parser and are not written. It exists for the
/// fuzzer's round trip (`crate::fuzzing::exposition`) and for tests that build expositions.
pub fn render(exposition: &Exposition) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for name in &exposition.declared {
        let _ = writeln!(out, "# TYPE {name} untyped");
    }
    for series in &exposition.series {
        out.push_str(&series.name);
        if !series.labels.is_empty() {
            out.push('{');
            for (i, (label, value)) in series.labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{label}=\"");
                crate::metrics::escape_label_value(&mut out, value);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {}", render_number(series.value));
    }
    out
}

fn render_number(v: f64) -> String {
    match v {
        v if v.is_nan() => "NaN".into(),
        f64::INFINITY => "+Inf".into(),
        f64::NEG_INFINITY => "-Inf".into(),
        // Debug, unlike Display, switches to an exponent for very large and small values
        // (`1e-7`, not `0.0000001`); both print the shortest digits that read back exactly.
        v => format!("{v:?}"),
    }
}

/// The start of a long line, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Series {
        let e = parse(line).unwrap();
        assert_eq!(e.series.len(), 1, "{e:?}");
        e.series.into_iter().next().unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_full_exposition_with_every_metric_type() {
        let text = r#"# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# A plain comment.
metric_without_timestamp_and_labels 12.47
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.99"} 76656
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
"#;
        let e = parse(text).unwrap();
        let names: Vec<&str> = e.series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "http_requests_total",
                "http_requests_total",
                "metric_without_timestamp_and_labels",
                "http_request_duration_seconds_bucket",
                "http_request_duration_seconds_bucket",
                "http_request_duration_seconds_sum",
                "http_request_duration_seconds_count",
                "rpc_duration_seconds",
                "rpc_duration_seconds_sum",
                "rpc_duration_seconds_count",
            ]
        );
        assert_eq!(
            e.series[1].labels,
            labels(&[("method", "post"), ("code", "400")])
        );
        assert_eq!(e.series[1].value, 3.0);
        assert_eq!(e.series[4].labels, labels(&[("le", "+Inf")]));
        assert_eq!(e.series[8].value, 1.7560473e7);
        assert!(e.declared.contains("http_request_duration_seconds"));
        assert!(e.knows("http_request_duration_seconds_bucket"));
        assert!(e.knows("metric_without_timestamp_and_labels"));
        assert!(!e.knows("nope_total"));
    }

    #[test]
    fn label_values_keep_commas_equals_braces_and_unescape() {
        let s = one(r#"x{path="/a,b=c}",msg="say \"hi\"\\ \n",empty=""} 1"#);
        assert_eq!(
            s.labels,
            labels(&[
                ("path", "/a,b=c}"),
                ("msg", "say \"hi\"\\ \n"),
                ("empty", ""),
            ])
        );
    }

    #[test]
    fn blanks_trailing_commas_and_empty_braces() {
        assert_eq!(
            one("x{ a = \"1\" , b=\"2\", } 5").labels,
            labels(&[("a", "1"), ("b", "2")])
        );
        assert!(one("x{} 5").labels.is_empty());
        assert_eq!(one("x\t5").value, 5.0);
        assert_eq!(one("  x 5  \r").value, 5.0);
        assert_eq!(one("ns:x_total 5").name, "ns:x_total");
    }

    #[test]
    fn special_values_parse_and_are_judged_elsewhere() {
        assert!(one("x NaN").value.is_nan());
        assert_eq!(one("x +Inf").value, f64::INFINITY);
        assert_eq!(one("x -Inf").value, f64::NEG_INFINITY);
        assert_eq!(one("x -1.5e-3").value, -0.0015);
    }

    #[test]
    fn openmetrics_text_is_read() {
        let text = "# TYPE foo counter\nfoo_total 17.0 1520879607.789 # {id=\"abc\"} 1.0\nfoo_created 1520872607.123\n# EOF\n";
        let e = parse(text).unwrap();
        assert_eq!(e.series[0].value, 17.0);
        assert!(e.knows("foo_total"));
    }

    #[test]
    fn malformed_lines_fail_the_scrape_with_their_line_number() {
        for (text, needle) in [
            ("ok 1\nx{a=\"1\" 2", "line 2: expected ',' or '}'"),
            ("x{a=1} 2", "expected '\"'"),
            ("x{a=\"1} 2", "unterminated"),
            ("x{a=\"\\t\"} 2", "invalid escape"),
            ("x{a=\"1\",a=\"2\"} 2", "given twice"),
            ("x", "has no value"),
            ("x{} ", "has no value"),
            ("x abc", "\"abc\" is not a number"),
            ("x 1 12:00", "not a timestamp"),
            ("x 1 2 3", "unexpected \"3\""),
            ("9x 1", "expected a metric name"),
            ("x{9=\"1\"} 1", "expected a label name"),
            ("x{a:b=\"1\"} 1", "not a label name"),
            ("x{a=\"1\"}2", "expected a space"),
            ("x 0x10", "not a number"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn render_writes_text_that_parses_back_to_the_same_exposition() {
        let text = "# HELP a_total Requests.\n# TYPE a_total counter\n\
            a_total{path=\"/x,y=\\\"z\\\"}\",msg=\"back\\\\slash\\nline\"} 1027 1395066363000\n\
            b{le=\"+Inf\"} +Inf\nc -Inf\nd NaN\ne 1e-7\nf -0\ng 1.7976931348623157e308\n\
            h 5e-324\ni{} 0.1\n# EOF\n";
        let parsed = parse(text).unwrap();
        let rendered = render(&parsed);
        let again = parse(&rendered).unwrap();
        assert_eq!(again.declared, parsed.declared);
        assert_eq!(again.series.len(), parsed.series.len());
        for (a, b) in again.series.iter().zip(&parsed.series) {
            assert_eq!((&a.name, &a.labels), (&b.name, &b.labels), "{rendered}");
            assert!(
                a.value.to_bits() == b.value.to_bits() || (a.value.is_nan() && b.value.is_nan()),
                "{} became {} in {rendered}",
                b.value,
                a.value
            );
        }
        assert_eq!(parsed.series[0].labels[1].1, "back\\slash\nline");
    }

    #[test]
    fn render_spells_values_and_escapes_as_prometheus_does() {
        let text = "# TYPE x counter\nx{a=\"q\\\"\\\\\\n\"} +Inf\ny NaN\nz -Inf\nw 1e-7\nv 3\n";
        assert_eq!(parse(text).unwrap().series[0].labels[0].1, "q\"\\\n");
        assert_eq!(
            render(&parse(text).unwrap()),
            text.replace("counter", "untyped").replace(" 3\n", " 3.0\n")
        );
        assert_eq!(render(&Exposition::default()), "");
    }

    #[test]
    fn empty_and_comment_only_expositions_have_no_series() {
        assert!(parse("").unwrap().series.is_empty());
        assert!(parse("# HELP x y\n\n# TYPE x gauge\n")
            .unwrap()
            .series
            .is_empty());
        assert!(parse("# TYPE x gauge\n").unwrap().knows("x"));
    }
}
