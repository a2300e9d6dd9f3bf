//! How each stored record looks on the wire: every property of its Swagger definition, filled
//! in the way a real server fills it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::model::{is_completed, Deployment, Release, Task};
use super::state::State;

impl State {
    /// A deployment with its release's version and its task's state folded in.
    pub(super) fn render_deployment(&self, d: &Deployment) -> Value {
        let version = self.release(&d.release).map(|r| r.version.clone());
        let state = self.task_state_of(d);
        let (s, id) = (&d.space, &d.id);
        let mut v = json!({
            "Id": id, "SpaceId": s, "Name": format!("Deploy to {}", d.environment),
            "ReleaseId": d.release, "EnvironmentId": d.environment, "ProjectId": d.project,
            "ChannelId": d.channel, "DeploymentProcessId": format!("deploymentprocess-{}", d.project),
            "ManifestVariableSetId": format!("variableset-{id}"), "TaskId": d.task,
            "Created": rfc3339(d.created), "ChangesMarkdown": "",
            "Changes": [{
                "Version": version, "ReleaseNotes": null, "WorkItems": [], "BuildInformation": [],
                "Commits": [{"Id": "9fceb02", "LinkUrl": "https://git.example/shop/commit/9fceb02", "Comment": "Ship it"}],
            }],
            "DeployedBy": d.deployed_by.0, "DeployedById": d.deployed_by.1,
            "DeployedToMachineIds": if state == "Queued" { json!([]) } else { json!(["Machines-1"]) },
            "FailureEncountered": state == "Failed",
            "TentacleRetentionPeriod": {"Unit": "Items", "QuantityToKeep": 3, "ShouldKeepForever": false, "Strategy": "Count"},
            "LastModifiedOn": rfc3339(d.created), "LastModifiedBy": d.deployed_by.0,
            "Links": {
                "Self": format!("/api/{s}/deployments/{id}"), "Release": format!("/api/{s}/releases/{}", d.release),
                "Environment": format!("/api/{s}/environments/{}", d.environment),
                "Project": format!("/api/{s}/projects/{}", d.project), "Task": format!("/api/tasks/{}", d.task),
                "Web": format!("/app#/{s}/deployments/{id}"), "Artifacts": format!("/api/{s}/artifacts?regarding={id}"),
                "Interruptions": format!("/api/{s}/interruptions?regarding={id}"),
                "DeploymentProcess": format!("/api/{s}/deploymentprocesses/deploymentprocess-{}", d.project),
                "Variables": format!("/api/{s}/variables/variableset-{id}"),
            },
        });
        let obj = v.as_object_mut().expect("object literal");
        obj.extend(d.fields.clone());
        if let Some(tenant) = d.fields.get("TenantId").and_then(Value::as_str) {
            obj["Links"]["Tenant"] = json!(format!("/api/{s}/tenants/{tenant}"));
        }
        v
    }
}

impl Release {
    pub(super) fn render(&self) -> Value {
        let (s, id, p, n) = (
            &self.space,
            &self.id,
            &self.project,
            self.id.trim_start_matches("Releases-"),
        );
        json!({
            "Id": id, "SpaceId": s, "ProjectId": p, "ChannelId": "Channels-1", "Version": self.version,
            "ReleaseNotes": self.notes, "Assembled": rfc3339(self.assembled), "IgnoreChannelRules": false,
            "ProjectDeploymentProcessSnapshotId": format!("deploymentprocess-{p}-s-{n}"),
            "ProjectVariableSetSnapshotId": format!("variableset-{p}-s-{n}"),
            "LibraryVariableSetSnapshotIds": [],
            "SelectedPackages": [{"ActionName": "Deploy web", "PackageReferenceName": "", "StepName": "Deploy web", "Version": self.version}],
            "SelectedGitResources": [],
            "BuildInformation": [{
                "PackageId": "shop-web", "Version": self.version, "BuildEnvironment": "GitHub Actions",
                "BuildNumber": n, "BuildUrl": format!("https://ci.example/shop/runs/{n}"), "Branch": "main",
                "VcsType": "Git", "VcsRoot": "https://git.example/shop.git", "VcsCommitNumber": "9fceb02",
                "VcsCommitUrl": "https://git.example/shop/commit/9fceb02", "IssueTrackerName": null,
                "Commits": [{"Id": "9fceb02", "LinkUrl": "https://git.example/shop/commit/9fceb02", "Comment": "Ship it"}],
                "WorkItems": [],
            }],
            "VersionControlReference": null,
            "LastModifiedOn": rfc3339(self.assembled), "LastModifiedBy": "ci-bot",
            "Links": {
                "Self": format!("/api/{s}/releases/{id}"), "Project": format!("/api/{s}/projects/{p}"),
                "Progression": format!("/api/{s}/releases/{id}/progression"),
                "Deployments": format!("/api/{s}/releases/{id}/deployments{{?skip,take}}"),
                "DeploymentTemplate": format!("/api/{s}/releases/{id}/deployments/template"),
                "Artifacts": format!("/api/{s}/artifacts?regarding={id}"), "Web": format!("/app#/{s}/releases/{id}"),
            },
        })
    }
}

impl Task {
    pub(super) fn render(&self) -> Value {
        let (s, id, state) = (&self.space, &self.id, self.state);
        let done = is_completed(state);
        let elapsed = self.completed.unwrap_or_else(Utc::now) - self.started.unwrap_or(self.queued);
        let error = self.failure().map(|f| f.error).unwrap_or_default();
        json!({
            "Id": id, "SpaceId": s, "Name": "Deploy", "Description": self.description,
            "Arguments": {"DeploymentId": self.deployment}, "State": state,
            "Completed": self.completed.map(|t| t.format("%A, %-d %B %Y %-I:%M:%S %p %:z").to_string()),
            "QueueTime": rfc3339(self.queued), "QueueTimeExpiry": null,
            "StartTime": self.started.map(rfc3339), "LastUpdatedTime": rfc3339(self.updated),
            "CompletedTime": self.completed.map(rfc3339),
            "ServerNode": (state != "Queued").then_some("OctopusServerNodes-octopus-1"),
            "Duration": humanize(elapsed.num_seconds()), "ErrorMessage": error,
            "HasBeenPickedUpByProcessor": state != "Queued", "IsCompleted": done,
            "FinishedSuccessfully": state == "Success", "HasPendingInterruptions": self.interruptions,
            "CanRerun": done, "HasWarningsOrErrors": matches!(state, "Failed" | "TimedOut"),
            "ProjectId": self.project, "EstimatedRemainingQueueDurationSeconds": 0,
            "PendingInterruptionTypes": if self.interruptions { json!(["GuidedFailure"]) } else { json!([]) },
            "PendingPreconditionTypes": [], "HasPendingPreconditions": false,
            "LastModifiedOn": null, "LastModifiedBy": null,
            "Links": {
                "Self": format!("/api/tasks/{id}"), "Web": format!("/app#/{s}/tasks/{id}"),
                "Raw": format!("/api/tasks/{id}/raw"), "Rerun": format!("/api/tasks/rerun/{id}"),
                "Cancel": format!("/api/tasks/{id}/cancel"), "State": format!("/api/tasks/{id}/state"),
                "BlockedBy": format!("/api/tasks/{id}/blockedby"), "QueuedBehind": format!("/api/tasks/{id}/queued-behind{{?skip,take}}"),
                "Details": format!("/api/tasks/{id}/details{{?verbose,tail,ranges}}"),
                "Artifacts": format!("/api/{s}/artifacts?regarding={id}"),
                "Interruptions": format!("/api/{s}/interruptions?regarding={id}"),
            },
        })
    }
}

/// Octopus's `DateTimeOffset` format: milliseconds and an explicit offset.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// The task's `Duration` as the server words it ("1 minute 5 seconds").
fn humanize(secs: i64) -> String {
    match secs.max(0) {
        0 => "less than a second".into(),
        1 => "1 second".into(),
        s @ 2..=59 => format!("{s} seconds"),
        s @ 60..=119 => format!(
            "1 minute{}",
            if s > 60 {
                format!(" {} seconds", s - 60)
            } else {
                String::new()
            }
        ),
        s => format!("{} minutes", s / 60),
    }
}
