//! A realistic alert for the payload unit tests: a release condemned by its health check and
//! rolled back to the last verified release.

use chrono::{TimeZone, Utc};

use super::{Alert, AlertKind};
use crate::evidence::{
    ActionFacts, CheckEvidence, DeployFacts, DeploymentFacts, Evidence, VerdictFacts, SCHEMA,
};
use crate::judge::observation::{CheckTrack, Sample, VerdictKind};
use crate::judge::{Outcome, Rule};

pub(crate) fn alert(kind: AlertKind) -> Alert {
    let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
    let samples = (0..4)
        .map(|i| Sample {
            at: at - chrono::Duration::seconds(40 - 10 * i),
            value: Some(if i == 0 { 200.0 } else { 503.0 }),
            outcome: if i == 0 {
                Outcome::Pass
            } else {
                Outcome::Fail {
                    limit: "status 503 not in [200]".into(),
                }
            },
            mixed: false,
            note: None,
            alerts: Vec::new(),
        })
        .collect();
    let health = CheckTrack {
        name: "health".into(),
        rules: vec![Rule::ExpectStatus(vec![200])],
        failure_limit: 3,
        baseline: None,
        consecutive_failures: 3,
        consecutive_errors: 0,
        passes: 1,
        failures: 3,
        errors: 0,
        no_data: 0,
        min_samples: 0,
        failing_since: None,
        min_failure_for_ms: 0,
        erring_since: None,
        samples,
        limit_hit: Some("3 consecutive failures reached failure_limit 3".into()),
        pre: None,
        comparison: None,
        control_baseline: None,
        failing_from: None,
        erring_from: None,
        late_since: None,
        late_longest_ms: 0,
        condemning: None,
    };
    let latency = CheckTrack {
        name: "latency".into(),
        rules: vec![Rule::Max(0.5), Rule::MaxRatio(2.0)],
        failure_limit: 3,
        baseline: Some(0.12),
        consecutive_failures: 0,
        consecutive_errors: 1,
        passes: 3,
        failures: 0,
        errors: 1,
        no_data: 0,
        min_samples: 0,
        failing_since: None,
        min_failure_for_ms: 0,
        erring_since: None,
        samples: [
            Sample {
                at,
                value: Some(0.13),
                outcome: Outcome::Pass,
                mixed: false,
                note: None,
                alerts: Vec::new(),
            },
            Sample {
                at,
                value: None,
                outcome: Outcome::Error {
                    reason: "empty result".into(),
                    late: false,
                },
                mixed: false,
                note: None,
                alerts: Vec::new(),
            },
        ]
        .into(),
        limit_hit: None,
        pre: None,
        comparison: None,
        control_baseline: None,
        failing_from: None,
        erring_from: None,
        late_since: None,
        late_longest_ms: 0,
        condemning: None,
    };
    let evidence = Evidence {
        schema: SCHEMA,
        id: "obs-42".into(),
        watch: "shop".into(),
        deployment: DeploymentFacts {
            release: "Releases-2".into(),
            version: Some("1.1.0".into()),
            deployment_id: Some("Deployments-7".into()),
            source: crate::model::Source::Announce,
            kind: crate::model::ObservationKind::Deployment,
            deployed_at: at - chrono::Duration::minutes(1),
            judging_from: at - chrono::Duration::minutes(1),
            window_ends: at + chrono::Duration::minutes(9),
            rollback_safe: None,
            failure: None,
        },
        verdict: Some(VerdictFacts {
            verdict: VerdictKind::Condemned,
            decided_at: at,
            summary: "health: 3 consecutive failures".into(),
        }),
        checks: vec![
            CheckEvidence {
                kind: "http".into(),
                url: "http://app.internal/health".into(),
                query: None,
                control: None,
                track: health,
                series: Vec::new(),
                before: None,
            },
            CheckEvidence {
                kind: "prometheus".into(),
                url: "http://prometheus:9090".into(),
                query: Some("histogram_quantile(0.99, rate(latency_bucket[1m]))".into()),
                control: None,
                track: latency,
                series: Vec::new(),
                before: None,
            },
        ],
        action: Some(ActionFacts {
            policy: "rollback".into(),
            chosen: crate::model::Chosen::Rollback,
            why: "on_failure = rollback".into(),
            target_release: Some("Releases-1".into()),
            target_why: Some("last verified".into()),
            dry_run: false,
            deploy: Some(DeployFacts {
                deployer: "octo".into(),
                deployment_id: Some("Deployments-8".into()),
                task_id: Some("ServerTasks-9".into()),
                state: crate::model::IntentState::Succeeded,
                detail: None,
                failure: None,
            }),
            command: None,
        }),
        timeline: vec![],
        links: vec![],
    };
    Alert {
        id: format!("obs-1:{}", kind.as_str()),
        kind,
        watch: "shop".into(),
        release: "Releases-2".into(),
        summary: "health: 3 consecutive failures (status 503 not in [200])".into(),
        at,
        evidence: Some(evidence),
    }
}
