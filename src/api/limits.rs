//! Caps on request headers, checked before any handler runs.
//!
//! hyper already refuses more than 100 headers or about 400 KiB of them while parsing (431);
//! the API needs far less (a bearer token, a webhook secret, a few standard headers), so it
//! refuses much earlier: a client cannot make every handler walk hundreds of headers, and an
//! oversized secret header is never compared. Bodies are capped separately
//! ([`super::BODY_LIMIT`]). JSON nesting: what a handler reads stops at serde_json's recursion
//! limit (128 levels), answered with a 400; fields it ignores are skipped by a loop, not by
//! recursion, so their depth costs no stack and the body cap bounds it.

use axum::extract::Request;
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use super::ApiError;

/// Most headers a request may carry.
pub const MAX_HEADERS: usize = 64;

/// Most bytes of header names and values together.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Why the headers are refused, or `None` when they are within the caps.
pub fn check(headers: &HeaderMap) -> Option<String> {
    let count = headers.len();
    if count > MAX_HEADERS {
        return Some(format!(
            "too many request headers: {count}, at most {MAX_HEADERS}"
        ));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    (bytes > MAX_HEADER_BYTES)
        .then(|| format!("request headers too large: {bytes} bytes, at most {MAX_HEADER_BYTES}"))
}

/// The middleware: answers 431 when [`check`] refuses.
pub async fn headers(request: Request, next: Next) -> Result<Response, ApiError> {
    match check(request.headers()) {
        Some(why) => Err(ApiError::HeadersTooLarge(why)),
        None => Ok(next.run(request).await),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn counts_and_bytes_are_capped() {
        let mut h = HeaderMap::new();
        for i in 0..MAX_HEADERS {
            h.append(
                format!("x-h{i}").parse::<axum::http::HeaderName>().unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        assert_eq!(check(&h), None);
        h.append("x-one-more", HeaderValue::from_static("v"));
        assert!(check(&h)
            .unwrap()
            .contains("too many request headers: 65, at most 64"));

        // Repeated names count once per value, as they are sent.
        let mut h = HeaderMap::new();
        for _ in 0..=MAX_HEADERS {
            h.append("x-same", HeaderValue::from_static("v"));
        }
        assert!(check(&h).is_some());

        let mut h = HeaderMap::new();
        let big = "a".repeat(MAX_HEADER_BYTES - "x-big".len());
        h.insert("x-big", HeaderValue::from_str(&big).unwrap());
        assert_eq!(check(&h), None);
        h.insert("x", HeaderValue::from_static("b"));
        let why = check(&h).unwrap();
        assert!(
            why.contains("request headers too large: 16386 bytes, at most 16384"),
            "{why}"
        );
    }
}
