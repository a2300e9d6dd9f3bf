//! `kind = "webhook"` deployer: any CD system with an HTTP endpoint that deploys a release.
//!
//! One request (method, URL and JSON body filled from the intent) asks the endpoint to deploy;
//! an optional `status_url` is then polled until a field of its JSON answer says the deployment
//! succeeded or failed.
//!
//! **Exactly once is a contract with the endpoint.** Every attempt for one intent — the first,
//! each retry after a 5xx/429/timeout/lost connection, and a re-send after a backstop restart —
//! carries the same `Idempotency-Key` header (the intent's unique marker, also available as
//! `{{idempotency_key}}`). The receiving endpoint must deduplicate on it: a key it has seen
//! must not start a second deployment, and should answer as it did the first time. backstop
//! cannot search a generic endpoint for a deployment it made, so without that deduplication a
//! response lost in transit can deploy twice.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::time::Instant;

use crate::config::WebhookDeployerConfig;
use crate::deployer::retry::delay;
use crate::deployer::{fill, placeholders, DeployerError, Exec, ExecOutcome, Target};
use crate::limits;
use crate::metrics::Metrics;
use crate::model::{DeployIntent, IntentState};

/// Error bodies are cut to this many characters in messages.
const BODY_EXCERPT: usize = 200;
/// Operation labels of `backstop_deployer_api_errors_total`, shared with the other kinds so that
/// dashboards and alerts see every deployer alike.
const OP_DEPLOY: &str = "create_deployment";
const OP_STATUS: &str = "get_task";

/// A client for one `[deployers.NAME]` of kind webhook.
#[derive(Clone)]
pub struct WebhookDeployer {
    name: String,
    config: WebhookDeployerConfig,
    http: reqwest::Client,
    metrics: Metrics,
}

impl std::fmt::Debug for WebhookDeployer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither headers nor secret headers: either may carry a token.
        f.debug_struct("WebhookDeployer")
            .field("name", &self.name)
            .field("method", &self.config.method)
            .field("url", &crate::secret::redact_url(&self.config.url))
            .finish_non_exhaustive()
    }
}

impl WebhookDeployer {
    pub fn new(
        name: &str,
        config: WebhookDeployerConfig,
        http: reqwest::Client,
        metrics: Metrics,
    ) -> Self {
        WebhookDeployer {
            name: name.to_string(),
            config,
            http,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &WebhookDeployerConfig {
        &self.config
    }

    /// Sends the deploy request (again, with the same key, when a previous process may have
    /// sent it), then follows the deployment through `status_url` when there is one.
    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        mut exec: Exec<'_>,
    ) -> ExecOutcome {
        if rec.state == IntentState::Pending {
            if let Some(out) = self.deploy(target, rec, &mut exec).await {
                return out;
            }
        }
        match rec.state {
            IntentState::Succeeded => ExecOutcome::Succeeded,
            IntentState::Failed => ExecOutcome::Failed(
                rec.detail
                    .clone()
                    .unwrap_or_else(|| "the deployment failed".into()),
            ),
            IntentState::Created | IntentState::Pending => {
                self.follow(target, rec, &mut exec).await
            }
            IntentState::Unknown | IntentState::Superseded => {
                crate::deployer::octopus::protocol::outcome(rec)
                    .unwrap_or_else(|| ExecOutcome::Failed("the deployment failed".into()))
            }
        }
    }

    /// Sends the deploy request until it is accepted, refused, or the attempts are used up.
    /// `None` once accepted (the state is then Created or Succeeded).
    async fn deploy(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        exec: &mut Exec<'_>,
    ) -> Option<ExecOutcome> {
        if rec.calls > 0 {
            tracing::warn!(deployer = %self.name, watch = %target.watch, calls = rec.calls, "re-sending a deploy request a previous process may have sent; same idempotency key");
        }
        let attempts = self.config.calls.max_retries.max(1);
        let mut last_error: Option<DeployerError> = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                let retry_after = last_error.as_ref().and_then(DeployerError::retry_after);
                if !exec.sleep(delay(attempt - 1, retry_after)).await {
                    return Some(ExecOutcome::Cancelled);
                }
            }
            let request = match self.deploy_request(target, rec) {
                Ok(r) => r,
                Err(e) => return Some(ExecOutcome::Failed(e)),
            };
            rec.calls += 1;
            if !(exec.progress)(rec) {
                return Some(ExecOutcome::Failed(crate::deployer::NOT_RECORDED.into()));
            }
            // Not cancellable: an in-flight request is allowed to finish (bounded by the timeout).
            match self.send_deploy(request).await {
                Ok(answer) => {
                    self.accepted(rec, answer.as_ref());
                    tracing::info!(deployer = %self.name, watch = %target.watch, deployment = ?rec.deployment_id, "deploy request accepted");
                    (exec.progress)(rec);
                    return None;
                }
                Err(e) => {
                    self.metrics.deployer_error(&self.name, OP_DEPLOY);
                    if !e.is_retryable() {
                        return Some(ExecOutcome::Failed(format!(
                            "the deploy endpoint refused the deployment: {e}"
                        )));
                    }
                    tracing::warn!(deployer = %self.name, watch = %target.watch, error = %e, attempt = attempt + 1, "deploy request failed; will re-send with the same idempotency key");
                    last_error = Some(e);
                }
            }
        }
        Some(ExecOutcome::Failed(format!(
            "gave up after {attempts} attempts; last error: {}",
            last_error.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// Records an accepted deploy request: Created when there is a status to follow.
    fn accepted(&self, rec: &mut DeployIntent, answer: Option<&Value>) {
        if let Some(id) = answer.and_then(|v| scalar(v.get("id")?)) {
            rec.deployment_id = Some(id);
        }
        if self.config.status_url.is_some() {
            rec.state = IntentState::Created;
            rec.detail = Some(match &rec.deployment_id {
                Some(id) => format!("deployment {id} accepted"),
                None => "deployment accepted".into(),
            });
        } else {
            rec.state = IntentState::Succeeded;
            rec.detail = Some("deploy request accepted (no status_url to follow)".into());
        }
    }

    /// The deploy request of an intent; an error is a configuration problem, not a call.
    fn deploy_request(
        &self,
        target: &Target<'_>,
        rec: &DeployIntent,
    ) -> Result<reqwest::Request, String> {
        let values = placeholders(target, rec);
        let method = Method::from_bytes(self.config.method.as_bytes())
            .map_err(|_| format!("invalid HTTP method {:?}", self.config.method))?;
        let mut req = self
            .authorized(
                self.http
                    .request(method, fill_url(&self.config.url, &values)),
            )
            .header("Idempotency-Key", &rec.marker);
        if let Some(body) = &self.config.body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(fill(body, &values, true));
        }
        req.build()
            .map_err(|e| format!("cannot build the deploy request: {}", e.without_url()))
    }

    /// Configured headers, plain and secret, plus the per-call timeout.
    fn authorized(&self, mut req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        for (name, value) in &self.config.headers {
            req = req.header(name, value);
        }
        for (name, secret) in &self.config.secret_headers {
            req = req.header(name, secret.expose());
        }
        req.header(reqwest::header::ACCEPT, "application/json")
            .timeout(self.config.calls.timeout)
    }

    /// The parsed answer when the status is a `success_status`; an empty, non-JSON or too
    /// large answer is still an acceptance (the status says the deployment was taken).
    async fn send_deploy(&self, request: reqwest::Request) -> Result<Option<Value>, DeployerError> {
        let answer = self.send(request).await?;
        if self.config.success_status.contains(&answer.0.as_u16()) {
            return Ok(answer.2.ok().and_then(|b| serde_json::from_slice(&b).ok()));
        }
        Err(refusal(answer))
    }

    /// Polls `status_url` until the deployment succeeded, failed, or `task_timeout` passed.
    async fn follow(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        exec: &mut Exec<'_>,
    ) -> ExecOutcome {
        let Some(template) = &self.config.status_url else {
            // Accepted before a reload removed status_url: acceptance is all there is to know.
            rec.state = IntentState::Succeeded;
            (exec.progress)(rec);
            return ExecOutcome::Succeeded;
        };
        // Besides the intent's values, `{{deployment_id}}`: the `id` of the accepting answer,
        // for endpoints that look a deployment up by their own id rather than by the key.
        let mut values = placeholders(target, rec);
        values.push(("deployment_id", rec.deployment_id.as_deref().unwrap_or("")));
        let url = fill_url(template, &values);
        let name = rec
            .deployment_id
            .as_deref()
            .map(|id| format!("deployment {id}"))
            .unwrap_or_else(|| "the deployment".into());
        let field = &self.config.status_field;
        let timeout = self.config.calls.task_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            (exec.progress)(rec);
            let request = match self.status_request(&url) {
                Ok(r) => r,
                Err(e) => return ExecOutcome::Failed(e),
            };
            let detail = match self.get_status(request).await {
                Ok(answer) => match lookup(&answer, field).and_then(scalar) {
                    Some(v) if matches_any(&v, &self.config.success_values) => {
                        rec.state = IntentState::Succeeded;
                        rec.detail = Some(format!("{name}: {field} = {v}"));
                        (exec.progress)(rec);
                        return ExecOutcome::Succeeded;
                    }
                    Some(v) if matches_any(&v, &self.config.failure_values) => {
                        return ExecOutcome::Failed(format!("{name} ended with {field} = {v:?}"));
                    }
                    Some(v) => format!("{name}: {field} = {v}"),
                    None => format!("{name}: the status answer has no {field:?} yet"),
                },
                Err(e) => {
                    self.metrics.deployer_error(&self.name, OP_STATUS);
                    // A refusal will not heal by itself; anything else may (a 404 included:
                    // some systems list a deployment a moment after accepting it).
                    if matches!(
                        e,
                        DeployerError::Unauthorized { .. } | DeployerError::Rejected { .. }
                    ) {
                        return ExecOutcome::Failed(format!(
                            "cannot read the status of {name}: {e}"
                        ));
                    }
                    tracing::warn!(deployer = %self.name, error = %e, "cannot read deployment status; will retry");
                    format!("{name}: cannot read its status: {e}")
                }
            };
            if rec.detail.as_deref() != Some(detail.as_str()) {
                rec.detail = Some(detail);
                (exec.progress)(rec);
            }
            if Instant::now() >= deadline {
                return ExecOutcome::Failed(format!(
                    "{name} did not finish within {} (last: {})",
                    humantime::format_duration(timeout),
                    rec.detail.as_deref().unwrap_or("no status")
                ));
            }
            if !exec.sleep(self.config.calls.task_poll).await {
                return ExecOutcome::Cancelled;
            }
        }
    }

    fn status_request(&self, url: &str) -> Result<reqwest::Request, String> {
        self.authorized(self.http.get(url))
            .build()
            .map_err(|e| format!("cannot build the status request: {}", e.without_url()))
    }

    async fn get_status(&self, request: reqwest::Request) -> Result<Value, DeployerError> {
        let answer = self.send(request).await?;
        if !answer.0.is_success() {
            return Err(refusal(answer));
        }
        serde_json::from_slice(&answer.2.map_err(DeployerError::Malformed)?)
            .map_err(|e| DeployerError::Malformed(e.to_string()))
    }

    /// Sends a request: status, `Retry-After` seconds, and the body, or why it was not read
    /// (larger than [`limits::WEBHOOK_DEPLOYER`]): what that means depends on the status.
    async fn send(&self, request: reqwest::Request) -> Result<Answer, DeployerError> {
        let resp = self
            .http
            .execute(request)
            .await
            .map_err(DeployerError::from_reqwest)?;
        let status = resp.status();
        let retry_after = crate::retry_after::seconds(resp.headers(), chrono::Utc::now());
        let body = match limits::read(resp, limits::WEBHOOK_DEPLOYER).await {
            Ok(bytes) => Ok(bytes),
            Err(e @ limits::ReadError::TooLarge(_)) => Err(e.to_string()),
            Err(e) => return Err(DeployerError::from_read(e)),
        };
        Ok((status, retry_after, body))
    }
}

/// A sent request's answer: status, `Retry-After` seconds, body or why it was not read.
type Answer = (StatusCode, Option<u64>, Result<Vec<u8>, String>);

/// A non-accepted answer as an error: 5xx, 408 and 429 are worth retrying, other statuses not.
fn classify(status: StatusCode, retry_after: Option<u64>, body: &[u8]) -> DeployerError {
    DeployerError::from_status(status, excerpt(body), retry_after)
}

/// [`classify`] for an [`Answer`], whose body may have been too large to read.
fn refusal((status, retry_after, body): Answer) -> DeployerError {
    match body {
        Ok(b) => classify(status, retry_after, &b),
        Err(too_large) => DeployerError::from_status(status, too_large, retry_after),
    }
}

/// The start of a body, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out: String = one_line.chars().take(BODY_EXCERPT).collect();
    if one_line.chars().count() > BODY_EXCERPT {
        out.push_str("...");
    }
    out
}

/// Fills a URL template, percent-encoding each value so that a release id with `/`, `?`, `&`
/// or spaces stays one path segment or query value.
pub fn fill_url(template: &str, values: &[(&str, &str)]) -> String {
    let encoded: Vec<(&str, String)> = values
        .iter()
        .map(|(name, value)| (*name, percent_encode(value)))
        .collect();
    let refs: Vec<(&str, &str)> = encoded.iter().map(|(n, v)| (*n, v.as_str())).collect();
    fill(template, &refs, false)
}

/// RFC 3986 percent-encoding of everything but the unreserved characters: safe in a path
/// segment and in a query value alike (unlike form encoding, whose `+` is literal in a path).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The value at a dotted path (`operation.phase`, `items.0.state`: numbers index arrays).
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => None,
    })
}

/// A string, number or boolean as text; anything else has no status to compare.
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Status values are compared without regard to ASCII case: `Succeeded` and `succeeded` alike.
fn matches_any(value: &str, candidates: &[String]) -> bool {
    candidates.iter().any(|c| c.eq_ignore_ascii_case(value))
}

#[cfg(test)]
mod tests;
