//! The `Retry-After` header (RFC 9110 §10.2.3), read the same way for every server backstop
//! calls (deployers, notification sinks). Pure: the header's text and the current time in,
//! how long to wait out. Each caller clamps the wait to what suits it.
//!
//! The value is either delta-seconds (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00
//! GMT`); dates are read by `httpdate` (hyper's own parser), which accepts IMF-fixdate and the
//! two obsolete forms recipients must still accept (RFC 850, asctime).

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// How long `value` asks to wait at `now`; `None` for anything that is neither form (negative,
/// fractional, overflowing, garbage). A date in the past means "now": zero.
pub fn parse(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a u64 is no instruction at all, not "forever".
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let at = DateTime::<Utc>::from(httpdate::parse_http_date(value).ok()?);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// The `Retry-After` of an answer's headers, if present and readable.
pub fn of(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    parse(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

/// [`of`] in whole seconds, rounded up (so a date is never waited out early).
pub fn seconds(headers: &HeaderMap, now: DateTime<Utc>) -> Option<u64> {
    of(headers, now).map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn delta_seconds() {
        assert_eq!(parse("120", now()), Some(Duration::from_secs(120)));
        assert_eq!(parse(" 0 ", now()), Some(Duration::ZERO));
        assert_eq!(
            parse("18446744073709551615", now()),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let later = Some(Duration::from_secs(90));
        assert_eq!(parse("Wed, 21 Oct 2015 07:29:30 GMT", now()), later);
        assert_eq!(parse("Wednesday, 21-Oct-15 07:29:30 GMT", now()), later);
        assert_eq!(parse("Wed Oct 21 07:29:30 2015", now()), later);
    }

    #[test]
    fn a_past_date_is_now() {
        assert_eq!(
            parse("Tue, 20 Oct 2015 07:28:00 GMT", now()),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn garbage_negative_fractional_and_overflowing_values_are_none() {
        for bad in [
            "",
            "soon",
            "-5",
            "+5",
            "1.5",
            "1e3",
            "18446744073709551616",
            "99999999999999999999999999999999",
            "Wed, 21 Oct 2015 25:00:00 GMT",
            "Wed, 32 Oct 2015 07:28:00 GMT",
            "Wed, 21 Oct 99999 07:28:00 GMT",
            "2015-10-21T07:28:00Z",
            "5 s",
            "\u{0}",
        ] {
            assert_eq!(parse(bad, now()), None, "{bad:?}");
        }
    }

    #[test]
    fn headers_are_read_and_rounded_up_to_seconds() {
        let mut h = HeaderMap::new();
        assert_eq!(of(&h, now()), None);
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(seconds(&h, now()), Some(7));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:01 GMT"),
        );
        let half_second_before = now() + chrono::Duration::milliseconds(500);
        assert_eq!(seconds(&h, half_second_before), Some(1));
        h.insert(RETRY_AFTER, HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(of(&h, now()), None);
    }
}
