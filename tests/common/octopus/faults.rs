//! Injected faults: the queue of `POST /deployments` faults (refuse, lose the response, commit
//! slowly and answer late), GET faults, and the answers they produce.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::Value;

use super::errors::octopus_error;
use super::FakeOctopus;

/// A `POST /deployments` fault, applied in the order the `*_next_posts` calls queued them.
#[derive(Clone, Debug)]
pub(super) enum PostFault {
    /// Refuse before validation, creating nothing.
    Fail {
        status: StatusCode,
        retry_after: Option<u64>,
    },
    /// Create, then answer `status` instead of 201: the client never learns it landed.
    CreateThenFail(StatusCode),
    /// Create, showing the deployment `visible_after` after the request arrived (a slow commit),
    /// and answer 201 `answer_after` after it arrived.
    Late {
        answer_after: Duration,
        visible_after: Duration,
    },
}

impl PostFault {
    /// How long after the request arrived the deployment it creates stays out of the API.
    pub(super) fn hidden_for(fault: Option<&PostFault>) -> Duration {
        match fault {
            Some(PostFault::Late { visible_after, .. }) => *visible_after,
            _ => Duration::ZERO,
        }
    }

    /// The answer to a valid create whose deployment is stored, shaped by the fault queued for
    /// it. The deployment is stored before this runs, so a client that hangs up changes nothing.
    pub(super) async fn answer(fault: Option<PostFault>, created: Value) -> Response {
        match fault {
            None => (StatusCode::CREATED, Json(created)).into_response(),
            Some(PostFault::CreateThenFail(status)) => injected(status),
            Some(PostFault::Late { answer_after, .. }) => {
                tokio::time::sleep(answer_after).await;
                (StatusCode::CREATED, Json(created)).into_response()
            }
            Some(PostFault::Fail { .. }) => unreachable!("refusals are answered before validation"),
        }
    }
}

impl FakeOctopus {
    /// The next `n` POST /deployments answer `status` (with `Retry-After` when given), creating nothing.
    ///
    /// All `*_next_posts` calls feed one queue, consumed in call order by authenticated POSTs. A
    /// refusal applies before validation; the other faults wait for a valid body.
    pub fn fail_next_posts(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let status = status_code(status);
        self.queue_post_faults(
            n,
            PostFault::Fail {
                status,
                retry_after,
            },
        );
    }

    /// The next `n` valid POST /deployments create the deployment but answer 500: a lost response.
    pub fn create_then_fail_next_posts(&self, n: usize) {
        self.queue_post_faults(
            n,
            PostFault::CreateThenFail(StatusCode::INTERNAL_SERVER_ERROR),
        );
    }

    /// The next `n` valid POST /deployments create the deployment (visible at once), then answer
    /// `status` (e.g. 503) with an error body: a lost response with a chosen status.
    pub fn commit_then_fail_next_posts(&self, n: usize, status: u16) {
        self.queue_post_faults(n, PostFault::CreateThenFail(status_code(status)));
    }

    /// The next `n` valid POST /deployments create the deployment, then wait `delay` before the 201.
    pub fn hang_next_posts(&self, n: usize, delay: Duration) {
        self.queue_post_faults(
            n,
            PostFault::Late {
                answer_after: delay,
                visible_after: Duration::ZERO,
            },
        );
    }

    /// The next `n` valid POST /deployments are committed slowly and answered late: the server
    /// keeps working after the client hangs up.
    ///
    /// The deployment is stored when the request arrives but listings and GETs (of it and of its
    /// task) show it only `visible_after` later; the 201 comes `answer_after` after arrival, by
    /// when the client has normally timed out. The inspection methods (`created_deployments`,
    /// `deployments`, `wait_for_created`) see it at once: they are the server's truth, not its API.
    pub fn commit_late_next_posts(
        &self,
        n: usize,
        answer_after: Duration,
        visible_after: Duration,
    ) {
        self.queue_post_faults(
            n,
            PostFault::Late {
                answer_after,
                visible_after,
            },
        );
    }

    /// The next `n` authenticated GETs, whatever the endpoint, answer `status` with an error body.
    pub fn fail_next_gets(&self, n: usize, status: u16) {
        let status = status_code(status);
        self.lock()
            .get_faults
            .extend(std::iter::repeat_n(status, n));
    }

    fn queue_post_faults(&self, n: usize, fault: PostFault) {
        self.lock()
            .post_faults
            .extend(std::iter::repeat_n(fault, n));
    }
}

fn status_code(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"))
}

/// The answer to a request that a fault refuses: a plausible Octopus error naming the fake.
pub(super) fn injected(status: StatusCode) -> Response {
    let message = match status.as_u16() {
        429 => "Too many requests. Please wait and try again.",
        503 => "Octopus Server is currently unavailable. Please try again later.",
        _ => "There was a problem with your request.",
    };
    octopus_error(
        status,
        message,
        &[&format!("HTTP {status} injected by FakeOctopus")],
    )
}
