//! The verdicts that close an observation: verified, inconclusive, and the closing itself.

use super::{EvidencePatch, Level, Metric, Transition};
use crate::evidence::VerdictFacts;
use crate::judge::observation::{Verdict, VerdictKind};
use crate::model::WatchState;
use crate::sinks::AlertKind;

use super::Effect;

impl Transition<'_> {
    pub(super) fn verified(&mut self) {
        let Some(obs) = self.r.observation.clone() else {
            return;
        };
        let release = obs.release.clone();
        if let Some(f) = &obs.failure {
            // The service is healthy, but the failed deployment may never have put this
            // release in place: it is not recorded as verified, and stays no rollback target.
            let running = match &self.r.last_good_release {
                Some(good) => format!("the last release verified good is still {good}"),
                None => "backstop has verified no release yet".to_string(),
            };
            let msg = format!(
                "the deployment of {release} failed ({}), but the service is healthy: every check passed for the window; no deploy was made; {running}",
                f.summary()
            );
            self.log(Level::Info, msg.clone());
            self.notify(
                &format!("{}-healthy", obs.id),
                AlertKind::DeployFailed,
                &release,
                &msg,
                Some(&obs.id),
            );
            self.r.state = Some(WatchState::Idle);
            self.finish(
                VerdictKind::Verified,
                format!("the service passed its window after the failed deployment of {release}"),
                Some(format!(
                    "none: {running}; a failed deployment's release is not recorded as last good"
                )),
            );
            return;
        }
        self.log(Level::Info, format!("release {release} verified good"));
        if self.r.quarantined.remove(&release).is_some() {
            self.log(
                Level::Info,
                format!("quarantine of {release} lifted: it has now passed a full window"),
            );
        }
        self.r.last_good_release = Some(release.clone());
        self.r.last_good_version = obs.version.clone();
        self.r.state = Some(WatchState::Idle);
        self.finish(
            VerdictKind::Verified,
            format!("{release} passed its window without reaching any failure limit"),
            Some("none: release kept and recorded as last good".into()),
        );
    }

    pub(super) fn inconclusive(&mut self, reason: String) {
        let Some(obs) = &self.r.observation else {
            return;
        };
        let (release, id) = (obs.release.clone(), obs.id.clone());
        self.log(
            Level::Warn,
            format!(
                "verdict inconclusive: checks could not judge {release}; no action taken: {reason}"
            ),
        );
        self.finish(
            VerdictKind::Inconclusive,
            reason.clone(),
            Some("none: inconclusive verdicts never trigger a deployment".into()),
        );
        let msg = format!("release {release} could not be judged (blind): {reason}");
        self.notify(&id, AlertKind::Inconclusive, &release, &msg, Some(&id));
    }

    /// Closes the open observation with a verdict. Condemned verdicts get their evidence
    /// (with the action) from the decision.
    pub(super) fn finish(
        &mut self,
        kind: VerdictKind,
        summary: String,
        action: Option<String>,
    ) -> Option<Verdict> {
        let obs = self.r.observation.take()?;
        self.fx.push(Effect::Unschedule);
        let verdict = Verdict {
            verdict: kind,
            release: obs.release.clone(),
            version: obs.version.clone(),
            deployment_id: obs.deployment_id.clone(),
            observation_id: obs.id.clone(),
            decided_at: self.now,
            summary,
            checks: obs.tracker.checks.clone(),
            action,
        };
        if kind != VerdictKind::Condemned {
            self.fx.push(Effect::Evidence(Box::new(EvidencePatch {
                observation_id: obs.id.clone(),
                observation: Some(obs.clone()),
                verdict: Some(VerdictFacts {
                    verdict: kind,
                    decided_at: self.now,
                    summary: verdict.summary.clone(),
                }),
                notes: vec![(self.now, format!("{}: {}", kind.as_str(), verdict.summary))],
                ..EvidencePatch::default()
            })));
        }
        let seconds = (self.now - obs.deployed_at).num_milliseconds() as f64 / 1000.0;
        self.fx
            .push(Effect::Metric(Metric::Verdict { kind, seconds }));
        self.r.last_verdict = Some(verdict.clone());
        self.fx
            .push(Effect::Finished(Box::new((obs, verdict.clone()))));
        Some(verdict)
    }
}
