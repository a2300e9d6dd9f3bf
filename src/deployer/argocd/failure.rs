//! What Argo CD can say about a failed deployment: its application's last sync operation
//! (`status.operationState`), when that was a sync of the release and it ended `Failed` or
//! `Error`. One `GET` of the application, which backstop reads anyway; pure past that.
//!
//! Argo CD keeps no log of its own, and it deploys no machines: what it has is the operation's
//! message ("one or more objects failed to apply, reason: ...") and, per resource, the result
//! of applying it (`syncResult.resources[]`: `status` SyncFailed, or a hook whose `hookPhase`
//! is Failed or Error, with a `message`). Those are the step and the log here.

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::{Application, ArgoCdClient};
use crate::deployer::{DeployerError, Target};
use crate::model::DeployFailure;
use crate::text::{clean_line, last_lines, truncate};

/// Longest message or resource name kept, in bytes.
const MAX_TEXT: usize = 1024;

/// `status.operationState.syncResult`: what the sync applied and how each resource fared.
#[derive(Debug, Default, Deserialize)]
pub struct SyncResult {
    #[serde(default)]
    revision: Option<String>,
    #[serde(default)]
    revisions: Vec<String>,
    #[serde(default)]
    resources: Vec<ResourceResult>,
}

/// One entry of `syncResult.resources` (`v1alpha1.ResourceResult`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceResult {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// Synced, SyncFailed, Pruned, PruneSkipped.
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    message: Option<String>,
    /// Set for hooks (PreSync, Sync, PostSync, SyncFail).
    #[serde(default)]
    hook_type: Option<String>,
    /// A hook's own outcome: Running, Succeeded, Failed, Error, Terminating.
    #[serde(default)]
    hook_phase: Option<String>,
}

impl ResourceResult {
    fn failed(&self) -> bool {
        self.status.as_deref() == Some("SyncFailed")
            || matches!(self.hook_phase.as_deref(), Some("Failed" | "Error"))
    }

    /// "Deployment shop/web", or "PreSync hook Job shop/migrate".
    fn label(&self) -> String {
        let name = match (self.namespace.as_deref(), self.name.as_deref()) {
            (Some(ns), Some(n)) if !ns.is_empty() => format!("{ns}/{n}"),
            (_, n) => n.unwrap_or("?").to_string(),
        };
        let kind = self.kind.as_deref().unwrap_or("resource");
        let label = match self.hook_type.as_deref() {
            Some(hook) if !hook.is_empty() => format!("{hook} hook {kind} {name}"),
            _ => format!("{kind} {name}"),
        };
        truncate(&clean_line(&label), MAX_TEXT)
    }
}

impl SyncResult {
    fn revision(&self) -> String {
        match self.revision.as_deref() {
            Some(r) if !r.is_empty() => r.to_string(),
            _ => self.revisions.join(","),
        }
    }
}

/// The failure the application's last operation reports for `release`, if it is a sync of
/// that release (the requested revision or the one it resolved to) that ended Failed or Error.
pub fn failure_of(app: &Application, release: &str) -> Option<DeployFailure> {
    let s = app.status.operation_state.as_ref()?;
    if release.is_empty() || !matches!(s.phase.as_str(), "Failed" | "Error") {
        return None;
    }
    let result = s.sync_result.as_ref();
    let ours = s.operation.revision() == release || result.is_some_and(|r| r.revision() == release);
    if !ours {
        return None;
    }
    let failed: Vec<&ResourceResult> = result
        .map(|r| r.resources.iter().filter(|r| r.failed()).collect())
        .unwrap_or_default();
    let log = failed
        .iter()
        .map(|r| {
            let message = clean_line(r.message.as_deref().unwrap_or_default());
            let outcome = r
                .hook_phase
                .as_deref()
                .or(r.status.as_deref())
                .unwrap_or("");
            format!("{}: {outcome}: {message}", r.label())
        })
        .collect();
    Some(DeployFailure {
        state: Some(truncate(&clean_line(&s.phase), 100)),
        error: s
            .message
            .as_deref()
            .map(|m| truncate(&clean_line(m), MAX_TEXT))
            .filter(|m| !m.is_empty()),
        step: failed.first().map(|r| r.label()),
        log_tail: last_lines(
            log,
            DeployFailure::MAX_LOG_LINES,
            DeployFailure::MAX_LOG_LINE,
            DeployFailure::MAX_LOG_BYTES,
        ),
        ..DeployFailure::default()
    })
}

impl ArgoCdClient {
    /// The failure of the watch's application's sync to `release` (see [`failure_of`]);
    /// `Ok(None)` when the watch names no application or the last operation is not a failed
    /// sync of it.
    pub(crate) async fn failure_details(
        &self,
        target: &Target<'_>,
        release: &str,
        cancel: &CancellationToken,
    ) -> Result<Option<DeployFailure>, DeployerError> {
        let Some(app) = target.application else {
            return Ok(None);
        };
        let a = self.application_retrying(app, cancel).await?;
        Ok(failure_of(&a, release))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn app(state: serde_json::Value) -> Application {
        serde_json::from_value(json!({"status": {"operationState": state}})).unwrap()
    }

    fn failed_sync() -> serde_json::Value {
        json!({
            "operation": {"sync": {"revision": "HEAD"}},
            "phase": "Failed",
            "message": "one or more objects failed to apply, reason: Deployment.apps \"web\" is invalid",
            "startedAt": "2026-03-02T14:05:00Z", "finishedAt": "2026-03-02T14:05:09Z",
            "syncResult": {
                "revision": "4f2a9c1",
                "source": {"repoURL": "https://git.example/shop.git", "path": "deploy"},
                "resources": [
                    {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "shop", "name": "web-config",
                     "status": "Synced", "message": "configmap/web-config configured", "syncPhase": "Sync"},
                    {"group": "batch", "version": "v1", "kind": "Job", "namespace": "shop", "name": "migrate",
                     "status": "Synced", "hookType": "PreSync", "hookPhase": "Failed",
                     "message": "Job has reached the specified backoff limit", "syncPhase": "PreSync"},
                    {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "shop", "name": "web",
                     "status": "SyncFailed", "message": "Deployment.apps \"web\" is invalid: \u{1b}[1mspec.replicas\u{1b}[0m: Invalid value: -1", "syncPhase": "Sync"},
                ],
            },
        })
    }

    #[test]
    fn a_failed_sync_of_the_release_names_the_failed_resources() {
        let f = failure_of(&app(failed_sync()), "4f2a9c1").expect("a failure");
        assert_eq!(f.state.as_deref(), Some("Failed"));
        assert_eq!(
            f.error.as_deref(),
            Some("one or more objects failed to apply, reason: Deployment.apps \"web\" is invalid")
        );
        assert_eq!(f.step.as_deref(), Some("PreSync hook Job shop/migrate"));
        assert_eq!((f.task, f.machine), (None, None));
        assert_eq!(
            f.log_tail,
            [
                "PreSync hook Job shop/migrate: Failed: Job has reached the specified backoff limit",
                "Deployment shop/web: SyncFailed: Deployment.apps \"web\" is invalid: spec.replicas: Invalid value: -1",
            ]
        );
        // The requested revision counts as well as the resolved one.
        let mut by_request = failed_sync();
        by_request["operation"]["sync"]["revision"] = json!("v1.4.0");
        assert!(failure_of(&app(by_request), "v1.4.0").is_some());
    }

    #[test]
    fn other_operations_say_nothing_about_the_release() {
        assert_eq!(
            failure_of(&app(failed_sync()), "0000000"),
            None,
            "another revision"
        );
        assert_eq!(failure_of(&app(failed_sync()), ""), None);
        for phase in ["Succeeded", "Running", "Terminating"] {
            let mut s = failed_sync();
            s["phase"] = json!(phase);
            assert_eq!(failure_of(&app(s), "4f2a9c1"), None, "{phase}");
        }
        let none: Application = serde_json::from_value(json!({"status": {}})).unwrap();
        assert_eq!(failure_of(&none, "4f2a9c1"), None);
        // An Error phase without a sync result still gives the message.
        let f = failure_of(
            &app(json!({"operation": {"sync": {"revision": "4f2a9c1"}}, "phase": "Error", "message": "ComparisonError: rpc error"})),
            "4f2a9c1",
        )
        .unwrap();
        assert_eq!(
            (f.state.as_deref(), f.error.as_deref(), f.step.as_deref()),
            (Some("Error"), Some("ComparisonError: rpc error"), None)
        );
        assert!(f.log_tail.is_empty());
    }

    #[test]
    fn many_failed_resources_are_bounded() {
        let resources: Vec<_> = (0..500)
            .map(|i| {
                json!({"kind": "Deployment", "namespace": "shop", "name": format!("web-{i}"),
                "status": "SyncFailed", "message": "x".repeat(1000)})
            })
            .collect();
        let mut s = failed_sync();
        s["syncResult"]["resources"] = json!(resources);
        let f = failure_of(&app(s), "4f2a9c1").unwrap();
        assert!(f.log_tail.len() <= DeployFailure::MAX_LOG_LINES);
        assert!(f
            .log_tail
            .iter()
            .all(|l| l.len() <= DeployFailure::MAX_LOG_LINE));
        assert!(f.log_tail.join("\n").len() <= DeployFailure::MAX_LOG_BYTES);
        assert!(f
            .log_tail
            .last()
            .unwrap()
            .starts_with("Deployment shop/web-499"));
    }
}
