//! `kind = "argocd"`: rolls an Argo CD application back to an entry of its sync history.
//!
//! A release is the git revision Argo CD records in `status.history[].revision`. A rollback is
//! `POST /api/v1/applications/{name}/rollback {"id": <history id>}`, which Argo CD turns into a
//! sync *operation*: requested in the top-level `operation` field, then run by the controller
//! and reported in `status.operationState` (Running → Succeeded | Failed | Error), and, when it
//! succeeds, appended to `status.history` with the next id.
//!
//! Exactly once: a rollback carries no idempotency key and no free text, so the application
//! itself is the record. Before the first call the newest history id and the start of the last
//! operation are persisted with the intent (its `task_id`, "after history=N operation=T").
//! Every later attempt — a retry after a fault, or after a restart — first looks for an
//! operation or history entry of the target revision newer than that, and adopts it instead of
//! posting again. Argo CD refuses rollbacks of applications with auto-sync (the next sync would
//! undo them); backstop says so plainly rather than fighting the GitOps loop.

use std::fmt;

use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::ArgoCdConfig;
use crate::deployer::retry::{delay, with_retry};
use crate::deployer::{DeployerError, Exec, ExecOutcome, Target};
use crate::limits;
use crate::metrics::Metrics;
use crate::model::{DeployIntent, IntentState};

pub mod failure;

/// Argo CD writes whole-second timestamps with its own clock: without a baseline, an operation
/// that started this long before the decision may still be the one backstop asked for.
const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// What Argo CD answers (gRPC FailedPrecondition) while an operation runs; worth waiting out.
const BUSY: &str = "another operation is already in progress";

/// A client for one `[deployers.NAME]` of kind argocd.
#[derive(Clone)]
pub struct ArgoCdClient {
    name: String,
    config: ArgoCdConfig,
    http: reqwest::Client,
    metrics: Metrics,
}

impl fmt::Debug for ArgoCdClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgoCdClient")
            .field("name", &self.name)
            .field("url", &crate::secret::redact_url(&self.config.url))
            .finish_non_exhaustive()
    }
}

/// The parts of `v1alpha1.Application` backstop reads ([`decode`]).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: AppStatus,
    /// Requested or running; the controller clears it when the operation completes.
    #[serde(default)]
    operation: Option<Operation>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    sync_policy: Option<SyncPolicy>,
}

#[derive(Debug, Default, Deserialize)]
struct SyncPolicy {
    #[serde(default)]
    automated: Option<Automated>,
}

/// `automated: {}` is on; since Argo CD 3.1 `enabled: false` turns it off but keeps its options.
#[derive(Debug, Default, Deserialize)]
struct Automated {
    #[serde(default)]
    enabled: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AppStatus {
    #[serde(default)]
    history: Vec<HistoryEntry>,
    #[serde(default)]
    operation_state: Option<OperationState>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryEntry {
    /// int64; starts at 0. Argo CD encodes it as a JSON number; accept a string too.
    #[serde(deserialize_with = "int64")]
    id: i64,
    #[serde(default)]
    revision: Option<String>,
    /// Multi-source applications record one revision per source instead.
    #[serde(default)]
    revisions: Vec<String>,
    #[serde(default)]
    deploy_started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    deployed_at: Option<DateTime<Utc>>,
}

impl HistoryEntry {
    /// The release this entry deployed: the revision, or a multi-source app's revisions joined.
    fn release(&self) -> String {
        match self.revision.as_deref() {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => self.revisions.join(","),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
struct Operation {
    #[serde(default)]
    sync: Option<SyncOperation>,
}

#[derive(Debug, Default, Deserialize)]
struct SyncOperation {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Vec<String>,
}

impl Operation {
    fn revision(&self) -> String {
        let Some(s) = &self.sync else {
            return String::new();
        };
        match s.revision.as_deref() {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => s.revisions.join(","),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationState {
    #[serde(default)]
    operation: Operation,
    #[serde(default)]
    phase: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    sync_result: Option<failure::SyncResult>,
}

impl OperationState {
    fn completed(&self) -> bool {
        matches!(self.phase.as_str(), "Succeeded" | "Failed" | "Error")
    }
}

fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| serde::de::Error::custom("id is not an int64")),
        Value::String(s) => s.parse().map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!("id is {other}"))),
    }
}

/// The application as it was before backstop's first rollback call.
#[derive(Debug, Clone, PartialEq)]
struct Baseline {
    /// Newest history id; `None`: the history was empty.
    history: Option<i64>,
    /// Revision and start of the operation in `status.operationState`, if any.
    operation: Option<(String, DateTime<Utc>)>,
}

impl Baseline {
    fn of(app: &Application) -> Self {
        let state = app.status.operation_state.as_ref();
        Baseline {
            history: app.status.history.iter().map(|h| h.id).max(),
            operation: state.and_then(|s| Some((s.operation.revision(), s.started_at?))),
        }
    }

    /// Whether `s` is the operation that was there already. Starts are whole seconds, so one
    /// that has not completed (the baseline's had: backstop never posts while one runs) is new.
    fn is(&self, s: &OperationState) -> bool {
        self.operation.as_ref().is_some_and(|(rev, at)| {
            s.started_at == Some(*at) && s.operation.revision() == *rev && s.completed()
        })
    }

    /// The `task_id` text: readable in the status, parsed back after a restart.
    fn encode(&self) -> String {
        let history = self.history.map_or("none".into(), |h| h.to_string());
        let operation = self.operation.as_ref().map_or("none".into(), |(rev, at)| {
            format!(
                "{rev}@{}",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
        format!("after history={history} operation={operation}")
    }

    fn decode(text: &str) -> Option<Self> {
        let rest = text.strip_prefix("after ")?;
        let mut b = Baseline {
            history: None,
            operation: None,
        };
        for part in rest.split_whitespace() {
            match part.split_once('=')? {
                ("history", "none") | ("operation", "none") => {}
                ("history", h) => b.history = Some(h.parse().ok()?),
                ("operation", op) => {
                    let (rev, at) = op.rsplit_once('@')?;
                    b.operation = Some((rev.to_string(), at.parse().ok()?));
                }
                _ => return None,
            }
        }
        Some(b)
    }
}

/// backstop's rollback operation, as far as the application shows it.
#[derive(Debug, Clone, PartialEq)]
enum Ours {
    /// Nothing newer than the baseline (or the decision) targets the revision.
    Absent,
    /// Requested; the controller has not started it yet.
    Queued,
    /// Started and not completed (Running, Terminating).
    Running {
        phase: String,
        message: String,
    },
    Succeeded,
    Failed {
        phase: String,
        message: String,
    },
}

/// Finds the operation that deploys `revision` and is newer than `baseline` (or, without one,
/// started no earlier than `decided_at` less the clock skew). Pure, so it is tested exhaustively.
fn find_ours(
    app: &Application,
    revision: &str,
    baseline: Option<&Baseline>,
    decided_at: DateTime<Utc>,
) -> Ours {
    let not_before = decided_at - CLOCK_SKEW;
    let state = app.status.operation_state.as_ref().filter(|s| {
        s.operation.revision() == revision
            && match baseline {
                Some(b) => s.started_at.is_some() && !b.is(s),
                None => s.started_at.is_some_and(|t| t >= not_before),
            }
    });
    let running = |s: &OperationState| Ours::Running {
        phase: s.phase.clone(),
        message: s.message.clone().unwrap_or_default(),
    };
    if let Some(op) = &app.operation {
        if op.revision() == revision {
            return match state {
                Some(s) if !s.completed() => running(s),
                _ => Ours::Queued,
            };
        }
    }
    if let Some(s) = state {
        return match s.phase.as_str() {
            "Succeeded" => Ours::Succeeded,
            "Failed" | "Error" => Ours::Failed {
                phase: s.phase.clone(),
                message: s.message.clone().unwrap_or_default(),
            },
            _ => running(s),
        };
    }
    // Completed and since replaced by another operation: the history still shows it.
    let newest = app.status.history.iter().max_by_key(|h| h.id);
    if let Some(h) = newest.filter(|h| h.release() == revision) {
        let newer = match baseline {
            Some(b) => b.history.is_none_or(|m| h.id > m),
            None => h
                .deploy_started_at
                .or(h.deployed_at)
                .is_some_and(|t| t >= not_before),
        };
        if newer {
            return Ours::Succeeded;
        }
    }
    Ours::Absent
}

/// The newest history entry synced after the condemned revision's newest entry, when the
/// condemned revision is in the history at all (without it nothing can be ordered, and a false
/// "newer" would leave a bad release running). Pure, tested beside the others.
fn newer_sync<'a>(app: &'a Application, condemned: &str) -> Option<&'a HistoryEntry> {
    let condemned_id = history_id(app, condemned)?;
    app.status
        .history
        .iter()
        .filter(|h| h.id > condemned_id)
        .max_by_key(|h| h.id)
}

/// Whether auto-sync is on (it makes Argo CD refuse every rollback).
fn auto_sync(app: &Application) -> bool {
    app.spec
        .sync_policy
        .as_ref()
        .and_then(|p| p.automated.as_ref())
        .is_some_and(|a| a.enabled != Some(false))
}

/// The newest history id that deployed `revision`.
fn history_id(app: &Application, revision: &str) -> Option<i64> {
    app.status
        .history
        .iter()
        .filter(|h| h.release() == revision)
        .map(|h| h.id)
        .max()
}

/// History releases, newest first, each once.
fn revisions_newest_first(app: &Application) -> Vec<String> {
    let mut entries: Vec<&HistoryEntry> = app.status.history.iter().collect();
    entries.sort_by_key(|h| std::cmp::Reverse(h.id));
    let mut out: Vec<String> = Vec::new();
    for h in entries {
        let r = h.release();
        if !r.is_empty() && !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// An application document (`GET /api/v1/applications/{name}`, and the answer to a rollback).
/// Pure and total: any bytes give the application or an error naming the problem.
pub fn decode(body: &[u8]) -> Result<Application, DeployerError> {
    serde_json::from_slice(body).map_err(|e| DeployerError::Malformed(format!("application: {e}")))
}

/// `{"error", "code", "message"}` (grpc-gateway's error body) as text; else the body's start.
pub fn error_text(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        message: Option<String>,
        #[serde(default)]
        error: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(e) if e.message.is_some() || e.error.is_some() => e
            .message
            .filter(|m| !m.is_empty())
            .or(e.error)
            .map(|m| {
                crate::text::truncate(
                    &crate::text::clean_line(&m),
                    crate::deployer::octopus::decode::MAX_ERROR_TEXT,
                )
            })
            .unwrap_or_default(),
        _ => crate::text::clean_line(
            &String::from_utf8_lossy(body)
                .chars()
                .take(200)
                .collect::<String>(),
        ),
    }
}

fn is_busy(e: &DeployerError) -> bool {
    matches!(e, DeployerError::Rejected { message, .. } if message.contains(BUSY))
}

fn transport(e: reqwest::Error) -> DeployerError {
    DeployerError::from_reqwest(e)
}

impl ArgoCdClient {
    pub fn new(name: &str, config: ArgoCdConfig, http: reqwest::Client, metrics: Metrics) -> Self {
        ArgoCdClient {
            name: name.to_string(),
            config,
            http,
            metrics,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn config(&self) -> &ArgoCdConfig {
        &self.config
    }

    /// `{url}/api/v1/applications/{name}[/rollback]`; `ns/name` selects an app namespace.
    fn url(&self, app: &str, rollback: bool) -> Result<Url, DeployerError> {
        let (ns, name) = split_app(app);
        let mut url = Url::parse(&self.config.url)
            .map_err(|e| DeployerError::Malformed(format!("deployer url: {e}")))?;
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|()| DeployerError::Malformed("deployer url cannot have a path".into()))?;
            segs.pop_if_empty()
                .extend(["api", "v1", "applications", name]);
            if rollback {
                segs.push("rollback");
            }
        }
        if let Some(ns) = ns {
            url.query_pairs_mut().append_pair("appNamespace", ns);
        }
        Ok(url)
    }

    /// One request; every failure is counted in the deployer error metric by operation.
    async fn request(
        &self,
        operation: &str,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Vec<u8>, DeployerError> {
        let result = self.request_inner(method, url, body).await;
        if let Err(e) = &result {
            self.metrics.deployer_error(&self.name, operation);
            tracing::debug!(deployer = %self.name, operation, error = %e, "argocd call failed");
        }
        result
    }

    async fn request_inner(
        &self,
        method: Method,
        url: Url,
        body: Option<Value>,
    ) -> Result<Vec<u8>, DeployerError> {
        let mut req = self
            .http
            .request(method, url)
            .bearer_auth(self.config.token.expose())
            .header("Accept", "application/json")
            .timeout(self.config.calls.timeout);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let retry_after = crate::retry_after::seconds(resp.headers(), Utc::now());
        let bytes = limits::read(resp, limits::ARGOCD)
            .await
            .map_err(DeployerError::from_read)?;
        if status.is_success() {
            return Ok(bytes);
        }
        Err(DeployerError::from_status(
            status,
            error_text(&bytes),
            retry_after,
        ))
    }

    /// `GET /api/v1/applications/{name}`.
    async fn application(&self, app: &str) -> Result<Application, DeployerError> {
        let body = self
            .request("get_application", Method::GET, self.url(app, false)?, None)
            .await?;
        decode(&body)
    }

    /// The application, retrying transient failures; shutdown ends the wait.
    async fn application_retrying(
        &self,
        app: &str,
        cancel: &CancellationToken,
    ) -> Result<Application, DeployerError> {
        with_retry(self.config.calls.max_retries, cancel, || {
            self.application(app)
        })
        .await
    }

    /// `POST /api/v1/applications/{name}/rollback`. Argo CD answers with the application.
    async fn rollback(&self, app: &str, id: i64) -> Result<(), DeployerError> {
        let mut body = json!({ "id": id, "prune": false, "dryRun": false });
        if let (Some(ns), _) = split_app(app) {
            body["appNamespace"] = json!(ns);
        }
        let answer = self
            .request("rollback", Method::POST, self.url(app, true)?, Some(body))
            .await?;
        // Only its being JSON matters: what the rollback did is read from the application next.
        serde_json::from_slice::<serde::de::IgnoredAny>(&answer)
            .map(drop)
            .map_err(|e| DeployerError::Malformed(format!("rollback answer: {e}")))
    }

    pub(crate) async fn previous_revisions(
        &self,
        target: &Target<'_>,
        cancel: &CancellationToken,
    ) -> Result<Vec<String>, DeployerError> {
        let Some(app) = target.application else {
            return Ok(Vec::new());
        };
        let a = self.application_retrying(app, cancel).await?;
        Ok(revisions_newest_first(&a))
    }

    pub(crate) async fn execute(
        &self,
        target: &Target<'_>,
        rec: &mut DeployIntent,
        mut exec: Exec<'_>,
    ) -> ExecOutcome {
        let Some(app) = target.application else {
            return ExecOutcome::Failed(
                "the watch names no Argo CD application (`application`)".into(),
            );
        };
        if rec.state == IntentState::Pending {
            if let Some(out) = self.start_once(app, target.watch, rec, &mut exec).await {
                return out;
            }
        }
        self.follow(app, rec, &mut exec).await
    }

    /// Requests the rollback unless an earlier attempt's operation exists. `None`: it exists now.
    async fn start_once(
        &self,
        app: &str,
        watch: &str,
        rec: &mut DeployIntent,
        exec: &mut Exec<'_>,
    ) -> Option<ExecOutcome> {
        let revision = rec.target_release.clone();
        let attempts = self.config.calls.max_retries.max(1);
        let mut last_error: Option<DeployerError> = None;
        for attempt in 0..attempts {
            (exec.progress)(rec);
            if attempt > 0 {
                let wait = delay(
                    attempt - 1,
                    last_error.as_ref().and_then(DeployerError::retry_after),
                );
                if !exec.sleep(wait).await {
                    return Some(ExecOutcome::Cancelled);
                }
            }
            let a = match self.application_retrying(app, exec.cancel).await {
                Ok(a) => a,
                Err(DeployerError::Cancelled) => return Some(ExecOutcome::Cancelled),
                Err(e) => {
                    let hint = match e {
                        DeployerError::Unauthorized { status: 403, .. } => " (Argo CD answers 403 both when the application does not exist and when the token may not read it)",
                        _ => "",
                    };
                    return Some(ExecOutcome::Failed(format!(
                        "cannot read Argo CD application {app}: {e}{hint}"
                    )));
                }
            };
            if rec.calls > 0 {
                let baseline = rec.task_id.as_deref().and_then(Baseline::decode);
                if find_ours(&a, &revision, baseline.as_ref(), rec.decided_at) != Ours::Absent {
                    tracing::warn!(%watch, application = %app, %revision, "found the rollback an earlier attempt started; adopting it");
                    rec.state = IntentState::Created;
                    (exec.progress)(rec);
                    return None;
                }
            }
            if let Some(h) = newer_sync(&a, &rec.condemned_release) {
                // Someone synced the application after the condemned revision: never roll
                // back over it.
                tracing::warn!(%watch, application = %app, revision = %h.release(), history_id = h.id, "a newer sync than the condemned revision exists; not rolling back");
                return Some(ExecOutcome::Superseded(crate::model::NewerDeployment {
                    id: format!("{app}#history-{}", h.id),
                    release: h.release(),
                    created: h
                        .deployed_at
                        .or(h.deploy_started_at)
                        .unwrap_or(rec.decided_at),
                }));
            }
            if auto_sync(&a) {
                return Some(ExecOutcome::Failed(format!(
                    "Argo CD application {app} has auto-sync enabled, which forbids rollback; disable auto-sync (or roll forward in git) — backstop did not roll back"
                )));
            }
            let Some(id) = history_id(&a, &revision) else {
                return Some(ExecOutcome::Failed(format!(
                    "revision {revision} is not in the history of Argo CD application {app} (it keeps the last `revisionHistoryLimit` syncs, 10 by default); backstop did not roll back"
                )));
            };
            if let Some(op) = &a.operation {
                // Posting would be refused; wait for the running operation instead.
                let msg = format!("{BUSY} (a sync to {})", op.revision());
                tracing::warn!(%watch, application = %app, "{msg}; waiting before rolling back");
                last_error = Some(DeployerError::Rejected {
                    status: 400,
                    message: msg,
                });
                continue;
            }
            if rec.calls == 0 {
                rec.task_id = Some(Baseline::of(&a).encode());
            }
            // What is asked for, known before the answer (which may be lost).
            rec.deployment_id = Some(format!("{app}#history-{id}"));
            rec.calls += 1;
            if !(exec.progress)(rec) {
                return Some(ExecOutcome::Failed(crate::deployer::NOT_RECORDED.into()));
            }
            // Not cancellable: an in-flight call is allowed to finish (bounded by the timeout).
            match self.rollback(app, id).await {
                Ok(()) => {
                    tracing::info!(%watch, application = %app, %revision, history_id = id, "rollback requested");
                    rec.state = IntentState::Created;
                    rec.detail = Some(format!("rollback to history id {id} requested"));
                    (exec.progress)(rec);
                    return None;
                }
                Err(e) if e.is_retryable() || is_busy(&e) => {
                    tracing::warn!(%watch, error = %e, attempt = attempt + 1, "rollback call failed; will look for it before retrying");
                    last_error = Some(e);
                }
                Err(e) => {
                    return Some(ExecOutcome::Failed(format!(
                        "Argo CD refused the rollback of {app} to history id {id} (revision {revision}): {e}"
                    )))
                }
            }
        }
        let last = last_error.map(|e| e.to_string()).unwrap_or_default();
        let hint = if last.contains(BUSY) {
            "; another operation kept running (`argocd app terminate-op` stops it)"
        } else {
            ""
        };
        Some(ExecOutcome::Failed(format!(
            "gave up after {attempts} attempts; last error: {last}{hint}"
        )))
    }

    /// Polls the application until the rollback operation completes, or `task_timeout`.
    async fn follow(&self, app: &str, rec: &mut DeployIntent, exec: &mut Exec<'_>) -> ExecOutcome {
        let revision = rec.target_release.clone();
        let baseline = rec.task_id.as_deref().and_then(Baseline::decode);
        let timeout = self.config.calls.task_timeout;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            (exec.progress)(rec);
            match self.application(app).await {
                Ok(a) => {
                    let detail = match find_ours(&a, &revision, baseline.as_ref(), rec.decided_at) {
                        Ours::Succeeded => {
                            rec.state = IntentState::Succeeded;
                            rec.detail = None;
                            (exec.progress)(rec);
                            return ExecOutcome::Succeeded;
                        }
                        Ours::Failed { phase, message } => {
                            return ExecOutcome::Failed(format!(
                                "Argo CD's sync of {app} to {revision} ended {phase}: {message}"
                            ))
                        }
                        Ours::Running { phase, message } if message.is_empty() => {
                            format!("sync to {revision} {phase}")
                        }
                        Ours::Running { phase, message } => {
                            format!("sync to {revision} {phase}: {message}")
                        }
                        Ours::Queued => format!("sync to {revision} requested; not started yet"),
                        Ours::Absent => match replaced_by(&a, &revision, baseline.as_ref()) {
                            Some(other) => {
                                return ExecOutcome::Failed(format!(
                                    "the rollback of {app} to {revision} was replaced by another operation ({other}) before it succeeded; check the application"
                                ))
                            }
                            None => format!("waiting for Argo CD to start the sync to {revision}"),
                        },
                    };
                    if rec.detail.as_deref() != Some(detail.as_str()) {
                        rec.detail = Some(detail);
                    }
                }
                Err(e) => {
                    tracing::warn!(application = %app, error = %e, "cannot read the application; will retry")
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return ExecOutcome::Failed(format!(
                    "the sync of {app} to {revision} did not complete within {}",
                    humantime::format_duration(timeout)
                ));
            }
            if !exec.sleep(self.config.calls.task_poll).await {
                return ExecOutcome::Cancelled;
            }
        }
    }
}

/// A newer operation to another revision, which means backstop's own is gone.
fn replaced_by(app: &Application, revision: &str, baseline: Option<&Baseline>) -> Option<String> {
    let b = baseline?;
    let s = app.status.operation_state.as_ref()?;
    let other = s.operation.revision();
    (other != revision && s.started_at.is_some() && !b.is(s))
        .then(|| format!("a sync to {other}, {}", s.phase))
}

/// `namespace/name` (apps in any namespace) or a plain name.
fn split_app(app: &str) -> (Option<&str>, &str) {
    match app.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, app),
    }
}

#[cfg(test)]
mod tests;
