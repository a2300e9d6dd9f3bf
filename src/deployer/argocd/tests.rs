//! Unit tests of the argocd deployer.
use super::*;

const SHA_A: &str = "1c3f2b9e0f5a7d8c6b4a29e1f0d3c5b7a9e8f6d4";
const SHA_B: &str = "9e8f6d41c3f2b9e0f5a7d8c6b4a29e1f0d3c5b7a";

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

/// Shaped like `GET /api/v1/applications/guestbook` from Argo CD 2.x: B (history id 1)
/// synced after A (id 0); the last operation is B's sync.
fn app() -> Value {
    json!({
        "metadata": {"name": "guestbook", "namespace": "argocd", "resourceVersion": "4711"},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git",
                       "path": "guestbook", "targetRevision": "HEAD"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"}
        },
        "status": {
            "sync": {"status": "Synced", "revision": SHA_B},
            "health": {"status": "Healthy"},
            "history": [
                {"id": 0, "revision": SHA_A, "deployedAt": "2024-05-01T10:00:05Z",
                 "deployStartedAt": "2024-05-01T10:00:00Z",
                 "source": {"repoURL": "https://github.com/argoproj/argocd-example-apps.git"}},
                {"id": 1, "revision": SHA_B, "deployedAt": "2024-05-01T11:00:05Z",
                 "deployStartedAt": "2024-05-01T11:00:00Z"}
            ],
            "operationState": {
                "operation": {"sync": {"revision": SHA_B}, "initiatedBy": {"username": "ci"},
                              "retry": {}},
                "phase": "Succeeded", "message": "successfully synced (all tasks run)",
                "startedAt": "2024-05-01T11:00:00Z", "finishedAt": "2024-05-01T11:00:05Z",
                "syncResult": {"revision": SHA_B}
            }
        }
    })
}

fn parse(v: Value) -> Application {
    serde_json::from_value(v).unwrap()
}

fn baseline() -> Baseline {
    Baseline::of(&parse(app()))
}

/// The app after backstop asked to roll back to A: requested, then running, then done.
fn with_rollback(phase: Option<&str>, started: &str) -> Value {
    let mut v = app();
    v["operation"] = json!({"sync": {"revision": SHA_A}, "initiatedBy": {"username": "backstop"}});
    match phase {
        None => v["status"]["operationState"] = Value::Null,
        Some(p) => {
            v["status"]["operationState"] = json!({
                "operation": {"sync": {"revision": SHA_A}},
                "phase": p, "message": "waiting for healthy state", "startedAt": started
            });
            if matches!(p, "Succeeded" | "Failed" | "Error") {
                v.as_object_mut().unwrap().remove("operation");
            }
            if p == "Succeeded" {
                v["status"]["history"].as_array_mut().unwrap().push(json!({
                    "id": 2, "revision": SHA_A, "deployedAt": "2024-05-01T12:00:09Z",
                    "deployStartedAt": started
                }));
            }
        }
    }
    v
}

#[test]
fn parses_the_real_shape() {
    let a = parse(app());
    assert!(!auto_sync(&a));
    assert_eq!(a.status.history.len(), 2);
    assert_eq!(history_id(&a, SHA_A), Some(0), "id 0 is a real history id");
    assert_eq!(history_id(&a, SHA_B), Some(1));
    assert_eq!(history_id(&a, "nope"), None);
    assert_eq!(revisions_newest_first(&a), vec![SHA_B, SHA_A]);
    let s = a.status.operation_state.unwrap();
    assert!(s.completed());
    assert_eq!(s.operation.revision(), SHA_B);
}

#[test]
fn auto_sync_follows_automated_and_its_enabled_switch() {
    for (policy, on) in [
        (json!({"automated": {}}), true),
        (
            json!({"automated": {"prune": true, "selfHeal": true}}),
            true,
        ),
        (json!({"automated": {"enabled": true}}), true),
        (
            json!({"automated": {"enabled": false, "prune": true}}),
            false,
        ),
        (
            json!({"automated": null, "syncOptions": ["CreateNamespace=true"]}),
            false,
        ),
        (json!({}), false),
    ] {
        let mut v = app();
        v["spec"]["syncPolicy"] = policy.clone();
        assert_eq!(auto_sync(&parse(v)), on, "{policy}");
    }
}

#[test]
fn history_is_newest_first_deduplicated_and_tolerates_string_ids() {
    let v = json!({"status": {"history": [
        {"id": "3", "revision": SHA_A},
        {"id": 1, "revision": SHA_B},
        {"id": 2, "revision": SHA_A},
        {"id": 4, "revisions": ["abc", "def"]}
    ]}});
    let a = parse(v);
    assert_eq!(revisions_newest_first(&a), vec!["abc,def", SHA_A, SHA_B]);
    assert_eq!(
        history_id(&a, SHA_A),
        Some(3),
        "the newest entry of the revision"
    );
    assert_eq!(history_id(&a, "abc,def"), Some(4));
}

#[test]
fn baseline_survives_the_task_id_text() {
    let b = baseline();
    assert_eq!(b.history, Some(1));
    assert_eq!(
        b.operation,
        Some((SHA_B.to_string(), t("2024-05-01T11:00:00Z")))
    );
    let text = b.encode();
    assert_eq!(
        text,
        format!("after history=1 operation={SHA_B}@2024-05-01T11:00:00Z")
    );
    assert_eq!(Baseline::decode(&text), Some(b));
    let empty = Baseline {
        history: None,
        operation: None,
    };
    assert_eq!(Baseline::decode(&empty.encode()), Some(empty));
    assert_eq!(Baseline::decode("ServerTasks-1"), None);
    assert_eq!(Baseline::decode("after history=x"), None);
    assert_eq!(Baseline::decode("after operation=abc"), None);
}

#[test]
fn finds_the_rollback_in_every_stage() {
    let b = baseline();
    let decided = t("2024-05-01T12:00:03Z");
    let started = "2024-05-01T12:00:04Z";
    let ours = |v: Value| find_ours(&parse(v), SHA_A, Some(&b), decided);
    assert_eq!(ours(app()), Ours::Absent, "only B's sync: nothing to adopt");
    assert_eq!(ours(with_rollback(None, started)), Ours::Queued);
    assert!(matches!(
        ours(with_rollback(Some("Running"), started)),
        Ours::Running { .. }
    ));
    assert!(matches!(
        ours(with_rollback(Some("Terminating"), started)),
        Ours::Running { .. }
    ));
    assert_eq!(
        ours(with_rollback(Some("Succeeded"), started)),
        Ours::Succeeded
    );
    let failed = ours(with_rollback(Some("Failed"), started));
    assert!(
        matches!(failed, Ours::Failed { ref phase, .. } if phase == "Failed"),
        "{failed:?}"
    );
    assert!(matches!(
        ours(with_rollback(Some("Error"), started)),
        Ours::Failed { .. }
    ));
}

#[test]
fn a_finished_rollback_replaced_by_a_later_sync_is_found_in_the_history() {
    let b = baseline();
    let mut v = with_rollback(Some("Succeeded"), "2024-05-01T12:00:04Z");
    v["status"]["operationState"] = json!({
        "operation": {"sync": {"revision": SHA_B}}, "phase": "Running",
        "startedAt": "2024-05-01T12:05:00Z"
    });
    v["operation"] = json!({"sync": {"revision": SHA_B}});
    let a = parse(v);
    assert_eq!(
        find_ours(&a, SHA_A, Some(&b), t("2024-05-01T12:00:03Z")),
        Ours::Succeeded
    );
    // The history entry must be newer than the baseline: A's own first deploy is not ours.
    assert_eq!(
        find_ours(&parse(app()), SHA_A, Some(&b), t("2024-05-01T10:00:01Z")),
        Ours::Absent
    );
}

#[test]
fn a_retry_does_not_mistake_the_condemned_sync_for_its_own() {
    // Retry: the target is B itself, whose sync is the baseline operation.
    let b = baseline();
    let a = parse(app());
    assert_eq!(
        find_ours(&a, SHA_B, Some(&b), t("2024-05-01T11:00:01Z")),
        Ours::Absent
    );
    // Another operation to B after the baseline is ours.
    let mut v = app();
    v["status"]["operationState"]["startedAt"] = json!("2024-05-01T11:00:02Z");
    v["status"]["operationState"]["phase"] = json!("Running");
    assert!(matches!(
        find_ours(&parse(v), SHA_B, Some(&b), t("2024-05-01T11:00:01Z")),
        Ours::Running { .. }
    ));
}

#[test]
fn a_rollback_started_in_the_same_second_as_the_baseline_is_still_ours() {
    let b = baseline();
    let same = "2024-05-01T11:00:00Z";
    let ours = |v: Value| find_ours(&parse(v), SHA_A, Some(&b), t(same));
    assert!(matches!(
        ours(with_rollback(Some("Running"), same)),
        Ours::Running { .. }
    ));
    assert!(matches!(
        ours(with_rollback(Some("Failed"), same)),
        Ours::Failed { .. }
    ));
    // Retry to B in that second: running is new; completed looks like the baseline, and
    // success is then read from the history.
    let mut v = app();
    v["status"]["operationState"]["phase"] = json!("Running");
    assert!(matches!(
        find_ours(&parse(v), SHA_B, Some(&b), t(same)),
        Ours::Running { .. }
    ));
}

#[test]
fn without_a_baseline_the_decision_time_less_the_skew_decides() {
    let v = with_rollback(Some("Succeeded"), "2024-05-01T12:00:00Z");
    let a = parse(v);
    let at = |s: &str| find_ours(&a, SHA_A, None, t(s));
    assert_eq!(
        at("2024-05-01T12:00:05Z"),
        Ours::Succeeded,
        "within the skew"
    );
    assert_eq!(
        at("2024-05-01T11:59:00Z"),
        Ours::Succeeded,
        "started after the decision"
    );
    assert_eq!(
        at("2024-05-01T12:01:00Z"),
        Ours::Absent,
        "older than the decision"
    );
}

#[test]
fn a_newer_operation_to_another_revision_means_the_rollback_was_replaced() {
    let b = baseline();
    assert_eq!(
        replaced_by(&parse(app()), SHA_A, Some(&b)),
        None,
        "the baseline is not newer"
    );
    let mut v = app();
    v["status"]["operationState"]["startedAt"] = json!("2024-05-01T12:09:00Z");
    let other = replaced_by(&parse(v), SHA_A, Some(&b)).unwrap();
    assert!(other.contains(SHA_B), "{other}");
}

#[test]
fn error_bodies_are_grpc_gateway_shaped() {
    let body = br#"{"error":"rollback cannot be initiated when auto-sync is enabled","code":9,"message":"rollback cannot be initiated when auto-sync is enabled"}"#;
    assert_eq!(
        error_text(body),
        "rollback cannot be initiated when auto-sync is enabled"
    );
    assert_eq!(
        error_text(br#"{"error":"only error","code":2}"#),
        "only error"
    );
    assert_eq!(
        error_text(b"<html>502 Bad Gateway</html>"),
        "<html>502 Bad Gateway</html>"
    );
    let busy = DeployerError::Rejected {
        status: 400,
        message: BUSY.into(),
    };
    assert!(is_busy(&busy) && !busy.is_retryable());
}

#[test]
fn urls_keep_a_path_prefix_and_select_an_app_namespace() {
    let config = ArgoCdConfig {
        url: "https://cd.example.com/argo".into(),
        token: crate::secret::Secret::new("t"),
        calls: crate::config::CallSettings {
            timeout: std::time::Duration::from_secs(1),
            task_poll: std::time::Duration::from_secs(1),
            task_timeout: std::time::Duration::from_secs(1),
            max_retries: 1,
            settle: std::time::Duration::from_secs(1),
        },
    };
    let c = ArgoCdClient::new("argo", config, reqwest::Client::new(), Metrics::new());
    assert_eq!(
        c.url("shop", false).unwrap().as_str(),
        "https://cd.example.com/argo/api/v1/applications/shop"
    );
    assert_eq!(
        c.url("team-a/shop", true).unwrap().as_str(),
        "https://cd.example.com/argo/api/v1/applications/shop/rollback?appNamespace=team-a"
    );
}

#[test]
fn a_sync_after_the_condemned_revision_supersedes_and_an_unknown_condemned_does_not() {
    // B (id 1) is the condemned revision and the newest: nothing newer.
    let a = parse(app());
    assert!(newer_sync(&a, SHA_B).is_none());
    // A person synced C after it.
    let mut v = app();
    v["status"]["history"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": 2, "revision": "c0ffee", "deployedAt": "2024-05-01T12:00:05Z"}));
    let a = parse(v);
    let h = newer_sync(&a, SHA_B).unwrap();
    assert_eq!((h.id, h.release()), (2, "c0ffee".to_string()));
    // A condemned revision the history does not know cannot be ordered: no supersession.
    assert!(newer_sync(&a, "unknown").is_none());
}

fn malformed(r: Result<Application, DeployerError>) -> String {
    match r {
        Err(DeployerError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn application_documents_decode_and_bad_ones_say_why() {
    let a = decode(app().to_string().as_bytes()).unwrap();
    assert_eq!(history_id(&a, SHA_A), Some(0));
    assert!(
        decode(b"{}").is_ok(),
        "every part backstop reads is optional"
    );
    for (body, says) in [
        (&b""[..], "EOF"),
        (br#"{"status": {"history": [{"id": 0, "revision": "#, "EOF"),
        (br#"{"status": {"history": {}}}"#, "invalid type"),
        (
            br#"{"status": {"history": [{"id": 1e400}]}}"#,
            "number out of range",
        ),
        (
            br#"{"status": {"history": [{"id": 9223372036854775808}]}}"#,
            "not an int64",
        ),
        (
            br#"{"status": {"history": [{"id": "99999999999999999999"}]}}"#,
            "too large",
        ),
        (br#"{"status": {"history": [{"id": 1.5}]}}"#, "not an int64"),
        (
            br#"{"status": {"operationState": {"phase": 7}}}"#,
            "invalid type",
        ),
        (
            br#"{"status": {"operationState": {"phase": "Failed", "startedAt": "soon"}}}"#,
            "input",
        ),
        (b"\xff", "expected value"),
    ] {
        let m = malformed(decode(body));
        assert!(m.starts_with("application: ") && m.contains(says), "{m}");
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    malformed(decode(deep.as_bytes()));
    // The history id is read through a document: serde_json's recursion limit (128) stops it.
    let id = format!(r#"{{"status": {{"history": [{{"id": {deep}}}]}}}}"#);
    assert!(malformed(decode(id.as_bytes())).contains("recursion limit"));
    // A field backstop does not read is skipped without recursing: no limit is needed.
    let ignored = format!(r#"{{"metadata": {deep}}}"#);
    assert!(decode(ignored.as_bytes()).is_ok());
    assert_eq!(error_text(deep.as_bytes()).len(), 200);
}
