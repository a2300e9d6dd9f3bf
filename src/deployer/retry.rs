//! Capped exponential backoff for deployer calls, honouring `Retry-After`.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::DeployerError;

/// First retry delay.
const BASE: Duration = Duration::from_millis(250);
/// No delay grows past this.
const CAP: Duration = Duration::from_secs(30);
/// A `Retry-After` longer than this is clamped: a rollback must not wait for an hour.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(120);

/// Delay before retry number `attempt` (0-based): the backoff, or the server's `Retry-After`
/// when that is longer (at most [`RETRY_AFTER_CAP`]). Never shorter than the backoff: a date
/// in the past (a server clock behind ours, a proxy echoing its `Date`) reads as zero, and
/// honoured alone it would spend every attempt of a rollback in a second of a 503 storm.
pub fn delay(attempt: u32, retry_after: Option<u64>) -> Duration {
    let backoff = BASE
        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
        .min(CAP);
    match retry_after {
        Some(secs) => Duration::from_secs(secs).min(RETRY_AFTER_CAP).max(backoff),
        None => backoff,
    }
}

/// Runs `op` until it succeeds, fails with a non-retryable error, or `attempts` are used up.
/// Sleeps between attempts stop at once on cancellation.
pub async fn with_retry<T, F, Fut>(
    attempts: u32,
    cancel: &CancellationToken,
    mut op: F,
) -> Result<T, DeployerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DeployerError>>,
{
    let mut attempt = 0;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt + 1 < attempts.max(1) => {
                let wait = delay(attempt, e.retry_after());
                tracing::warn!(error = %e, attempt = attempt + 1, wait = ?wait, "deployer call failed; retrying");
                tokio::select! {
                    _ = cancel.cancelled() => return Err(DeployerError::Cancelled),
                    _ = tokio::time::sleep(wait) => {}
                }
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_are_capped() {
        assert_eq!(delay(0, None), Duration::from_millis(250));
        assert_eq!(delay(1, None), Duration::from_millis(500));
        assert_eq!(delay(3, None), Duration::from_secs(2));
        assert_eq!(delay(30, None), CAP);
    }

    #[test]
    fn a_longer_retry_after_wins_but_is_clamped() {
        assert_eq!(delay(0, Some(3)), Duration::from_secs(3));
        assert_eq!(delay(0, Some(100_000)), RETRY_AFTER_CAP);
    }

    #[test]
    fn a_retry_after_shorter_than_the_backoff_or_in_the_past_never_hastens_a_retry() {
        // attempt 5: 8 s of backoff; a date in the past reads as 0 s.
        assert_eq!(delay(5, Some(3)), Duration::from_secs(8));
        assert_eq!(delay(5, Some(0)), Duration::from_secs(8));
        assert_eq!(delay(0, Some(0)), Duration::from_millis(250));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_then_succeeds() {
        let cancel = CancellationToken::new();
        let mut calls = 0;
        let r = with_retry(5, &cancel, || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(DeployerError::Timeout)
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn does_not_retry_rejections_and_gives_up_after_attempts() {
        let cancel = CancellationToken::new();
        let mut calls = 0;
        let r: Result<(), _> = with_retry(5, &cancel, || {
            calls += 1;
            async {
                Err(DeployerError::Rejected {
                    status: 400,
                    message: "bad".into(),
                })
            }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
        let mut calls = 0;
        let r: Result<(), _> = with_retry(4, &cancel, || {
            calls += 1;
            async { Err(DeployerError::Timeout) }
        })
        .await;
        assert!(matches!(r, Err(DeployerError::Timeout)));
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn cancellation_stops_the_wait() {
        let cancel = CancellationToken::new();
        cancel.cancel();
        let r: Result<(), _> = with_retry(5, &cancel, || async {
            Err(DeployerError::Server {
                status: 503,
                message: String::new(),
                retry_after: Some(100),
            })
        })
        .await;
        assert!(matches!(r, Err(DeployerError::Cancelled)));
    }
}
