//! Sparklines for `backstop explain`: a check's samples as one line of Unicode blocks, the
//! level its limit falls at, and the condemning run marked beneath. Pure: values in, text out,
//! so a terminal and a test see the same thing.

use crate::evidence::CheckEvidence;
use crate::judge::observation::Sample;
use crate::judge::Rule;

/// Columns of a sparkline in `explain`: fits an 80-column terminal with its indent and frame.
pub const WIDTH: usize = 60;
/// Eight levels, lowest first.
const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// A column whose samples measured nothing (an error, no data, not a number).
const MISSING: char = '·';
/// Beneath a column holding a sample of the condemning run.
const MARK: char = '^';

/// A check's limit in the samples' units, and which side of it fails.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// Values above it fail (`max`, `max_ratio` × baseline, `burn_rate`, new alerts).
    Upper(f64),
    /// Values below it fail (`min`, `min_ratio` × baseline).
    Lower(f64),
}

impl Limit {
    /// The first of `rules` that draws as a line; ratio rules need the baseline. Status codes
    /// are a set, not a level: none.
    pub fn of(rules: &[Rule], baseline: Option<f64>) -> Option<Limit> {
        rules.iter().find_map(|r| match r {
            Rule::Max(m) | Rule::BurnRate(m) => Some(Limit::Upper(*m)),
            Rule::Min(m) => Some(Limit::Lower(*m)),
            Rule::MaxRatio(x) => baseline.map(|b| Limit::Upper(x * b)),
            Rule::MinRatio(x) => baseline.map(|b| Limit::Lower(x * b)),
            Rule::NoNewAlert => Some(Limit::Upper(0.0)),
            Rule::ExpectStatus(_) => None,
        })
    }

    fn value(self) -> f64 {
        match self {
            Limit::Upper(v) | Limit::Lower(v) => v,
        }
    }
}

/// One drawn sparkline.
#[derive(Debug, Clone, PartialEq)]
pub struct Sparkline {
    /// Exactly the requested width of block characters (or [`MISSING`]).
    pub bars: String,
    /// As wide as `bars`: [`MARK`] beneath the columns of the marked samples, else spaces.
    pub marks: String,
    /// The scale: the lowest block is `low`, the highest `high` (the limit included, so it is
    /// always on the scale).
    pub low: f64,
    pub high: f64,
    /// The block the limit falls at.
    pub limit: Option<char>,
}

/// Draws `points` (value, marked), oldest first, in exactly `width` columns: more points
/// than columns share a column (drawn at its worst value: the highest, or the lowest under a
/// lower limit); fewer are widened. `None` when there is nothing to draw.
pub fn draw(
    points: &[(Option<f64>, bool)],
    limit: Option<Limit>,
    width: usize,
) -> Option<Sparkline> {
    let n = points.len();
    if n == 0 || width == 0 {
        return None;
    }
    let finite = |v: &Option<f64>| v.filter(|x| x.is_finite());
    let values = points
        .iter()
        .filter_map(|(v, _)| finite(v))
        .chain(limit.map(Limit::value).filter(|v| v.is_finite()));
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let level = |v: f64| -> char {
        if high <= low {
            return BLOCKS[3];
        }
        let at = ((v - low) / (high - low) * 7.0).round();
        BLOCKS[at.clamp(0.0, 7.0) as usize]
    };
    let lower = matches!(limit, Some(Limit::Lower(_)));
    let (mut bars, mut marks) = (String::new(), String::new());
    for c in 0..width {
        let from = c * n / width;
        let to = ((c + 1) * n / width).max(from + 1);
        let column = &points[from..to];
        let worst = column.iter().filter_map(|(v, _)| finite(v)).reduce(|a, b| {
            if lower {
                a.min(b)
            } else {
                a.max(b)
            }
        });
        bars.push(worst.map_or(MISSING, level));
        marks.push(if column.iter().any(|(_, m)| *m) {
            MARK
        } else {
            ' '
        });
    }
    Some(Sparkline {
        bars,
        marks,
        low,
        high,
        limit: limit.map(|l| level(l.value())).filter(|_| low <= high),
    })
}

/// A check's chart for `explain`: its whole observation (`series`, or the newest `samples` of
/// a document written before it was kept), the limit's level, the condemning run marked.
/// Empty when there are no samples.
pub fn chart(c: &CheckEvidence) -> String {
    let samples: Vec<&Sample> = if c.series.is_empty() {
        c.track.samples.iter().collect()
    } else {
        c.series.iter().collect()
    };
    let run = c.track.condemning;
    let points: Vec<(Option<f64>, bool)> = samples
        .iter()
        .map(|s| (s.value, run.is_some_and(|r| r.contains(s.at))))
        .collect();
    let limit = Limit::of(&c.track.rules, c.track.baseline);
    let (Some(line), Some(first), Some(last)) =
        (draw(&points, limit, WIDTH), samples.first(), samples.last())
    else {
        return String::new();
    };
    let num = crate::judge::num;
    let scale = if line.low <= line.high {
        format!(
            ", {} {} .. {} {}",
            BLOCKS[0],
            num(line.low),
            BLOCKS[7],
            num(line.high)
        )
    } else {
        String::new()
    };
    let limit_text = match (limit, line.limit) {
        (Some(Limit::Upper(v)), Some(at)) => format!("; limit {} (above fails) at {at}", num(v)),
        (Some(Limit::Lower(v)), Some(at)) => format!("; limit {} (below fails) at {at}", num(v)),
        _ => String::new(),
    };
    let mut out = format!(
        "    chart: {} sample{} {} .. {}{scale}{limit_text}\n    |{}|\n",
        samples.len(),
        if samples.len() == 1 { "" } else { "s" },
        first.at.format("%H:%M:%S"),
        last.at.format("%H:%M:%S"),
        line.bars
    );
    if let Some(r) = run.filter(|_| line.marks.contains(MARK)) {
        out.push_str(&format!(
            "    |{}| {MARK} condemning run {} .. {}\n",
            line.marks,
            r.from.format("%H:%M:%S"),
            r.to.format("%H:%M:%S")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(values: &[f64]) -> Vec<(Option<f64>, bool)> {
        values.iter().map(|v| (Some(*v), false)).collect()
    }

    #[test]
    fn values_become_blocks_on_a_scale_that_holds_the_limit() {
        let s = draw(&plain(&[0.0, 1.0, 2.0, 7.0]), Some(Limit::Upper(3.5)), 4).unwrap();
        assert_eq!(s.bars, "▁▂▃█");
        assert_eq!(s.limit, Some('▅'));
        assert_eq!((s.low, s.high), (0.0, 7.0));
        // The limit above every value widens the scale: the values sit low.
        let s = draw(&plain(&[1.0, 2.0]), Some(Limit::Upper(8.0)), 2).unwrap();
        assert_eq!(s.bars, "▁▂");
        assert_eq!(s.limit, Some('█'));
        // A flat line sits in the middle.
        assert_eq!(draw(&plain(&[5.0; 3]), None, 3).unwrap().bars, "▄▄▄");
    }

    #[test]
    fn the_width_is_fixed_whatever_the_number_of_samples() {
        for n in [1, 3, 59, 60, 61, 1000, 2000] {
            let values: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let s = draw(&plain(&values), None, WIDTH).unwrap();
            assert_eq!(s.bars.chars().count(), WIDTH, "{n} samples");
            assert_eq!(s.marks.chars().count(), WIDTH, "{n} samples");
        }
        // Fewer samples than columns: each is widened, in order.
        assert_eq!(draw(&plain(&[0.0, 7.0]), None, 6).unwrap().bars, "▁▁▁███");
    }

    #[test]
    fn shared_columns_show_the_worst_value_for_the_limit() {
        let v = plain(&[1.0, 9.0, 5.0, 5.0]);
        let up = draw(&v, Some(Limit::Upper(6.0)), 2).unwrap();
        let down = draw(&v, Some(Limit::Lower(2.0)), 2).unwrap();
        assert_eq!(up.bars, "█▅");
        assert_eq!(down.bars, "▁▅");
    }

    #[test]
    fn nothing_measured_is_a_dot_and_nothing_at_all_is_no_line() {
        let points = [
            (Some(1.0), false),
            (None, false),
            (Some(f64::NAN), false),
            (Some(3.0), false),
        ];
        assert_eq!(draw(&points, None, 4).unwrap().bars, "▁··█");
        let blank = draw(&[(None, false), (None, true)], None, 2).unwrap();
        assert_eq!(blank.bars, "··");
        assert_eq!(blank.limit, None);
        assert_eq!(draw(&[], Some(Limit::Upper(1.0)), WIDTH), None);
        assert_eq!(draw(&plain(&[1.0]), None, 0), None);
        let inf = draw(&[(Some(f64::INFINITY), false)], Some(Limit::Lower(2.0)), 1).unwrap();
        assert_eq!((inf.bars.as_str(), inf.limit), ("·", Some('▄')));
    }

    #[test]
    fn the_condemning_run_is_marked_beneath_its_columns() {
        let mut points = plain(&[1.0, 1.0, 1.0, 9.0, 9.0, 9.0]);
        for p in &mut points[3..] {
            p.1 = true;
        }
        let s = draw(&points, Some(Limit::Upper(5.0)), 6).unwrap();
        assert_eq!(s.bars, "▁▁▁███");
        assert_eq!(s.marks, "   ^^^");
        // Shared columns: marked when any of their samples is.
        assert_eq!(draw(&points, None, 4).unwrap().marks, "  ^^");
    }

    #[test]
    fn limits_come_from_the_rules_and_the_baseline() {
        assert_eq!(
            Limit::of(&[Rule::ExpectStatus(vec![200]), Rule::Max(0.5)], None),
            Some(Limit::Upper(0.5))
        );
        assert_eq!(Limit::of(&[Rule::MaxRatio(2.0)], None), None);
        assert_eq!(
            Limit::of(&[Rule::MinRatio(0.5)], Some(4.0)),
            Some(Limit::Lower(2.0))
        );
        assert_eq!(Limit::of(&[Rule::ExpectStatus(vec![200])], Some(1.0)), None);
    }

    #[test]
    fn explain_charts_a_condemned_check() {
        use crate::sinks::{testing, AlertKind};
        let mut ev = testing::alert(AlertKind::Condemned).evidence.unwrap();
        let c = &mut ev.checks[1];
        let at = c.track.samples[0].at;
        c.series = (0..120)
            .map(|i| {
                let mut s = c.track.samples[0].clone();
                s.at = at + chrono::Duration::seconds(i);
                s.value = Some(if i < 100 { 0.1 } else { 0.9 });
                s
            })
            .collect();
        c.track.condemning = Some(crate::model::Span {
            from: at + chrono::Duration::seconds(100),
            to: at + chrono::Duration::seconds(119),
        });
        let text = chart(c);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].contains("chart: 120 samples"), "{text}");
        assert!(lines[0].contains("limit 0.5 (above fails) at ▅"), "{text}");
        assert_eq!(
            lines[1],
            format!("    |{}{}|", "▁".repeat(50), "█".repeat(10))
        );
        assert_eq!(lines[2].split('|').nth(1).unwrap().trim(), "^".repeat(10));
        assert!(lines[2].contains("^ condemning run"), "{text}");
        assert!(ev.report().contains(&text), "explain shows the chart");
        // A document without series charts its newest samples; none at all draws nothing.
        ev.checks[0].track.samples.clear();
        assert_eq!(chart(&ev.checks[0]), "");
    }
}
