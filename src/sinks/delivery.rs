//! One delivery: a JSON POST with a per-request timeout, retried with capped exponential
//! backoff while the failure is transient (connection error, timeout, 5xx, 429).
//!
//! The URL of a Slack webhook is itself a credential, so every URL here is a [`Secret`] and no
//! error message carries one: reqwest errors are stripped with `without_url()`.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::secret::Secret;

/// Attempts per delivery, the first included.
pub(super) const ATTEMPTS: u32 = 5;
/// First retry delay; doubles per attempt.
const BASE: Duration = Duration::from_millis(500);
/// No computed delay grows past this.
const CAP: Duration = Duration::from_secs(8);
/// A `Retry-After` longer than this is clamped: a notification that waits minutes is stale, and
/// a delivery must stay bounded so shutdown is not held up.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(10);
/// How much of an error response body is kept for the log.
const BODY_EXCERPT: usize = 200;

/// Why a delivery attempt failed. The messages never contain the URL or a secret header.
#[derive(Debug, thiserror::Error)]
pub(super) enum DeliveryError {
    /// The request could not be built (e.g. a header value that is not valid HTTP): final.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// No answer: connection refused, reset, DNS, TLS.
    #[error("request failed: {0}")]
    Transport(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// 5xx or 429: worth another try.
    #[error("HTTP {status}: {body}")]
    Unavailable {
        status: u16,
        body: String,
        retry_after: Option<Duration>,
    },
    /// Any other non-success status: the receiver refused the payload, retrying cannot help.
    #[error("refused with HTTP {status}: {body}")]
    Refused { status: u16, body: String },
    /// Not sent: this node may no longer act for the watch (its fleet lease lapsed). Left in
    /// the outbox for the watch's owner, so it counts as "try again", never as delivered.
    #[error("not sent: this node no longer holds the watch's lease")]
    Withheld,
}

/// Asked before every attempt: may this node still send for the watch?
pub type Gate = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

impl DeliveryError {
    pub(super) fn is_retryable(&self) -> bool {
        matches!(
            self,
            DeliveryError::Transport(_)
                | DeliveryError::Timeout(_)
                | DeliveryError::Unavailable { .. }
                | DeliveryError::Withheld
        )
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            DeliveryError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A prepared POST. Not `Debug`: the URL and headers may be secrets.
pub(super) struct Request {
    pub url: Secret,
    pub headers: HeaderMap,
    pub body: serde_json::Value,
    pub timeout: Duration,
}

/// Delay before retry number `attempt` (0-based): the backoff, or the server's `Retry-After`
/// when that is longer (at most [`RETRY_AFTER_CAP`]); as for the deployers, a date in the past
/// never makes every attempt immediate.
pub(super) fn delay(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let backoff = BASE
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(CAP);
    match retry_after {
        Some(wait) => wait.min(RETRY_AFTER_CAP).max(backoff),
        None => backoff,
    }
}

/// Sends `req` until it succeeds, fails for good, or [`ATTEMPTS`] are used up. Returns the
/// number of attempts made alongside the outcome.
pub(super) async fn deliver(
    http: &reqwest::Client,
    req: &Request,
    gate: &Gate,
) -> (u32, Result<(), DeliveryError>) {
    let mut attempt = 0;
    loop {
        if !gate() {
            return (attempt, Err(DeliveryError::Withheld));
        }
        let result = post(http, req).await;
        match result {
            Err(e) if e.is_retryable() && attempt + 1 < ATTEMPTS => {
                let wait = delay(attempt, e.retry_after());
                tracing::debug!(error = %e, attempt = attempt + 1, ?wait, "notification attempt failed; retrying");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return (attempt + 1, other),
        }
    }
}

/// One attempt.
async fn post(http: &reqwest::Client, req: &Request) -> Result<(), DeliveryError> {
    let response = http
        .post(req.url.expose())
        .headers(req.headers.clone())
        .json(&req.body)
        .timeout(req.timeout)
        .send()
        .await
        .map_err(|e| classify(e, req.timeout))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let retry_after = crate::retry_after::of(response.headers(), chrono::Utc::now());
    // The answer is only excerpted for the log; one too large to read says so instead.
    let body = match crate::limits::read(response, crate::limits::SINK).await {
        Ok(bytes) => excerpt(&String::from_utf8_lossy(&bytes)),
        Err(e) => e.to_string(),
    };
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Err(DeliveryError::Unavailable {
            status: status.as_u16(),
            body,
            retry_after,
        })
    } else {
        Err(DeliveryError::Refused {
            status: status.as_u16(),
            body,
        })
    }
}

fn classify(e: reqwest::Error, timeout: Duration) -> DeliveryError {
    if e.is_timeout() {
        return DeliveryError::Timeout(timeout);
    }
    let builder = e.is_builder();
    let e = e.without_url();
    // The sources say why ("Connection refused"); reqwest's own line only says it failed.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if builder {
        DeliveryError::Invalid(text)
    } else {
        DeliveryError::Transport(text)
    }
}

/// The start of a response body, on one line, for a log message.
fn excerpt(body: &str) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(BODY_EXCERPT)
        .collect();
    let one_line = one_line.trim().to_string();
    if body.chars().count() > BODY_EXCERPT {
        format!("{one_line}...")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay(0, None), Duration::from_millis(500));
        assert_eq!(delay(1, None), Duration::from_secs(1));
        assert_eq!(delay(3, None), Duration::from_secs(4));
        assert_eq!(delay(30, None), CAP);
    }

    #[test]
    fn a_longer_retry_after_wins_but_is_clamped() {
        assert_eq!(
            delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        // Shorter than the backoff (4 s at attempt 3), or a date in the past: the backoff.
        assert_eq!(
            delay(3, Some(Duration::from_secs(2))),
            Duration::from_secs(4)
        );
        assert_eq!(delay(0, Some(Duration::ZERO)), BASE);
        assert_eq!(delay(0, Some(Duration::from_secs(3600))), RETRY_AFTER_CAP);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        assert!(DeliveryError::Timeout(Duration::from_secs(1)).is_retryable());
        assert!(DeliveryError::Transport("refused".into()).is_retryable());
        assert!(DeliveryError::Unavailable {
            status: 503,
            body: String::new(),
            retry_after: None
        }
        .is_retryable());
        assert!(!DeliveryError::Refused {
            status: 400,
            body: String::new()
        }
        .is_retryable());
        assert!(!DeliveryError::Invalid("header".into()).is_retryable());
    }

    #[test]
    fn excerpts_are_short_single_lines() {
        assert_eq!(excerpt("no_service\n"), "no_service");
        let long = "x".repeat(500);
        assert_eq!(excerpt(&long).len(), BODY_EXCERPT + 3);
    }

    #[tokio::test]
    async fn errors_never_name_the_url() {
        // Port 9 on loopback: nothing listens there, the connection is refused at once.
        let req = Request {
            url: Secret::new("http://127.0.0.1:9/services/T000/B000/XXXXSECRETXXXX"),
            headers: HeaderMap::new(),
            body: serde_json::json!({}),
            timeout: Duration::from_secs(2),
        };
        let e = post(&reqwest::Client::new(), &req).await.unwrap_err();
        assert!(e.is_retryable(), "{e}");
        let text = format!("{e} {e:?}");
        assert!(!text.contains("SECRET"), "{text}");
        assert!(!text.contains("/services/"), "{text}");
    }
}
