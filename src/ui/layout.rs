//! The page shell and the small pieces every page shares: state and verdict badges, times,
//! durations.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

use crate::judge::observation::VerdictKind;
use crate::status::WatchState;

/// A whole page. `live` pages load the refresh script (they work without it).
pub fn page(title: &str, live: bool, crumbs: Markup, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · backstop" }
                link rel="stylesheet" href="/ui/style.css";
                @if live {
                    script src="/ui/live.js" defer {}
                }
            }
            body {
                header {
                    nav aria-label="breadcrumb" {
                        a href="/" { "backstop" }
                        (crumbs)
                    }
                    @if live {
                        span id="live" class="live" aria-live="polite" { "refreshes every 2 s with JavaScript" }
                    }
                }
                main data-live=[live.then_some("on")] {
                    (body)
                }
                footer {
                    "backstop " (env!("CARGO_PKG_VERSION"))
                    " · read-only · each page answers JSON with " code { "Accept: application/json" }
                }
            }
        }
    }
}

/// A crumb after the home link.
pub fn crumb(href: Option<&str>, text: &str) -> Markup {
    html! {
        " / "
        @match href {
            Some(h) => a href=(h) { (text) },
            None => span class="here" { (text) },
        }
    }
}

/// A watch state: text and colour, never colour alone.
pub fn state_badge(s: WatchState) -> Markup {
    let (class, text) = match s {
        WatchState::Idle => ("ok", "idle"),
        WatchState::Observing => ("busy", "observing"),
        WatchState::RollingBack => ("warn", "rolling back"),
        WatchState::Failed => ("bad", "failed: needs a human"),
        WatchState::Paused => ("muted", "paused"),
    };
    html! { span class=(format!("badge {class}")) data-state=(s.as_str()) { (text) } }
}

/// A verdict: text and colour.
pub fn verdict_badge(v: Option<VerdictKind>) -> Markup {
    let (class, text) = match v {
        None => ("busy", "observing"),
        Some(VerdictKind::Verified) => ("ok", "verified"),
        Some(VerdictKind::Condemned) => ("bad", "condemned"),
        Some(VerdictKind::Inconclusive) => ("warn", "inconclusive"),
        Some(VerdictKind::Superseded) => ("muted", "superseded"),
    };
    html! { span class=(format!("badge {class}")) data-verdict=(text) { (text) } }
}

/// A UTC time, machine-readable too.
pub fn time(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()) {
            (at.format("%Y-%m-%d %H:%M:%S"))
        }
    }
}

/// A clock time of today's events.
pub fn clock(at: DateTime<Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) title=(at.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string()) {
            (at.format("%H:%M:%S"))
        }
    }
}

/// "4.2 s", "3 min 5 s", "2 h 10 min".
pub fn duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {} s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{} h {} min", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// An error page (the status line says the rest).
pub fn error(status: u16, message: &str) -> Markup {
    page(
        &format!("{status}"),
        false,
        crumb(None, "error"),
        html! {
            h1 { "Error " (status) }
            p { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        let d = chrono::Duration::milliseconds;
        assert_eq!(duration(d(4_200)), "4.2 s");
        assert_eq!(duration(d(185_000)), "3 min 5 s");
        assert_eq!(duration(d(7_800_000)), "2 h 10 min");
        assert_eq!(duration(d(-5)), "0.0 s");
    }

    #[test]
    fn states_are_said_in_words() {
        for s in WatchState::ALL {
            let b = state_badge(s).into_string();
            assert!(b.contains(&format!("data-state=\"{}\"", s.as_str())), "{b}");
            assert!(!b.contains("></span>"), "a badge has text: {b}");
        }
    }
}
