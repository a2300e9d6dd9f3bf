//! `kind = "http"`: a GET whose status code is the reading.

use std::time::Duration;

use super::ProbeError;
use crate::judge::Reading;

/// Any HTTP answer is a reading (a 503 is the app speaking); only no answer is an error.
pub async fn sample(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<Reading, ProbeError> {
    let resp = client
        .get(url)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| ProbeError::from_reqwest(e, timeout))?;
    Ok(Reading::Status(resp.status().as_u16()))
}
