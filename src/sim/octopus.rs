//! A simulated Octopus: deployments, their tasks, and the faults a real server produces.

use chrono::{DateTime, Duration, Utc};

use crate::deployer::{DeployerError, Deployment, Task, TaskState};

/// One deployment on the simulated server.
#[derive(Debug, Clone)]
pub struct SimDeployment {
    pub id: String,
    pub release: String,
    /// On the server's clock (backstop's plus the skew).
    pub created: DateTime<Utc>,
    /// A slow commit: invisible to listings and reads before this time.
    pub visible_from: DateTime<Utc>,
    pub comments: Option<String>,
    pub task_done: DateTime<Utc>,
    pub task_ok: bool,
    /// Made by "a person" (not backstop).
    pub by_person: bool,
}

/// What the server does with one create request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CreateFault {
    Ok,
    /// Commits at once, answers after the client's timeout.
    LateAnswer,
    /// Commits `delay` later (within the settle period), answers after the client's timeout.
    SlowCommit(i64),
    /// Commits, then the response is lost (connection reset).
    LostResponse,
    /// 503 without committing.
    Unavailable,
    /// 429 with Retry-After, nothing committed.
    RateLimited(u64),
    /// Connection refused: the request never arrived.
    Refused,
    /// 400: the server refuses the deployment for good.
    Rejected,
}

/// The simulated server's state.
#[derive(Debug, Default)]
pub struct SimOctopus {
    pub deployments: Vec<SimDeployment>,
    pub next_id: u64,
    /// The server's clock minus backstop's: creation times are stamped with it.
    pub skew: Duration,
}

impl SimOctopus {
    pub fn add(
        &mut self,
        release: &str,
        created: DateTime<Utc>,
        visible_from: DateTime<Utc>,
        comments: Option<String>,
        task: (i64, bool),
        by_person: bool,
    ) -> String {
        self.next_id += 1;
        let id = format!("Deployments-{}", self.next_id);
        self.deployments.push(SimDeployment {
            id: id.clone(),
            release: release.to_string(),
            created: created + self.skew,
            visible_from,
            comments,
            task_done: created + Duration::seconds(task.0),
            task_ok: task.1,
            by_person,
        });
        id
    }

    fn view(d: &SimDeployment) -> Deployment {
        Deployment {
            id: d.id.clone(),
            release_id: d.release.clone(),
            project_id: "Projects-1".into(),
            environment_id: "Environments-1".into(),
            task_id: Some(format!("ServerTasks-{}", d.id)),
            created: d.created,
            comments: d.comments.clone(),
            task_state: None,
        }
    }

    /// Every visible deployment created at or after `since`, newest first.
    pub fn list(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Vec<Deployment> {
        let mut v: Vec<Deployment> = self
            .deployments
            .iter()
            .filter(|d| d.visible_from <= now && d.created >= since)
            .map(Self::view)
            .collect();
        v.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        v
    }

    pub fn get(&self, id: &str, now: DateTime<Utc>) -> Result<Deployment, DeployerError> {
        self.deployments
            .iter()
            .find(|d| d.id == id && d.visible_from <= now)
            .map(Self::view)
            .ok_or_else(|| DeployerError::NotFound(id.to_string()))
    }

    pub fn task(&self, task_id: &str, now: DateTime<Utc>) -> Result<Task, DeployerError> {
        let id = task_id.trim_start_matches("ServerTasks-");
        let d = self
            .deployments
            .iter()
            .find(|d| d.id == id && d.visible_from <= now)
            .ok_or_else(|| DeployerError::NotFound(task_id.to_string()))?;
        let done = now >= d.task_done;
        let state = match (done, d.task_ok) {
            (false, _) => TaskState::Executing,
            (true, true) => TaskState::Success,
            (true, false) => TaskState::Failed,
        };
        Ok(Task {
            id: task_id.to_string(),
            state,
            is_completed: done,
            finished_successfully: done && d.task_ok,
            has_pending_interruptions: false,
            error_message: (done && !d.task_ok).then(|| "step failed".to_string()),
        })
    }

    /// The release serving traffic at `now`: the newest deployment whose task succeeded.
    pub fn serving(&self, now: DateTime<Utc>) -> Option<&str> {
        self.deployments
            .iter()
            .filter(|d| d.task_ok && d.task_done <= now)
            .max_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)))
            .map(|d| d.release.as_str())
    }

    /// Successful releases, newest first (rollback candidates).
    pub fn successful_releases(&self, now: DateTime<Utc>) -> Vec<String> {
        let mut v: Vec<&SimDeployment> = self
            .deployments
            .iter()
            .filter(|d| d.task_ok && d.task_done <= now && d.visible_from <= now)
            .collect();
        v.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
        v.into_iter().map(|d| d.release.clone()).collect()
    }
}
