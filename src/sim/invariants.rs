//! What must hold after every step and at the end of every simulated run.

use std::time::Duration;

use crate::model::{IntentState, WatchState};

use super::Sim;

impl Sim {
    pub(super) fn check_step(&mut self) {
        if let Some(g) = &self.record.last_good_release {
            if self.record.quarantined.contains_key(g) {
                self.violations
                    .push(format!("last good release {g} is quarantined"));
            }
        }
    }

    pub(super) fn check_end(&mut self) {
        // Exactly one deployment per intent's marker.
        for (id, (i, done)) in &self.intents {
            let made: Vec<_> = self
                .server
                .deployments
                .iter()
                .filter(|d| d.comments.as_deref().is_some_and(|c| c.contains(&i.marker)))
                .collect();
            if made.len() > 1 {
                self.violations
                    .push(format!("intent {id} created {} deployments", made.len()));
            }
            if i.state == IntentState::Succeeded && made.len() != 1 {
                self.violations.push(format!(
                    "intent {id} succeeded with {} deployments",
                    made.len()
                ));
            }
            if !i.state.is_done() {
                self.violations
                    .push(format!("intent {id} still {:?} at the end", i.state));
            }
            // The truth, on the server's clock: when the condemned deployment was made.
            let truth = i
                .condemned_deployment
                .as_ref()
                .and_then(|c| self.server.deployments.iter().find(|d| &d.id == c))
                .map(|d| d.created);
            // Never over a newer deployment: no person deployed between the condemned one and
            // ours a release that was (or still might be) running when ours was made.
            for ours in &made {
                let over = self.server.deployments.iter().find(|p| {
                    p.by_person
                        && truth.is_some_and(|c| p.created > c)
                        && p.created < ours.created
                        && (p.task_ok || p.task_done > ours.visible_from)
                });
                if let Some(p) = over {
                    self.violations.push(format!(
                        "intent {id} deployed {} over newer {} ({})",
                        ours.id, p.id, p.release
                    ));
                }
            }
            // Never superseded by something that is not a newer deployment made by someone
            // else (a person, or another intent) that ran, of another release.
            if let Some(n) = &i.superseded_by {
                let d = self.server.deployments.iter().find(|d| d.id == n.id);
                let someone_else = d.is_some_and(|d| {
                    !d.comments.as_deref().is_some_and(|c| c.contains(&i.marker))
                        && d.release != i.condemned_release
                });
                let never_ran = d.is_some_and(|d| !d.task_ok && d.task_done <= i.decided_at);
                if !someone_else || never_ran || truth.is_some_and(|c| n.created <= c) {
                    self.violations
                        .push(format!("intent {id} falsely superseded by {}", n.id));
                }
            }
            // Leaves rolling_back in bounded time (crashes restart at once here).
            if let Some(done) = done {
                let bound = self.downtime
                    + (self.s.timeout + self.s.settle + Duration::from_secs(150))
                        * self.s.max_retries
                    + self.s.task_timeout
                    + Duration::from_secs(300);
                if (*done - i.decided_at).to_std().unwrap_or_default() > bound {
                    self.violations.push(format!(
                        "intent {id} took {} (bound {bound:?})",
                        *done - i.decided_at
                    ));
                }
            }
        }
        if !self.inbox.is_empty() {
            self.violations
                .push(format!("triggers never handled: {:?}", self.inbox));
        }
        if self.record.reported_state() == WatchState::RollingBack {
            self.violations
                .push("the watch is stuck rolling back".into());
        }
        // Never into a loop: one retry per failed deployment at most.
        let mut retries = std::collections::BTreeMap::new();
        for (i, _) in self.intents.values().filter(|(i, _)| {
            i.kind == crate::model::ActionKind::Retry
                && i.cause == crate::model::Cause::DeployFailed
        }) {
            *retries.entry(i.condemned_deployment.clone()).or_insert(0) += 1;
        }
        for (dep, n) in retries.iter().filter(|(_, n)| **n > 1) {
            self.violations
                .push(format!("{n} retries for the failed deployment {dep:?}"));
        }
        // Every person deployment was handled, failed ones too: observed, or recorded as older.
        for d in self.server.deployments.iter().filter(|d| d.by_person) {
            if !self.known.contains(&d.id) {
                self.violations
                    .push(format!("deployment {} was never handled", d.id));
            }
        }
    }
}
