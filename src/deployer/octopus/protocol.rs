//! The exactly-once protocol of an Octopus deploy intent, as pure decisions.
//!
//! Octopus has no idempotency key on `POST /deployments`, so the intent's marker (a unique text
//! in Comments) stands in for one, and these rules make it safe:
//!
//! 1. Before every create attempt, including the first and after a restart, every deployment
//!    of the project+environment created since the condemned one is listed (all pages). One
//!    with the marker is adopted, never created again; two or more are a duplicate, reported.
//!    One that backstop did not make supersedes the intent: a person shipped something newer,
//!    and nothing is deployed over it.
//! 2. A create whose outcome is unknown (timeout, connection lost after sending, 5xx, a lost
//!    response, a crash during the call) is not repeated until the search has come back empty
//!    for `settle` after it, searching every few seconds: an overloaded server may commit
//!    after the client gave up.
//! 3. Only a definite "not created" (connection refused before sending, 408, 429) is retried
//!    at once, after the usual backoff (Retry-After honoured). Other 4xx answers are final.
//! 4. When the attempts are used up, an intent with an unknown attempt ends `unknown` (a human
//!    must look), never `failed` while a deployment may be running.
//!
//! The shell (`execute.rs`) asks [`next`] what to do, does it, and feeds the answer back with
//! the `on_*` functions, persisting the intent after each; the simulation drives the same
//! functions against a simulated server.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::deployer::retry::delay;
use crate::deployer::{DeployerError, Deployment, ExecOutcome, Task};
use crate::model::{DeployIntent, IntentState, NewerDeployment};

/// The text every marker starts with: deployments carrying it were made by backstop.
pub const MARKER_PREFIX: &str = "[backstop-";

/// Timing of the protocol, from the deployer's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long a create with an unknown outcome is searched for before another is made.
    pub settle: Duration,
    /// How often the marker is searched during the settle period.
    pub search_every: Duration,
    /// Create attempts at most.
    pub max_retries: u32,
    pub task_poll: Duration,
    pub task_timeout: Duration,
}

/// One deployer call.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// List every deployment of the project+environment created since `since`.
    Search {
        since: DateTime<Utc>,
    },
    /// `POST /deployments` with the intent's release, environment and comments.
    Create,
    /// Read the deployment, for its task id.
    ReadDeployment(String),
    ReadTask(String),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Call(Call),
    /// Nothing before this time.
    Wait(DateTime<Utc>),
    /// The intent is over.
    Done(ExecOutcome),
}

/// How far backstop's clock and the deployer's may disagree: the marker search looks this much
/// further back than the decision, so a deployment stamped by a slower server clock is found.
pub const CLOCK_SKEW: chrono::Duration = chrono::Duration::minutes(10);

/// The intent ids named by backstop markers (`[backstop-KIND:ID]`) in a deployment's Comments.
pub fn marker_ids(comments: &str) -> Vec<&str> {
    comments
        .match_indices(MARKER_PREFIX)
        .filter_map(|(at, _)| {
            let rest = &comments[at + MARKER_PREFIX.len()..];
            let end = rest.find(']')?;
            rest[..end].split_once(':').map(|(_, id)| id)
        })
        .collect()
}

/// How soon after the decision the first search must run for its listing to stand for "what
/// existed at the decision".
const PROMPT: chrono::Duration = chrono::Duration::seconds(60);

/// `now + d`, saturating instead of overflowing for absurd durations.
pub fn at(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// After a restart. A create that was started and has no recorded outcome may have landed;
/// and whatever was searched before is stale: a person may have deployed while backstop was
/// down, so the next create needs a fresh search.
pub fn resume(i: &mut DeployIntent, s: &Settings) {
    if let Some(started) = i.attempt_started.take() {
        let gave_up = at(started, s.timeout);
        i.ambiguous_since = Some(i.ambiguous_since.map_or(gave_up, |a| a.max(gave_up)));
    }
    i.searched_at = None;
}

/// The outcome of an intent that is over.
pub fn outcome(i: &DeployIntent) -> Option<ExecOutcome> {
    let detail = || i.detail.clone().unwrap_or_default();
    match i.state {
        IntentState::Pending | IntentState::Created => None,
        IntentState::Succeeded => Some(ExecOutcome::Succeeded),
        IntentState::Failed => Some(ExecOutcome::Failed(detail())),
        IntentState::Unknown => Some(ExecOutcome::Unknown(detail())),
        IntentState::Superseded => i.superseded_by.clone().map(ExecOutcome::Superseded),
    }
}

/// The next step of the intent.
pub fn next(i: &DeployIntent, s: &Settings, now: DateTime<Utc>) -> Next {
    if let Some(out) = outcome(i) {
        return Next::Done(out);
    }
    if let Some(t) = i.not_before.filter(|t| *t > now) {
        return Next::Wait(t);
    }
    if i.state == IntentState::Created {
        return match (&i.task_id, &i.deployment_id) {
            (Some(task), _) => Next::Call(Call::ReadTask(task.clone())),
            (None, Some(dep)) => Next::Call(Call::ReadDeployment(dep.clone())),
            (None, None) => Next::Done(ExecOutcome::Failed(
                "the deployment has no task to follow".into(),
            )),
        };
    }
    let since = search_since(i);
    let settled = |searched: Option<DateTime<Utc>>| match i.ambiguous_since {
        Some(a) => searched.is_some_and(|t| t >= at(a, s.settle)),
        None => searched.is_some(),
    };
    if !settled(i.searched_at) {
        return Next::Call(Call::Search { since });
    }
    if i.calls >= s.max_retries.max(1) {
        return Next::Done(match i.ambiguous_since {
            Some(_) => ExecOutcome::Unknown(format!(
                "{} create attempts; the outcome of at least one is unknown and no deployment with marker {} was found within the settle period: check Octopus before deploying by hand",
                i.calls, i.marker
            )),
            None => ExecOutcome::Failed(format!(
                "gave up after {} attempts; last error: {}",
                i.calls,
                i.detail.clone().unwrap_or_default()
            )),
        });
    }
    Next::Call(Call::Create)
}

/// Deployments created at or after this time are searched: the earlier of the condemned
/// deployment's creation and the decision, less [`CLOCK_SKEW`] (the decision is on backstop's
/// clock, creation times on the deployer's).
pub fn search_since(i: &DeployIntent) -> DateTime<Utc> {
    let base = [i.condemned_created, i.condemned_deployed_at]
        .into_iter()
        .flatten()
        .fold(i.decided_at, DateTime::min);
    base.checked_sub_signed(CLOCK_SKEW).unwrap_or(base)
}

/// Whether `d`, listed by a search, was deployed after the condemned deployment by someone
/// else and is (or may be) running: then nothing is deployed over it. Only the deployer's own
/// clock is compared: with the condemned deployment's creation time unknown, a deployment is
/// newer when it was not listed by the first search (made after the decision). A deployment
/// whose task failed or was cancelled never ran and supersedes nothing; another watch's
/// rollback does, like anyone's deployment.
pub fn supersedes(i: &DeployIntent, d: &Deployment) -> bool {
    let ours = d.comments.as_deref().is_some_and(|c| c.contains(&i.marker));
    let running = d
        .task_state
        .as_ref()
        .is_none_or(|s| s.is_alive_or_success());
    let newer = match (i.condemned_created, &i.listed_at_decision) {
        (Some(c), _) => d.created > c,
        (None, Some(listed)) => !listed.contains(&d.id),
        // Nothing better than backstop's own clock against the deployer's.
        (None, None) => d.created > i.decided_at,
    };
    // Another deployment of the condemned release (a redeploy, a trigger adding machines)
    // is the same bad release: it never supersedes its rollback.
    let other_release = d.release_id != i.condemned_release;
    !ours && running && newer && other_release && Some(&d.id) != i.condemned_deployment.as_ref()
}

fn end(i: &mut DeployIntent, state: IntentState, detail: String) {
    i.state = state;
    i.detail = Some(detail);
    i.not_before = None;
}

/// Learns from a listing what supersession compares with, before anything is compared (the
/// shell calls it too, before it reads the task states of would-be superseders): the
/// condemned deployment's creation time on the deployer's clock, read from the listing when it
/// was unknown; without it, what a first search right after the decision lists stands for
/// "what existed at the decision" (not after a restart, when a person may have deployed).
pub fn resolve_condemned(i: &mut DeployIntent, list: &[Deployment], now: DateTime<Utc>) {
    if i.condemned_created.is_none() {
        i.condemned_created = list
            .iter()
            .find(|d| Some(&d.id) == i.condemned_deployment.as_ref())
            .map(|d| d.created);
    }
    if i.condemned_created.is_none()
        && i.listed_at_decision.is_none()
        && now <= i.decided_at + PROMPT
    {
        i.listed_at_decision = Some(list.iter().map(|d| d.id.clone()).collect());
    }
}

/// Applies a search result; `now` is when the search *started* (a deployment committed after
/// that may be missing from it).
pub fn on_search(
    i: &mut DeployIntent,
    s: &Settings,
    result: Result<Vec<Deployment>, DeployerError>,
    now: DateTime<Utc>,
) {
    let list = match result {
        Ok(list) => list,
        Err(e) => return on_search_error(i, s, e, now),
    };
    i.errors = 0;
    let mut own: Vec<&Deployment> = list
        .iter()
        .filter(|d| {
            d.release_id == i.target_release
                && d.comments.as_deref().is_some_and(|c| c.contains(&i.marker))
        })
        .collect();
    own.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    if let Some(first) = own.first() {
        i.duplicates = own[1..].iter().map(|d| d.id.clone()).collect();
        i.deployment_id = Some(first.id.clone());
        i.created = Some(first.created);
        i.task_id = first.task_id.clone();
        i.state = IntentState::Created;
        i.not_before = None;
        i.detail = None;
        return;
    }
    resolve_condemned(i, &list, now);
    let newer = list
        .iter()
        .filter(|d| supersedes(i, d))
        .max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    if let Some(d) = newer {
        i.superseded_by = Some(NewerDeployment {
            id: d.id.clone(),
            release: d.release_id.clone(),
            created: d.created,
        });
        let detail = format!(
            "superseded: {} (release {}) was deployed after the condemned release by someone else; nothing deployed over it",
            d.id, d.release_id
        );
        return end(i, IntentState::Superseded, detail);
    }
    i.searched_at = Some(now);
    if let Some(a) = i.ambiguous_since {
        if now < at(a, s.settle) {
            i.not_before = Some(at(now, s.search_every).min(at(a, s.settle)));
        }
    }
}

fn on_search_error(i: &mut DeployIntent, s: &Settings, e: DeployerError, now: DateTime<Utc>) {
    i.errors += 1;
    if !e.is_retryable() || i.errors > s.max_retries.max(1) + 10 {
        let what = format!(
            "cannot list deployments to look for marker {}: {e}",
            i.marker
        );
        return match i.ambiguous_since {
            Some(_) => end(
                i,
                IntentState::Unknown,
                format!("{what}; an earlier create may have landed: check Octopus"),
            ),
            None => end(i, IntentState::Failed, what),
        };
    }
    i.detail = Some(format!("searching for the deployment: {e}"));
    i.not_before = Some(at(now, delay(i.errors - 1, e.retry_after())));
}

/// Records a create attempt before it is made (persist the intent before calling).
pub fn on_create_started(i: &mut DeployIntent, now: DateTime<Utc>) {
    i.calls += 1;
    i.attempt_started = Some(now);
}

/// Applies a create result.
pub fn on_create(
    i: &mut DeployIntent,
    s: &Settings,
    result: Result<Deployment, DeployerError>,
    now: DateTime<Utc>,
) {
    i.attempt_started = None;
    i.searched_at = None;
    match result {
        Ok(d) => {
            i.deployment_id = Some(d.id);
            i.created = Some(d.created).filter(|c| *c > DateTime::<Utc>::UNIX_EPOCH);
            i.task_id = d.task_id;
            i.state = IntentState::Created;
            i.not_before = None;
            i.detail = None;
        }
        Err(e) if e.is_definitely_not_applied() => {
            i.errors += 1;
            i.detail = Some(e.to_string());
            i.not_before = Some(at(now, delay(i.errors - 1, e.retry_after())));
        }
        Err(e) if e.is_retryable() || matches!(e, DeployerError::Malformed(_)) => {
            i.errors += 1;
            i.detail = Some(format!("create outcome unknown: {e}"));
            i.ambiguous_since = Some(now);
            i.not_before = Some(at(now, s.search_every));
        }
        Err(e) => end(
            i,
            IntentState::Failed,
            format!("Octopus refused the deployment: {e}"),
        ),
    }
}

/// Applies a deployment read (for its task id).
pub fn on_deployment(
    i: &mut DeployIntent,
    s: &Settings,
    result: Result<Deployment, DeployerError>,
    now: DateTime<Utc>,
) {
    match result {
        Ok(d) if d.task_id.is_some() => i.task_id = d.task_id,
        Ok(_) => end(
            i,
            IntentState::Failed,
            "the deployment has no task to follow".into(),
        ),
        Err(e) => {
            i.detail = Some(format!("cannot read the deployment: {e}"));
            i.not_before = Some(at(now, s.task_poll));
        }
    }
}

/// Applies a task read.
pub fn on_task(
    i: &mut DeployIntent,
    s: &Settings,
    result: Result<Task, DeployerError>,
    now: DateTime<Utc>,
) {
    let since = *i.following_since.get_or_insert(now);
    let task_id = i.task_id.clone().unwrap_or_default();
    match result {
        Ok(t) if t.is_completed && t.finished_successfully => {
            i.state = IntentState::Succeeded;
            i.detail = None;
            i.not_before = None;
            return;
        }
        Ok(t) if t.is_completed => {
            // The deployment ran and failed: a failed deployment, not a failed call.
            i.failure = Some(crate::model::DeployFailure {
                task: Some(task_id.clone()),
                state: Some(t.state.as_str().to_string()),
                error: t.error_message.clone(),
                ..Default::default()
            });
            let msg = t
                .error_message
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            return end(
                i,
                IntentState::Failed,
                format!("task {task_id} ended {:?}{msg}", t.state),
            );
        }
        Ok(t) => {
            i.detail = Some(if t.has_pending_interruptions {
                format!("task {task_id} is waiting for manual intervention in Octopus")
            } else {
                format!("task {task_id} is {:?}", t.state)
            });
        }
        Err(e) => i.detail = Some(format!("cannot read task {task_id}: {e}")),
    }
    if now >= at(since, s.task_timeout) {
        return end(
            i,
            IntentState::Failed,
            format!(
                "task {task_id} did not complete within {}; it may still finish: check Octopus",
                humantime::format_duration(s.task_timeout)
            ),
        );
    }
    i.not_before = Some(at(now, s.task_poll));
}

#[cfg(test)]
mod tests;
