//! How much backstop reads from a server it does not control, and for how long.
//!
//! Every answer read from outside (Prometheus, Alertmanager, a deployment tool, a scraped
//! `/metrics`, a notification endpoint, the daemon answering the CLI) goes through [`read`]
//! with its source's [`Cap`]: a `Content-Length` above the cap is refused before any byte is
//! read, and a body that grows past it (chunked, or lying about its length) is dropped at the
//! cap. A server, misconfigured or hostile, cannot make the daemon hold more than that. The
//! cap is an error naming the source and the size, never a truncated document parsed as if
//! whole.
//!
//! Time: every outbound request carries a total deadline (reqwest's per-request `timeout`,
//! which runs from connecting until the body has been read, so a server trickling bytes
//! cannot hold a read open), on top of the shared client's 5 s connect timeout
//! (`daemon.rs`):
//!
//! | source | size cap | time cap |
//! |---|---|---|
//! | Prometheus queries (`prometheus`, `slo`, `compare` checks, baselines) | [`PROMETHEUS`] | the check's `timeout` |
//! | `backstop backtest` range queries | [`PROMETHEUS`] | the check's `timeout`, at least 30 s |
//! | alert checks (Prometheus / Alertmanager alerts) | [`ALERTS`] | the check's `timeout` |
//! | scrape checks (`/metrics`) | [`SCRAPE`] | the check's `timeout` |
//! | HTTP health checks | body never read (the status is the reading) | the check's `timeout` |
//! | Octopus API | [`OCTOPUS`] | the deployer's `timeout` per call |
//! | Argo CD API | [`ARGOCD`] | the deployer's `timeout` per call |
//! | webhook deployer (trigger and `status_url`) | [`WEBHOOK_DEPLOYER`] | the deployer's `timeout` per call |
//! | notification sinks (answers to Slack, webhook, Alertmanager posts) | [`SINK`] | the sink's `timeout` |
//! | the CLI reading the daemon's API | [`CLI`] | 10 s per request (`client.rs`) |
//!
//! Retries and polling loops are bounded on top of that by their own settings (`max_retries`,
//! `task_timeout`). JSON nesting is bounded by serde_json's recursion limit (128 levels),
//! which no decoder here turns off.

use std::fmt;

/// A size cap on one source's answers: what the source is called in errors, and the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    /// "the Prometheus answer": the subject of the error sentence.
    pub what: &'static str,
    pub bytes: usize,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes;
        if b >= 1 << 20 && b % (1 << 20) == 0 {
            write!(f, "{} MiB", b >> 20)
        } else if b >= 1 << 10 && b % (1 << 10) == 0 {
            write!(f, "{} KiB", b >> 10)
        } else {
            write!(f, "{b} bytes")
        }
    }
}

/// Prometheus query answers (instant and range, daemon and backtest). An instant query must
/// answer one series (more is an error anyway); the large answers are the backtest's range
/// queries, at most 10,000 steps per series (about 300 KiB of JSON each): 32 MiB holds about
/// a hundred full-resolution series, more than any check's query or `ALERTS` selection.
pub const PROMETHEUS: Cap = Cap {
    what: "the Prometheus answer",
    bytes: 32 << 20,
};

/// Alert lists from Prometheus (`/api/v1/alerts`) or Alertmanager (`/api/v2/alerts`, asked
/// for the matching alerts only). An alert is about 1 KiB with its labels and annotations:
/// 4 MiB is thousands of alerts, far past a service's own.
pub const ALERTS: Cap = Cap {
    what: "the alerts answer",
    bytes: 4 << 20,
};

/// A scraped `/metrics` exposition. Big services expose tens of thousands of series (a few
/// MiB); 32 MiB leaves room for that while a runaway exposition fails the scrape instead of
/// exhausting the daemon's memory.
pub const SCRAPE: Cap = Cap {
    what: "the exposition",
    bytes: 32 << 20,
};

/// Octopus answers. Listings are a page of deployments (tens of KiB); a task's details, asked
/// with `verbose=false` and a short `tail` per activity, stay far below too.
pub const OCTOPUS: Cap = Cap {
    what: "the Octopus answer",
    bytes: 8 << 20,
};

/// Argo CD answers: one application. Kubernetes stores an object in etcd, whose default
/// request limit is 1.5 MiB, so an application document larger than 8 MiB is not one.
pub const ARGOCD: Cap = Cap {
    what: "the Argo CD answer",
    bytes: 8 << 20,
};

/// The webhook deployer's answers: a trigger's acknowledgement and `status_url`'s small JSON
/// status document (a few fields); only an excerpt of anything else is kept.
pub const WEBHOOK_DEPLOYER: Cap = Cap {
    what: "the webhook deployer's answer",
    bytes: 1 << 20,
};

/// Answers to notifications: only an excerpt of an error answer goes into the log, so
/// anything past a page of text is noise.
pub const SINK: Cap = Cap {
    what: "the notification endpoint's answer",
    bytes: 64 << 10,
};

/// The daemon's API answering the CLI: a page of the status document or one evidence
/// document with its series, which stay well under this even for long observations.
pub const CLI: Cap = Cap {
    what: "the backstop API's answer",
    bytes: 64 << 20,
};

/// Why a capped read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{} is larger than {}; backstop reads at most that", .0.what, .0)]
    TooLarge(Cap),
    /// The connection failed or timed out while reading; the caller classifies it.
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// Whether `declared` bytes (a `Content-Length`) already exceed the cap.
pub fn declared_too_large(declared: Option<u64>, cap: Cap) -> bool {
    declared.is_some_and(|n| n > cap.bytes as u64)
}

/// Reads `resp`'s body, at most `cap.bytes` of it; a larger body is [`ReadError::TooLarge`].
/// The time this takes is bounded by the request's own `timeout`.
pub async fn read(mut resp: reqwest::Response, cap: Cap) -> Result<Vec<u8>, ReadError> {
    let declared = resp.content_length();
    if declared_too_large(declared, cap) {
        return Err(ReadError::TooLarge(cap));
    }
    // Trust a declared length for the first allocation only, and never past the cap nor past
    // 1 MiB: a server declaring 32 MiB and then stalling reserves no more than that.
    let first = declared.map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut body = Vec::with_capacity(first.min(cap.bytes).min(1 << 20));
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > cap.bytes {
            return Err(ReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_name_their_source_and_size() {
        let e = ReadError::TooLarge(PROMETHEUS);
        assert_eq!(
            e.to_string(),
            "the Prometheus answer is larger than 32 MiB; backstop reads at most that"
        );
        assert_eq!(SINK.to_string(), "64 KiB");
        let odd = Cap {
            what: "x",
            bytes: 1000,
        };
        assert_eq!(odd.to_string(), "1000 bytes");
    }

    #[test]
    fn a_declared_length_over_the_cap_is_refused_up_front() {
        assert!(!declared_too_large(None, SINK));
        assert!(!declared_too_large(Some(64 << 10), SINK));
        assert!(declared_too_large(Some((64 << 10) + 1), SINK));
        assert!(declared_too_large(Some(u64::MAX), CLI));
    }

    /// A fake server whose answer is `len` bytes, with or without a `Content-Length`.
    async fn serve(len: usize, chunked: bool) -> String {
        use axum::body::Body;
        use axum::routing::get;
        let app = axum::Router::new().route(
            "/",
            get(move || async move {
                let bytes = vec![b'x'; len];
                if chunked {
                    let stream = futures_util::stream::iter(
                        bytes
                            .chunks(1000)
                            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
                            .collect::<Vec<_>>(),
                    );
                    Body::from_stream(stream)
                } else {
                    Body::from(bytes)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_cap_with_or_without_a_length() {
        let cap = Cap {
            what: "the test answer",
            bytes: 10_000,
        };
        let http = reqwest::Client::new();
        for chunked in [false, true] {
            let url = serve(10_000, chunked).await;
            let resp = http.get(&url).send().await.unwrap();
            assert_eq!(read(resp, cap).await.unwrap().len(), 10_000, "{chunked}");
            let url = serve(10_001, chunked).await;
            let resp = http.get(&url).send().await.unwrap();
            let e = read(resp, cap).await.unwrap_err();
            assert!(matches!(e, ReadError::TooLarge(c) if c == cap), "{chunked}");
        }
    }
}
