//! One check's samples as an inline SVG chart: the values over time with their states as
//! markers, the threshold lines, the baseline (value and window), the deployment and rollback
//! moments and the condemning run. Pure: a [`Chart`] in, markup out; maud escapes every text.

use chrono::{DateTime, Utc};
use maud::{html, Markup, PreEscaped};

use super::scale::{self, Linear};

/// Width and height of the SVG's coordinate system; the page scales it to fit.
pub const WIDTH: f64 = 760.0;
pub const HEIGHT: f64 = 310.0;
/// The plot area inside it.
pub const LEFT: f64 = 78.0;
pub const RIGHT: f64 = WIDTH - 24.0;
pub const TOP: f64 = 44.0;
pub const BOTTOM: f64 = 232.0;
/// Where samples without a value (errors, no data) are drawn: a lane under the time axis.
const LANE: f64 = BOTTOM + 36.0;

/// What a sample said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Pass,
    Fail,
    Error,
    NoData,
}

impl State {
    pub fn as_str(&self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Fail => "fail",
            State::Error => "error",
            State::NoData => "no data",
        }
    }

    /// The CSS class (no spaces).
    pub fn class(&self) -> &'static str {
        match self {
            State::Pass => "pass",
            State::Fail => "fail",
            State::Error => "error",
            State::NoData => "nodata",
        }
    }
}

/// One sample to plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub value: Option<f64>,
    pub state: State,
    /// The query's look-back reached before the deployment.
    pub mixed: bool,
    /// Part of the run that condemned the release.
    pub condemning: bool,
    /// What the sample said, for its tooltip (limit broken, error reason, note).
    pub text: String,
}

/// Which side of a threshold fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Values above fail.
    Upper,
    /// Values below fail.
    Lower,
    /// Values other than this (and the other expected ones) fail.
    Expected,
}

/// A horizontal limit line.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub bound: Bound,
    pub label: String,
}

/// The pre-deployment reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Baseline {
    pub value: f64,
    /// The window it was computed over, when known.
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// The pre-deployment series behind it, when known.
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// A vertical marker's meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MomentKind {
    Deployed,
    Judging,
    Rollback,
}

impl MomentKind {
    fn class(&self) -> &'static str {
        match self {
            MomentKind::Deployed => "deployed",
            MomentKind::Judging => "judging",
            MomentKind::Rollback => "rollback",
        }
    }
}

/// A moment drawn as a vertical line.
#[derive(Debug, Clone, PartialEq)]
pub struct Moment {
    pub at: DateTime<Utc>,
    pub kind: MomentKind,
    pub label: String,
}

/// Everything one chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Unique on the page: ids of the title and description derive from it.
    pub id: String,
    pub title: String,
    /// The y axis's label, with the unit.
    pub unit: String,
    pub points: Vec<Point>,
    pub thresholds: Vec<Threshold>,
    pub baseline: Option<Baseline>,
    pub moments: Vec<Moment>,
    /// First and last sample of the condemning run.
    pub condemning: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// The chart's scales, from everything it must show.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub x: Linear,
    pub y: Linear,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub values: scale::ValueAxis,
}

fn ms(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64
}

impl Chart {
    /// Scales that fit every sample, limit, baseline and moment, with a little air in time.
    pub fn frame(&self) -> Frame {
        let mut times: Vec<DateTime<Utc>> = self.points.iter().map(|p| p.at).collect();
        times.extend(self.moments.iter().map(|m| m.at));
        if let Some(b) = &self.baseline {
            times.extend(b.window.iter().flat_map(|(a, b)| [*a, *b]));
            times.extend(b.points.iter().map(|(t, _)| *t));
        }
        // No clock: a chart with nothing in time gets an arbitrary, fixed second.
        let first = times.iter().min().copied().unwrap_or(DateTime::UNIX_EPOCH);
        let last = times.iter().max().copied().unwrap_or(first);
        let pad = ((last - first) / 40).max(chrono::Duration::milliseconds(250));
        // Saturating: hostile times in a stored document must not panic the page.
        let (from, to) = (
            first.checked_sub_signed(pad).unwrap_or(first),
            last.checked_add_signed(pad).unwrap_or(last),
        );
        let mut values: Vec<f64> = self.points.iter().filter_map(|p| p.value).collect();
        values.extend(self.thresholds.iter().map(|t| t.value));
        if let Some(b) = &self.baseline {
            values.push(b.value);
            values.extend(b.points.iter().map(|(_, v)| *v));
        }
        let axis = scale::value_axis(values, 5);
        Frame {
            x: Linear::new((ms(from), ms(to)), (LEFT, RIGHT)),
            y: Linear::new((axis.lo, axis.hi), (BOTTOM, TOP)),
            from,
            to,
            values: axis,
        }
    }

    /// The chart as text: its alternative for screen readers and a summary under it.
    pub fn describe(&self) -> String {
        let count = |s: State| self.points.iter().filter(|p| p.state == s).count();
        let mut parts = vec![format!("{} samples of {}", self.points.len(), self.unit)];
        if let (Some(a), Some(b)) = (self.points.first(), self.points.last()) {
            parts.push(format!(
                "from {} to {} UTC",
                a.at.format("%H:%M:%S"),
                b.at.format("%H:%M:%S")
            ));
        }
        parts.push(format!(
            "{} pass, {} fail, {} error, {} no data",
            count(State::Pass),
            count(State::Fail),
            count(State::Error),
            count(State::NoData)
        ));
        for t in &self.thresholds {
            parts.push(t.label.clone());
        }
        if let Some(b) = &self.baseline {
            parts.push(format!("baseline {}", crate::judge::num(b.value)));
        }
        for m in &self.moments {
            parts.push(format!("{} at {}", m.label, m.at.format("%H:%M:%S")));
        }
        if let Some((a, b)) = self.condemning {
            parts.push(format!(
                "condemning run from {} to {}",
                a.format("%H:%M:%S"),
                b.format("%H:%M:%S")
            ));
        }
        parts.join("; ")
    }
}

fn px(v: f64) -> String {
    format!("{v:.1}")
}

/// The chart as an inline SVG element.
pub fn render(c: &Chart) -> Markup {
    let f = c.frame();
    let x = |t: DateTime<Utc>| f.x.map(ms(t));
    let y = |v: f64| f.y.map(v);
    let (ticks, step) = scale::time_ticks(f.from, f.to, 7);
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="chart" id=(c.id)
            viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img" {
            // The first <title> names the image and <desc> describes it (SVG-AAM).
            title { (c.title) }
            desc { (c.describe()) }
            rect class="plot" x=(px(LEFT)) y=(px(TOP)) width=(px(RIGHT - LEFT)) height=(px(BOTTOM - TOP)) {}
            @if let Some(b) = &c.baseline {
                @if let Some((a, z)) = b.window {
                    g class="baseline-window" data-from=(a.to_rfc3339()) data-to=(z.to_rfc3339()) {
                        rect x=(px(x(a))) y=(px(TOP)) width=(px((x(z) - x(a)).max(1.0))) height=(px(BOTTOM - TOP)) {}
                        text x=(px(x(a) + 4.0)) y=(px(BOTTOM - 6.0)) { "baseline window" }
                    }
                }
            }
            @if let Some((a, z)) = c.condemning {
                g class="condemning" data-from=(a.to_rfc3339()) data-to=(z.to_rfc3339()) {
                    rect x=(px(x(a) - 7.0)) y=(px(TOP)) width=(px(x(z) - x(a) + 14.0)) height=(px(BOTTOM - TOP)) {}
                    text x=(px(x(a) - 4.0)) y=(px(BOTTOM - 6.0)) { "condemning run" }
                }
            }
            // Value axis: grid lines and labels.
            @for v in &f.values.ticks {
                g class="tick y" data-value=(v) {
                    line x1=(px(LEFT)) x2=(px(RIGHT)) y1=(px(y(*v))) y2=(px(y(*v))) {}
                    text x=(px(LEFT - 8.0)) y=(px(y(*v) + 4.0)) text-anchor="end" { (scale::tick_label(*v, f.values.step)) }
                }
            }
            // Time axis.
            @for t in &ticks {
                g class="tick x" data-at=(t.to_rfc3339()) {
                    line x1=(px(x(*t))) x2=(px(x(*t))) y1=(px(BOTTOM)) y2=(px(BOTTOM + 5.0)) {}
                    text x=(px(x(*t))) y=(px(BOTTOM + 19.0)) text-anchor="middle" { (scale::time_label(*t, step)) }
                }
            }
            line class="axis" x1=(px(LEFT)) x2=(px(RIGHT)) y1=(px(BOTTOM)) y2=(px(BOTTOM)) {}
            line class="axis" x1=(px(LEFT)) x2=(px(LEFT)) y1=(px(TOP)) y2=(px(BOTTOM)) {}
            text class="axis-label" x=(px((LEFT + RIGHT) / 2.0)) y=(px(HEIGHT - 6.0)) text-anchor="middle" { "time (UTC)" }
            text class="axis-label" transform=(format!("translate(16 {}) rotate(-90)", px((TOP + BOTTOM) / 2.0))) text-anchor="middle" { (c.unit) }
            @if c.points.iter().any(|p| p.value.is_none()) {
                text class="lane-label" x=(px(LEFT - 8.0)) y=(px(LANE + 4.0)) text-anchor="end" { "no value" }
            }
            @if let Some(b) = &c.baseline {
                @if b.points.len() > 1 {
                    polyline class="before" points=(polyline(b.points.iter().map(|(t, v)| (x(*t), y(*v))))) {}
                }
                g class="baseline" data-value=(b.value) {
                    line x1=(px(LEFT)) x2=(px(RIGHT)) y1=(px(y(b.value))) y2=(px(y(b.value))) {}
                    text x=(px(LEFT + 4.0)) y=(px(y(b.value) - 4.0)) { "baseline " (crate::judge::num(b.value)) }
                }
            }
            @for (i, t) in c.thresholds.iter().enumerate() {
                g class=(format!("threshold {}", bound_class(t.bound))) data-value=(t.value) {
                    line x1=(px(LEFT)) x2=(px(RIGHT)) y1=(px(y(t.value))) y2=(px(y(t.value))) {}
                    text x=(px(RIGHT - 4.0)) y=(px(y(t.value) - 5.0 - 13.0 * i as f64)) text-anchor="end" { (t.label) }
                }
            }
            @for (i, m) in c.moments.iter().enumerate() {
                g class=(format!("moment {}", m.kind.class())) data-at=(m.at.to_rfc3339()) {
                    line x1=(px(x(m.at))) x2=(px(x(m.at))) y1=(px(TOP - 4.0)) y2=(px(BOTTOM)) {}
                    text x=(px(x(m.at))) y=(px(TOP - 8.0 - 14.0 * (i % 2) as f64)) text-anchor="middle" { (m.label) }
                }
            }
            @for run in runs(&c.points) {
                polyline class="line" points=(polyline(run.iter().map(|p| (x(p.at), y(p.value.unwrap_or_default()))))) {}
            }
            @for p in &c.points {
                (marker(p, x(p.at), p.value.map(y).unwrap_or(LANE)))
            }
        }
    }
}

fn bound_class(b: Bound) -> &'static str {
    match b {
        Bound::Upper => "upper",
        Bound::Lower => "lower",
        Bound::Expected => "expected",
    }
}

/// Consecutive samples with values, to join with a line (a gap stays a gap).
fn runs(points: &[Point]) -> Vec<Vec<&Point>> {
    let mut out: Vec<Vec<&Point>> = vec![Vec::new()];
    for p in points {
        match p.value {
            Some(_) => out.last_mut().expect("never empty").push(p),
            None => out.push(Vec::new()),
        }
    }
    out.retain(|r| r.len() > 1);
    out
}

fn polyline(points: impl Iterator<Item = (f64, f64)>) -> String {
    points
        .map(|(x, y)| format!("{},{}", px(x), px(y)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One sample's marker: its shape says its state (colour only repeats it).
fn marker(p: &Point, x: f64, y: f64) -> Markup {
    let mut class = format!("sample {}", p.state.class());
    if p.mixed {
        class.push_str(" mixed");
    }
    if p.condemning {
        class.push_str(" condemning");
    }
    let value = p
        .value
        .map(crate::judge::num)
        .unwrap_or_else(|| "no value".into());
    let tip = format!(
        "{} UTC: {value}, {}{}",
        p.at.format("%H:%M:%S%.3f"),
        p.state.as_str(),
        if p.text.is_empty() {
            String::new()
        } else {
            format!(": {}", p.text)
        }
    );
    let (x, y) = (px(x), px(y));
    html! {
        g class=(class) data-at=(p.at.to_rfc3339()) data-value=[p.value] data-state=(p.state.class()) transform=(format!("translate({x} {y})")) {
            title { (tip) (if p.mixed { " (look-back mixes two releases)" } else { "" }) }
            @if p.condemning {
                circle class="halo" r="9" {}
            }
            @match p.state {
                State::Pass => circle class="shape" r="4.5" {},
                State::Fail => path class="shape" d="M-5,-5 L5,5 M-5,5 L5,-5" {},
                State::Error => path class="shape" d="M0,-6 L5.5,4 L-5.5,4 Z" {},
                State::NoData => circle class="shape" r="4.5" {},
            }
            @if p.mixed {
                circle class="mixed-ring" r="7" {}
            }
        }
    }
}

/// What the marks mean, once per page; drawn with the charts' own marks and classes.
pub fn legend() -> Markup {
    let at = DateTime::<Utc>::UNIX_EPOCH;
    let point = |state, mixed, condemning| Point {
        at,
        value: None,
        state,
        mixed,
        condemning,
        text: String::new(),
    };
    let items = [
        (point(State::Pass, false, false), "pass"),
        (point(State::Fail, false, false), "fail"),
        (point(State::Fail, false, true), "condemning failure"),
        (point(State::Error, false, false), "error"),
        (point(State::NoData, false, false), "no data"),
        (point(State::Pass, true, false), "mixed look-back"),
    ];
    let lines = [
        ("threshold upper", "limit"),
        ("baseline", "baseline"),
        ("moment deployed", "deployment"),
        ("moment rollback", "rollback"),
    ];
    html! {
        ul class="legend" aria-label="chart legend" {
            @for (p, label) in &items {
                li {
                    svg xmlns="http://www.w3.org/2000/svg" class="chart key" viewBox="-10 -10 20 20" width="20" height="20" aria-hidden="true" {
                        // Marked as a key, so that only the charts' markers are samples.
                        (PreEscaped(marker(p, 0.0, 0.0).into_string().replacen("class=\"sample ", "class=\"key sample ", 1)))
                    }
                    " " (label)
                }
            }
            @for (class, label) in &lines {
                li {
                    svg xmlns="http://www.w3.org/2000/svg" class="chart key" viewBox="0 -10 28 20" width="28" height="20" aria-hidden="true" {
                        g class=(class) { line x1="0" x2="28" y1="0" y2="0" {} }
                    }
                    " " (label)
                }
            }
            li {
                svg xmlns="http://www.w3.org/2000/svg" class="chart key" viewBox="0 -10 28 20" width="28" height="20" aria-hidden="true" {
                    g class="condemning" { rect x="0" y="-9" width="28" height="18" {} }
                }
                " condemning run"
            }
        }
    }
}

#[cfg(test)]
#[path = "chart_tests.rs"]
mod tests;
