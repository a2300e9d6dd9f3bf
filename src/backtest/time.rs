//! `--from` and `--to`: an RFC 3339 time, or a duration meaning "that long ago" (`7d`,
//! `36h`, `90m`). Pure: the text and the current time in, an instant or why not out.

use chrono::{DateTime, Utc};

/// `text` as an instant, relative durations counted back from `now`; never before 1970
/// (Unix time 0), which no Prometheus holds data for. (Fuzzing found `0000-01-01T10:00:01+20:00`
/// accepted as a time in year -1, which Prometheus refuses and which does not even read back
/// from its own RFC 3339 rendering.)
pub fn parse(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let t = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else {
        match humantime::parse_duration(text) {
            Ok(d) => chrono::Duration::from_std(d)
                .ok()
                .and_then(|d| now.checked_sub_signed(d))
                .ok_or_else(|| format!("{text:?} reaches further back than a date can"))?,
            Err(_) => return Err(format!(
                "{text:?} is neither an RFC 3339 time (2025-05-01T10:00:00Z) nor a duration ago (7d, 36h, 90m)"
            )),
        }
    };
    if t.timestamp() < 0 {
        return Err(format!(
            "{text:?} is {}, before 1970: no Prometheus holds data that old",
            t.to_rfc3339()
        ));
    }
    Ok(t)
}

/// The range `[from, to]` from the command line (`to` defaults to now), checked.
pub fn range(
    from: &str,
    to: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let from_t = parse(from, now).map_err(|e| format!("--from {e}"))?;
    let to_t = match to {
        Some(t) => parse(t, now).map_err(|e| format!("--to {e}"))?,
        None => now,
    };
    if from_t >= to_t {
        return Err(format!(
            "--from ({}) must be before --to ({})",
            from_t.to_rfc3339(),
            to_t.to_rfc3339()
        ));
    }
    Ok((from_t, to_t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-05-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn times_are_rfc3339_or_durations_ago() {
        assert_eq!(
            parse("2025-05-01T10:00:00+02:00", now())
                .unwrap()
                .to_rfc3339(),
            "2025-05-01T08:00:00+00:00"
        );
        assert_eq!(
            parse("7d", now()).unwrap().to_rfc3339(),
            "2025-05-03T12:00:00+00:00"
        );
        assert_eq!(
            parse(" 1h 30m ", now()).unwrap().to_rfc3339(),
            "2025-05-10T10:30:00+00:00"
        );
        let e = parse("yesterday", now()).unwrap_err();
        assert!(e.contains("neither an RFC 3339 time"), "{e}");
    }

    #[test]
    fn times_before_1970_are_refused() {
        // Found by `fuzz/run.sh` (fuzz/regressions/duration/year-zero-with-offset).
        let e = parse("0000-01-01T10:00:01.010+20:00", now()).unwrap_err();
        assert!(e.contains("before 1970"), "{e}");
        let e = parse("1969-12-31T23:59:59Z", now()).unwrap_err();
        assert!(e.contains("before 1970"), "{e}");
        let e = parse("56y", now()).unwrap_err();
        assert!(e.contains("before 1970"), "{e}");
        assert_eq!(parse("1970-01-01T00:00:00Z", now()).unwrap().timestamp(), 0);
    }

    #[test]
    fn the_range_defaults_to_now_and_must_go_forward() {
        let (from, to) = range("2d", None, now()).unwrap();
        assert_eq!(to, now());
        assert_eq!(from, now() - chrono::Duration::days(2));
        let e = range("1h", Some("2h"), now()).unwrap_err();
        assert!(
            e.contains("--from") && e.contains("must be before --to"),
            "{e}"
        );
        assert!(range("1h", Some("1h"), now()).is_err(), "an empty range");
        let e = range("1h", Some("soon"), now()).unwrap_err();
        assert!(e.starts_with("--to \"soon\""), "{e}");
    }
}
