//! Injected faults: the queue of `POST /deployments` faults (refuse, lose the response, answer
//! late), GET faults, and the error answers they produce.

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;

use super::errors::octopus_error;
use super::FakeOctopus;

/// A `POST /deployments` fault, applied in the order the `*_next_posts` calls queued them.
#[derive(Clone, Debug)]
pub(super) enum PostFault {
    Fail {
        status: StatusCode,
        retry_after: Option<u64>,
    },
    CreateThenFail,
    Hang(Duration),
}

impl FakeOctopus {
    /// The next `n` POST /deployments answer `status` (with `Retry-After` when given), creating nothing.
    ///
    /// All `*_next_posts` calls feed one queue, consumed in call order by authenticated POSTs. A
    /// refusal applies before validation; create-then-fail and hang wait for a valid body.
    pub fn fail_next_posts(&self, n: usize, status: u16, retry_after: Option<u64>) {
        let status =
            StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
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
        self.queue_post_faults(n, PostFault::CreateThenFail);
    }

    /// The next `n` valid POST /deployments create the deployment, then wait `delay` before the 201.
    pub fn hang_next_posts(&self, n: usize, delay: Duration) {
        self.queue_post_faults(n, PostFault::Hang(delay));
    }

    /// The next `n` authenticated GETs, whatever the endpoint, answer `status` with an error body.
    pub fn fail_next_gets(&self, n: usize, status: u16) {
        let status =
            StatusCode::from_u16(status).unwrap_or_else(|_| panic!("invalid HTTP status {status}"));
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
