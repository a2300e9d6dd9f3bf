//! The fake Octopus's in-memory store: its records, id counters, queued faults and the lock
//! every handler and handle method goes through.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::faults::PostFault;
use super::model::{Deployment, Release, Task, TaskFailure};

pub(super) struct State {
    pub(super) api_key: String,
    pub(super) releases: Vec<Release>,
    pub(super) deployments: Vec<Deployment>,
    pub(super) tasks: Vec<Task>,
    /// Next-id counters: releases, deployments, tasks.
    pub(super) counters: [u64; 3],
    pub(super) created_via_post: Vec<String>,
    pub(super) post_attempts: usize,
    /// Every request that is not a GET (or HEAD), on any path, authenticated or not.
    pub(super) write_attempts: usize,
    pub(super) final_state: &'static str,
    pub(super) post_faults: VecDeque<PostFault>,
    pub(super) get_faults: VecDeque<StatusCode>,
    /// How the next tasks whose end the fake picks fail, in order.
    pub(super) fail_next: VecDeque<TaskFailure>,
    /// How deployments of these releases fail (checked before `fail_next`).
    pub(super) failing_releases: Vec<(String, TaskFailure)>,
}

pub(super) type Shared = Arc<Mutex<State>>;

pub(super) fn lock(s: &Shared) -> MutexGuard<'_, State> {
    s.lock().expect("FakeOctopus state poisoned")
}

impl State {
    /// An empty store; task ids start at `ServerTasks-101`, apart from deployment numbers.
    pub(super) fn new(api_key: &str) -> State {
        State {
            api_key: api_key.to_owned(),
            releases: vec![],
            deployments: vec![],
            tasks: vec![],
            counters: [0, 0, 100],
            created_via_post: vec![],
            post_attempts: 0,
            write_attempts: 0,
            final_state: "Success",
            post_faults: VecDeque::new(),
            get_faults: VecDeque::new(),
            fail_next: VecDeque::new(),
            failing_releases: vec![],
        }
    }

    pub(super) fn next(&mut self, counter: usize) -> u64 {
        self.counters[counter] += 1;
        self.counters[counter]
    }

    pub(super) fn release(&self, id: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.id == id)
    }

    pub(super) fn deployment(&self, id: &str) -> Option<&Deployment> {
        self.deployments.iter().find(|d| d.id == id)
    }

    pub(super) fn deployment_mut(&mut self, id: &str) -> Option<&mut Deployment> {
        self.deployments.iter_mut().find(|d| d.id == id)
    }

    /// The deployment with this id, if the API shows it at `now`.
    pub(super) fn visible_deployment(&self, id: &str, now: Instant) -> Option<&Deployment> {
        self.deployment(id).filter(|d| d.is_visible(now))
    }

    /// The task with this id, if the API shows its deployment at `now`.
    pub(super) fn visible_task_mut(&mut self, id: &str, now: Instant) -> Option<&mut Task> {
        let State {
            tasks, deployments, ..
        } = self;
        tasks.iter_mut().find(|t| {
            t.id == id
                && deployments
                    .iter()
                    .find(|d| d.id == t.deployment)
                    .is_none_or(|d| d.is_visible(now))
        })
    }

    /// The task with this id, or of the deployment with this id.
    pub(super) fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.tasks
            .iter_mut()
            .find(|t| t.id == id || t.deployment == id)
    }

    /// Stores a deployment, visible at once, and its Queued task; returns the deployment id.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert(
        &mut self,
        space: &str,
        project: &str,
        environment: &str,
        release: &str,
        created: DateTime<Utc>,
        by: (&'static str, &'static str),
        fields: Map<String, Value>,
    ) -> String {
        let seq = self.next(1);
        let (id, task) = (
            format!("Deployments-{seq}"),
            format!("ServerTasks-{}", self.next(2)),
        );
        let version = self.release(release).map_or("?", |r| &r.version);
        let description = format!("Deploy {project} release {version} to {environment}");
        self.tasks.push(Task {
            id: task.clone(),
            space: space.into(),
            deployment: id.clone(),
            project: project.into(),
            description,
            state: "Queued",
            queued: created,
            started: None,
            completed: None,
            updated: created,
            pending: VecDeque::new(),
            served: false,
            interruptions: false,
            failure: None,
        });
        self.deployments.push(Deployment {
            id: id.clone(),
            seq,
            space: space.into(),
            release: release.into(),
            environment: environment.into(),
            project: project.into(),
            channel: "Channels-1".into(),
            task,
            created,
            deployed_by: by,
            fields,
            visible_from: Instant::now(),
        });
        id
    }

    /// How a task of a deployment of `release` ends, when the fake picks: the release's
    /// failure, else the next queued failure, else the configured final state.
    pub(super) fn pick_end(&mut self, release: &str) -> (&'static str, Option<TaskFailure>) {
        let failure = self
            .failing_releases
            .iter()
            .find(|(r, _)| r == release)
            .map(|(_, f)| f.clone())
            .or_else(|| self.fail_next.pop_front());
        match failure {
            Some(f) => (f.state, Some(f)),
            None => (self.final_state, None),
        }
    }

    /// The failure scripted for deployments of `release`, if any.
    pub(super) fn release_failure(&self, release: &str) -> Option<TaskFailure> {
        self.failing_releases
            .iter()
            .find(|(r, _)| r == release)
            .map(|(_, f)| f.clone())
    }

    pub(super) fn task_state_of(&self, d: &Deployment) -> &'static str {
        self.tasks
            .iter()
            .find(|t| t.id == d.task)
            .map_or("Queued", |t| t.state)
    }
}
