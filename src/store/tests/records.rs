//! The records: transitions, intents, outbox, inbox and evidence.

use chrono::Utc;

use super::*;
use crate::engine::Inbound;
use crate::judge::observation::{Tracker, Verdict, VerdictKind};
use crate::judge::Rule;
use crate::model::{
    DeployIntent, IntentState, ObservationKind, ObservationRecord, Source, WatchRecord,
};

fn obs(id: &str, dep: Option<&str>) -> ObservationRecord {
    let rules = [Rule::Max(1.0)];
    ObservationRecord {
        id: id.into(),
        watch: "shop".into(),
        release: "Releases-2".into(),
        version: None,
        deployment_id: dep.map(String::from),
        kind: ObservationKind::Deployment,
        source: Source::Announce,
        deployed_at: Utc::now(),
        judging_from: Utc::now(),
        window_ends: Utc::now(),
        rollback_safe: None,
        tracker: Tracker::new([("c", &rules[..], 3)], 5),
        condemned: None,
        created: None,
        previous_condemned: None,
        baseline_until: None,
        failure: None,
        cause: Default::default(),
        unjudged: false,
    }
}

pub(super) fn intent(obs_id: &str) -> DeployIntent {
    DeployIntent {
        id: format!("act-{obs_id}"),
        observation_id: obs_id.into(),
        condemned_release: "Releases-2".into(),
        target_release: "Releases-1".into(),
        environment: "Environments-1".into(),
        marker: "m".into(),
        comments: "c".into(),
        decided_at: Utc::now(),
        ..DeployIntent::blank()
    }
}

fn verdict(id: &str) -> Verdict {
    Verdict {
        verdict: VerdictKind::Verified,
        release: "Releases-2".into(),
        version: None,
        deployment_id: None,
        observation_id: id.into(),
        decided_at: Utc::now(),
        summary: String::new(),
        checks: vec![],
        action: None,
    }
}

both_backends! {
    fn a_transition_survives_reopen_whole(fx: &Fixture) {
        {
            let s = fx.open();
            let mut rec = WatchRecord {
                last_good_release: Some("Releases-1".into()),
                observation: Some(obs("o1", Some("Deployments-5"))),
                ..WatchRecord::default()
            };
            rec.quarantined
                .insert("Releases-3".into(), "condemned".into());
            s.commit(
                "shop",
                &Commit {
                    record: Some(&rec),
                    durable: true,
                    ..Commit::default()
                },
            )
            .unwrap();
        }
        let s = fx.open();
        let rec = s.load_watch("shop").unwrap();
        assert_eq!(rec.observation.unwrap().id, "o1");
        assert_eq!(rec.last_good_release.as_deref(), Some("Releases-1"));
        assert!(rec.quarantined.contains_key("Releases-3"));
        assert!(s.deployment_known("shop", "Deployments-5").unwrap());
        assert!(!s.deployment_known("other", "Deployments-5").unwrap());
    }

    fn a_routine_checkpoint_writes_the_observation_and_leaves_the_watch_row(fx: &Fixture) {
        let s = fx.open();
        let mut rec = WatchRecord {
            last_good_release: Some("Releases-1".into()),
            observation: Some(obs("o1", None)),
            intent: Some(intent("o0")),
            ..WatchRecord::default()
        };
        s.commit("shop", &Commit { record: Some(&rec), durable: true, ..Commit::default() })
            .unwrap();
        let before = fx.rows(&s, "SELECT CAST(body AS TEXT) FROM watches WHERE name = 'shop'");
        // Counters moved (a routine round); the watch row must not be rewritten, so a
        // change to it that a routine commit carried by mistake would not land either.
        let o = rec.observation.as_mut().unwrap();
        o.tracker.checks[0].passes = 7;
        rec.last_good_release = Some("Releases-9".into());
        rec.intent = None;
        s.commit("shop", &Commit { record: Some(&rec), routine: true, ..Commit::default() })
            .unwrap();
        assert_eq!(fx.rows(&s, "SELECT CAST(body AS TEXT) FROM watches WHERE name = 'shop'"), before);
        let back = s.load_watch("shop").unwrap();
        assert_eq!(back.observation.unwrap().tracker.checks[0].passes, 7);
        assert_eq!(back.last_good_release.as_deref(), Some("Releases-1"));
        assert_eq!(back.intent.unwrap().id, "act-o0", "the intent is not touched");
    }

    fn finishing_closes_the_observation_and_the_intent_is_joined_in(fx: &Fixture) {
        let s = fx.open();
        let mut rec = WatchRecord {
            observation: Some(obs("o1", None)),
            ..WatchRecord::default()
        };
        s.commit(
            "shop",
            &Commit {
                record: Some(&rec),
                ..Commit::default()
            },
        )
        .unwrap();
        let o = rec.observation.take().unwrap();
        let mut i = intent("o1");
        rec.intent = Some(i.clone());
        s.commit(
            "shop",
            &Commit {
                record: Some(&rec),
                finished: vec![(o, verdict("o1"))],
                durable: true,
                ..Commit::default()
            },
        )
        .unwrap();
        let back = s.load_watch("shop").unwrap();
        assert!(back.observation.is_none());
        assert_eq!(back.intent.as_ref().unwrap().id, i.id);
        assert_eq!(s.latest_observation("shop").unwrap().unwrap().id, "o1");
        assert_eq!(
            s.history(Some("shop"), 10).unwrap()[0].verdict,
            Some(VerdictKind::Verified)
        );
        i.state = IntentState::Succeeded;
        i.deployment_id = Some("Deployments-9".into());
        s.save_intent(&i).unwrap();
        assert_eq!(
            s.latest_intent("shop").unwrap().unwrap().state,
            IntentState::Succeeded
        );
        assert!(s.deployment_known("shop", "Deployments-9").unwrap());
    }

    fn one_intent_per_condemned_observation(fx: &Fixture) {
        let s = fx.open();
        s.save_intent(&intent("o1")).unwrap();
        let mut again = intent("o1");
        again.id = "another".into();
        assert!(
            s.save_intent(&again).is_err(),
            "a second intent for one observation is refused"
        );
    }

    fn outbox_items_stay_until_delivered(fx: &Fixture) {
        let s = fx.open();
        let item = OutboxItem {
            id: "o1:condemned".into(),
            sinks: vec!["ops".into()],
            alert: crate::sinks::Alert {
                id: "o1:condemned".into(),
                kind: crate::sinks::AlertKind::Condemned,
                watch: "shop".into(),
                release: "Releases-2".into(),
                summary: "s".into(),
                at: Utc::now(),
                evidence: None,
            },
        };
        let c = Commit {
            outbox: vec![item.clone(), item.clone()],
            ..Commit::default()
        };
        s.commit("shop", &c).unwrap();
        assert_eq!(s.undelivered("shop").unwrap(), vec![item.clone()]);
        s.delivered("o1:condemned").unwrap();
        assert!(s.undelivered("shop").unwrap().is_empty());
        // Delivered items stay readable for the dashboard's timeline.
        assert_eq!(s.notifications("shop", 10).unwrap(), vec![(item, true)]);
        assert!(s.notifications("other", 10).unwrap().is_empty());
    }

    fn the_inboxes_of_watches_no_longer_configured_are_cleared(fx: &Fixture) {
        let s = fx.open();
        let pause = Inbound::Control {
            control: crate::engine::Control::Pause,
        };
        let rows = vec![
            ("shop".to_string(), pause.clone()),
            ("gone".to_string(), pause.clone()),
        ];
        assert!(s.enqueue(None, &rows).unwrap());
        s.retain_inbox(&["shop", "cart"]).unwrap();
        assert!(s.inbox("gone").unwrap().is_empty(), "a removed watch's request goes");
        let kept = s.inbox("shop").unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].1, pause);
    }

    fn an_event_is_seen_exactly_when_its_triggers_are_in_the_inbox(fx: &Fixture) {
        let s = fx.open();
        let t = crate::engine::Trigger {
            release: "Releases-2".into(),
            version: None,
            deployment_id: Some("Deployments-2".into()),
            deployed_at: None,
            source: Source::Webhook,
            rollback_safe: None,
            failure: None,
        };
        let both = vec![
            ("shop".to_string(), Inbound::Deploy(Box::new(t.clone()))),
            ("cart".to_string(), Inbound::Deploy(Box::new(t.clone()))),
        ];
        assert!(s.enqueue(Some("Events-1"), &both).unwrap());
        assert!(
            !s.enqueue(Some("Events-1"), &both).unwrap(),
            "a redelivery adds nothing"
        );
        assert!(s.event_seen("Events-1").unwrap());
        let inbox = s.inbox("shop").unwrap();
        assert_eq!(inbox.len(), 1);
        assert_eq!(inbox[0].1, Inbound::Deploy(Box::new(t.clone())));
        // The commit that handles it removes it.
        s.commit(
            "shop",
            &Commit {
                inbox_done: Some(inbox[0].0),
                ..Commit::default()
            },
        )
        .unwrap();
        assert!(s.inbox("shop").unwrap().is_empty());
        assert_eq!(s.inbox("cart").unwrap().len(), 1);
        // Announcements have no event id: each is its own trigger.
        assert!(s.enqueue(None, &both[..1]).unwrap());
        assert!(s.enqueue(None, &both[..1]).unwrap());
        assert_eq!(s.inbox("shop").unwrap().len(), 2);
    }

    fn a_stale_copy_of_an_intent_never_overwrites_newer_progress(fx: &Fixture) {
        let s = fx.open();
        let mut i = intent("o1");
        s.save_intent(&i).unwrap();
        let stale = i.clone();
        i.rev = 5;
        i.state = IntentState::Succeeded;
        s.save_intent(&i).unwrap();
        s.save_intent(&stale).unwrap();
        assert_eq!(
            s.latest_intent("shop").unwrap().unwrap().state,
            IntentState::Succeeded
        );
    }

    /// Each round's patch repeats the tracker's newest samples; the store appends what it lacks,
    /// never rewrites the series, and joins it back in, thinned, when the document is read.
    fn an_evidence_series_is_appended_round_by_round_and_read_back_whole(fx: &Fixture) {
        use crate::judge::observation::Sample;
        use crate::judge::Outcome;
        let t0 = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let sample = |i: i64| Sample {
            at: t0 + chrono::Duration::seconds(i),
            value: Some(i as f64),
            outcome: if i == 3_000 {
                Outcome::Fail {
                    limit: "value > max".into(),
                }
            } else {
                Outcome::Pass
            },
            mixed: false,
            note: None,
            alerts: Vec::new(),
        };
        let mut ev = crate::sinks::testing::alert(crate::sinks::AlertKind::Condemned)
            .evidence
            .unwrap();
        ev.id = "o1".into();
        let name = ev.checks[0].track.name.clone();
        {
            let s = fx.open();
            for round in 0..3_500_i64 {
                ev.checks[0].series = ((round - 19).max(0)..=round).map(sample).collect();
                s.commit(
                    "shop",
                    &Commit {
                        evidence: vec![ev.clone()],
                        ..Commit::default()
                    },
                )
                .unwrap();
            }
            let body = &fx.rows(&s, "SELECT body FROM evidence WHERE id = 'o1'")[0][0];
            assert!(!body.contains("\"series\""), "the body holds no series");
            let rows = &fx.rows(&s, "SELECT CAST(count(*) AS TEXT) FROM evidence_series")[0][0];
            assert_eq!(rows, "3500", "each sample once");
        }
        // After a restart: the whole observation, thinned, in order, the failure kept.
        let s = fx.open();
        let read = s.evidence("o1").unwrap().unwrap();
        let c = read.checks.iter().find(|c| c.track.name == name).unwrap();
        assert!(c.series.len() <= crate::series::MAX_SERIES && c.series.len() > 1_900);
        assert!(c.series.windows(2).all(|w| w[0].at < w[1].at));
        assert_eq!(c.series.first().unwrap().at, t0);
        assert_eq!(
            c.series.last().unwrap().at,
            t0 + chrono::Duration::seconds(3_499)
        );
        assert!(c
            .series
            .iter()
            .any(|s| s.at == t0 + chrono::Duration::seconds(3_000)));
    }

    /// A document stored before the series table, with its series in the body, still reads.
    fn an_evidence_document_from_before_the_series_table_keeps_its_series(fx: &Fixture) {
        let s = fx.open();
        let mut ev = crate::sinks::testing::alert(crate::sinks::AlertKind::Condemned)
            .evidence
            .unwrap();
        ev.id = "old".into();
        ev.checks[0].series = ev.checks[0].track.samples.iter().cloned().collect();
        assert!(!ev.checks[0].series.is_empty());
        fx.execute(
            &s,
            "INSERT INTO evidence (id, watch, body) VALUES ('old', 'shop', $1)",
            &serde_json::to_string(&ev).unwrap(),
        );
        assert_eq!(s.evidence("old").unwrap().unwrap(), ev);
    }
}
