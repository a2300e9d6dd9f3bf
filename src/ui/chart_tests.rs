use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 5, 1, 12, 0, 0).unwrap()
}

fn point(i: i64, value: Option<f64>, state: State) -> Point {
    Point {
        at: t0() + Duration::milliseconds(500 * i),
        value,
        state,
        mixed: false,
        condemning: false,
        text: String::new(),
    }
}

fn chart() -> Chart {
    let mut points: Vec<Point> = (0..4).map(|i| point(i, Some(0.01), State::Pass)).collect();
    points.push(point(4, None, State::Error));
    for i in 5..8 {
        let mut p = point(i, Some(0.25), State::Fail);
        p.condemning = true;
        points.push(p);
    }
    points[1].mixed = true;
    Chart {
        id: "chart-1".into(),
        title: "errors <b>".into(),
        unit: "ratio".into(),
        points,
        thresholds: vec![Threshold {
            value: 0.05,
            bound: Bound::Upper,
            label: "max 0.05".into(),
        }],
        baseline: Some(Baseline {
            value: 0.004,
            window: Some((t0() - Duration::seconds(3), t0())),
            points: vec![],
        }),
        moments: vec![Moment {
            at: t0() + Duration::milliseconds(1200),
            kind: MomentKind::Deployed,
            label: "deployed".into(),
        }],
        condemning: Some((
            t0() + Duration::milliseconds(2500),
            t0() + Duration::milliseconds(3500),
        )),
    }
}

/// The value of attribute `name` in the first element whose opening tag contains `marker`.
fn attr_after(svg: &str, marker: &str, name: &str) -> f64 {
    let at = svg
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in {svg}"));
    let rest = &svg[at..];
    let key = format!("{name}=\"");
    let start = rest.find(&key).unwrap() + key.len();
    rest[start..start + rest[start..].find('"').unwrap()]
        .parse()
        .unwrap()
}

#[test]
fn one_marker_per_sample_with_its_state() {
    let svg = render(&chart()).into_string();
    assert_eq!(svg.matches("class=\"sample ").count(), 8);
    assert_eq!(svg.matches("class=\"sample pass").count(), 4);
    assert_eq!(svg.matches("class=\"sample fail condemning\"").count(), 3);
    assert_eq!(svg.matches("class=\"sample error\"").count(), 1);
    assert_eq!(svg.matches("class=\"sample pass mixed\"").count(), 1);
    assert_eq!(svg.matches("class=\"mixed-ring\"").count(), 1);
}

#[test]
fn the_threshold_line_sits_at_its_value_on_the_axis() {
    let c = chart();
    let f = c.frame();
    let svg = render(&c).into_string();
    let y = attr_after(&svg, "class=\"threshold upper\"", "y1");
    assert!((y - f.y.map(0.05)).abs() < 0.06, "{y}");
    // Between the 0.0 tick and the 0.1 tick, halfway.
    let y0 = attr_after(&svg, "class=\"tick y\" data-value=\"0\"", "y1");
    let y1 = attr_after(&svg, "class=\"tick y\" data-value=\"0.1\"", "y1");
    assert!((y - (y0 + y1) / 2.0).abs() < 0.2, "{y0} {y} {y1}");
    assert!(y > TOP && y < BOTTOM);
}

#[test]
fn samples_without_a_value_go_to_the_lane_under_the_axis() {
    let svg = render(&chart()).into_string();
    let at = svg.find("class=\"sample error\"").unwrap();
    let tag = &svg[at..at + svg[at..].find('>').unwrap()];
    assert!(tag.contains(&format!(" {LANE:.1})")), "{tag}");
    assert!(svg.contains(">no value</text>"));
}

#[test]
fn time_runs_left_to_right_and_covers_every_moment() {
    let c = chart();
    let f = c.frame();
    assert!(f.from < c.baseline.as_ref().unwrap().window.unwrap().0);
    assert!(f.to > c.points.last().unwrap().at);
    assert!(f.x.map(ms(c.points[0].at)) < f.x.map(ms(c.points[7].at)));
    assert!(f.x.map(ms(f.from)) >= LEFT - 0.01 && f.x.map(ms(f.to)) <= RIGHT + 0.01);
}

#[test]
fn text_is_escaped_and_the_chart_has_a_text_alternative() {
    let svg = render(&chart()).into_string();
    assert!(svg.contains("errors &lt;b&gt;"));
    assert!(!svg.contains("<b>"));
    assert!(svg.contains("role=\"img\""));
    assert!(
        svg.contains("<title>errors &lt;b&gt;</title><desc>"),
        "{svg}"
    );
    let d = chart().describe();
    assert!(d.contains("8 samples of ratio"), "{d}");
    assert!(d.contains("4 pass, 3 fail, 1 error, 0 no data"), "{d}");
    assert!(d.contains("max 0.05"), "{d}");
    assert!(
        d.contains("condemning run from 12:00:02 to 12:00:03"),
        "{d}"
    );
}

#[test]
fn axes_are_labelled_with_time_and_unit() {
    let svg = render(&chart()).into_string();
    assert!(svg.contains(">time (UTC)</text>"));
    assert!(svg.contains(">ratio</text>"));
    assert!(svg.matches("class=\"tick x\"").count() >= 3);
    assert!(svg.contains(">0.05</text>"), "{svg}");
}

#[test]
fn an_empty_chart_still_renders() {
    let c = Chart {
        id: "c".into(),
        title: "t".into(),
        unit: "value".into(),
        points: vec![],
        thresholds: vec![],
        baseline: None,
        moments: vec![],
        condemning: None,
    };
    let svg = render(&c).into_string();
    assert!(svg.starts_with("<svg"));
    assert_eq!(svg.matches("class=\"sample ").count(), 0);
}

#[test]
fn the_legend_uses_the_charts_marks_but_is_no_sample() {
    let l = legend().into_string();
    assert!(!l.contains("class=\"sample "));
    assert_eq!(l.matches("class=\"key sample ").count(), 6);
    for word in [
        "pass",
        "fail",
        "error",
        "no data",
        "mixed look-back",
        "limit",
        "baseline",
        "condemning run",
    ] {
        assert!(l.contains(word), "{word}");
    }
}

#[test]
fn times_at_the_ends_of_the_calendar_do_not_panic_the_chart() {
    let mut c = chart();
    c.points[0].at = DateTime::<Utc>::MIN_UTC;
    c.points.last_mut().unwrap().at = DateTime::<Utc>::MAX_UTC;
    let svg = render(&c).into_string();
    assert_eq!(svg.matches("class=\"sample ").count(), 8);
}
