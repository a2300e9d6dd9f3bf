//! Holds the fakes in `tests/common` to the real APIs' shapes, so that the end-to-end tests built
//! on them prove something about the real Octopus and Prometheus.
//!
//! The Octopus resources are checked against the Swagger document the server itself published
//! (2021.2.4488, copied into `tests/data/` so a clean clone can run this), fetched over real HTTP.
//! The behaviours the exactly-once tests lean on (task progression, paging, faults) are pinned
//! down here too, so a change to a fake that would quietly weaken those tests fails loudly.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::app::FakeApp;
use common::octopus::FakeOctopus;
use common::prometheus::{FakePrometheus, Reply};
use common::{wait_until, wait_until_async};
use reqwest::StatusCode;
use serde_json::{json, Value};

const KEY: &str = "API-FAKEFAKEFAKEFAKEFAKEFAKE0";
const SWAGGER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/octopus-swagger-2021.2.4488.json"
);

// ---- Swagger conformance -------------------------------------------------------------------

fn definitions() -> &'static serde_json::Map<String, Value> {
    static DOC: OnceLock<Value> = OnceLock::new();
    let doc = DOC.get_or_init(|| {
        let text =
            std::fs::read_to_string(SWAGGER).unwrap_or_else(|e| panic!("reading {SWAGGER}: {e}"));
        serde_json::from_str(&text).expect("swagger document is JSON")
    });
    doc["definitions"]
        .as_object()
        .expect("swagger has definitions")
}

/// Follows `$ref` and flattens `allOf` into one schema with the union of properties.
fn resolve(schema: &Value) -> Value {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r
            .strip_prefix("#/definitions/")
            .unwrap_or_else(|| panic!("unsupported $ref {r}"));
        return resolve(
            definitions()
                .get(name)
                .unwrap_or_else(|| panic!("no definition {name}")),
        );
    }
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let mut merged = schema.clone();
    merged
        .as_object_mut()
        .expect("schema object")
        .remove("allOf");
    merged["type"] = json!("object");
    let mut props = merged
        .get("properties")
        .cloned()
        .unwrap_or_else(|| json!({}));
    for part in parts {
        if let Some(p) = resolve(part).get("properties").and_then(Value::as_object) {
            props
                .as_object_mut()
                .expect("properties object")
                .extend(p.clone());
        }
    }
    merged["properties"] = props;
    merged
}

/// Collects every way `v` departs from `schema`: missing properties, wrong JSON types, bad
/// date-times, values outside an enum. Null is accepted anywhere (Swagger 2 has no nullability).
fn conform(v: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
    let s = resolve(schema);
    if v.is_null() {
        return;
    }
    let props = s.get("properties").and_then(Value::as_object);
    let ty = s
        .get("type")
        .and_then(Value::as_str)
        .or(props.map(|_| "object"));
    let fail = |what: &str| format!("{at}: {what}, got {v}");
    match ty {
        Some("object") => {
            let Some(obj) = v.as_object() else {
                return errors.push(fail("expected an object"));
            };
            for (name, p) in props.into_iter().flatten() {
                match obj.get(name) {
                    Some(pv) => conform(pv, p, &format!("{at}.{name}"), errors),
                    None => errors.push(format!("{at}.{name}: missing")),
                }
            }
            if let Some(extra) = s
                .get("additionalProperties")
                .filter(|a| a.as_object().is_some_and(|a| !a.is_empty()))
            {
                for (name, pv) in obj
                    .iter()
                    .filter(|(k, _)| props.is_none_or(|p| !p.contains_key(*k)))
                {
                    conform(pv, extra, &format!("{at}[{name:?}]"), errors);
                }
            }
        }
        Some("array") => {
            let Some(items) = v.as_array() else {
                return errors.push(fail("expected an array"));
            };
            if s["uniqueItems"] == json!(true)
                && (1..items.len()).any(|i| items[..i].contains(&items[i]))
            {
                errors.push(fail("expected unique items"));
            }
            for (i, item) in items.iter().enumerate() {
                conform(item, &s["items"], &format!("{at}[{i}]"), errors);
            }
        }
        Some("string") => match v.as_str() {
            None => errors.push(fail("expected a string")),
            Some(t)
                if s["format"] == "date-time"
                    && chrono::DateTime::parse_from_rfc3339(t).is_err() =>
            {
                errors.push(fail("expected an RFC 3339 date-time"))
            }
            Some(t) if s["enum"].as_array().is_some_and(|e| !e.contains(&json!(t))) => {
                errors.push(fail(&format!("expected one of {}", s["enum"])))
            }
            Some(_) => {}
        },
        Some("integer") if !(v.is_i64() || v.is_u64()) => errors.push(fail("expected an integer")),
        Some("number") if !v.is_number() => errors.push(fail("expected a number")),
        Some("boolean") if !v.is_boolean() => errors.push(fail("expected a boolean")),
        _ => {}
    }
}

/// Asserts `v` has every property of definition `def` with the right types, and that the
/// properties the client libraries declare non-nullable are not null.
fn assert_shape(def: &str, v: &Value, non_null: &[&str]) {
    let mut errors = vec![];
    conform(
        v,
        &json!({"$ref": format!("#/definitions/{def}")}),
        def,
        &mut errors,
    );
    for name in non_null {
        if v.get(name).is_none_or(Value::is_null) {
            errors.push(format!("{def}.{name}: must not be null"));
        }
    }
    assert!(
        errors.is_empty(),
        "{def} does not match the swagger document:\n  {}\nin {v:#}",
        errors.join("\n  ")
    );
}

const DEPLOYMENT_NON_NULL: &[&str] = &[
    "Id",
    "SpaceId",
    "Name",
    "ReleaseId",
    "EnvironmentId",
    "ProjectId",
    "ChannelId",
    "TaskId",
    "Created",
    "ForcePackageDownload",
    "ForcePackageRedeployment",
    "UseGuidedFailure",
    "FailureEncountered",
    "Links",
];
const TASK_NON_NULL: &[&str] = &[
    "Id",
    "Name",
    "State",
    "QueueTime",
    "HasBeenPickedUpByProcessor",
    "IsCompleted",
    "FinishedSuccessfully",
    "HasPendingInterruptions",
    "CanRerun",
    "HasWarningsOrErrors",
    "Links",
];
const RELEASE_NON_NULL: &[&str] = &[
    "Id",
    "SpaceId",
    "ProjectId",
    "ChannelId",
    "Version",
    "Assembled",
    "Links",
];
const COLLECTION_NON_NULL: &[&str] = &[
    "ItemType",
    "TotalResults",
    "ItemsPerPage",
    "NumberOfPages",
    "LastPageNumber",
    "Items",
    "Links",
];

// ---- HTTP helpers --------------------------------------------------------------------------

async fn call(req: reqwest::RequestBuilder) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let resp = req.send().await.expect("request reaches the fake");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.expect("body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status} body is not JSON ({e}): {text}"));
    (status, headers, body)
}

async fn get(o: &FakeOctopus, path: &str) -> (StatusCode, Value) {
    let (status, _, body) = call(
        reqwest::Client::new()
            .get(format!("{}{path}", o.url()))
            .header("X-Octopus-ApiKey", KEY),
    )
    .await;
    (status, body)
}

async fn post(o: &FakeOctopus, body: Value) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    call(
        reqwest::Client::new()
            .post(format!("{}/api/Spaces-1/deployments", o.url()))
            .header("X-Octopus-ApiKey", KEY)
            .json(&body),
    )
    .await
}

fn ids(collection: &Value) -> Vec<String> {
    let items = collection["Items"].as_array().expect("Items");
    items
        .iter()
        .map(|d| d["Id"].as_str().expect("Id").to_owned())
        .collect()
}

async fn octopus_with_release() -> (FakeOctopus, String) {
    let o = FakeOctopus::start(KEY).await;
    let release = o.add_release("Projects-1", "1.2.0");
    (o, release)
}

fn redeploy(release: &str) -> Value {
    json!({"ReleaseId": release, "EnvironmentId": "Environments-1", "Comments": "backstop: rollback"})
}

// ---- (1) shapes ----------------------------------------------------------------------------

#[test]
fn shape_checker_catches_missing_and_mistyped_properties() {
    let props = resolve(&json!({"$ref": "#/definitions/DeploymentResource"}))["properties"]
        .as_object()
        .map_or(0, |p| p.len());
    assert!(
        props >= 30,
        "DeploymentResource resolved to only {props} properties"
    );
    let mut errors = vec![];
    let bad =
        json!({"Id": 7, "Created": "yesterday", "Links": {"Self": 1}, "SkipActions": ["a", "a"]});
    conform(
        &bad,
        &json!({"$ref": "#/definitions/DeploymentResource"}),
        "D",
        &mut errors,
    );
    for expected in [
        "D.Id: expected a string",
        "D.Created: expected an RFC 3339",
        "D.Links[\"Self\"]: expected a string",
        "D.SkipActions: expected unique",
        "D.TaskId: missing",
    ] {
        assert!(
            errors.iter().any(|e| e.starts_with(expected)),
            "no error starting {expected:?} in {errors:#?}"
        );
    }
    let mut errors = vec![];
    conform(
        &json!({"State": "Done"}),
        &json!({"$ref": "#/definitions/TaskResource"}),
        "T",
        &mut errors,
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("T.State: expected one of")),
        "{errors:#?}"
    );
}

#[tokio::test]
async fn octopus_resources_carry_every_swagger_property() {
    let (o, release) = octopus_with_release().await;
    let old = o.add_deployment("Projects-1", "Environments-1", &release, "Success");
    let failed = o.add_deployment("Projects-1", "Environments-2", &release, "Failed");
    let body = json!({
        "ReleaseId": release, "EnvironmentId": "Environments-1", "TenantId": "Tenants-3", "Comments": "rollback",
        "FormValues": {"reason": "error rate"}, "ForcePackageRedeployment": true, "UseGuidedFailure": false,
        "QueueTime": "2030-01-01T00:00:00+00:00", "SpecificMachineIds": ["Machines-2"],
    });
    let (status, _, created) = post(&o, body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_shape("DeploymentResource", &created, DEPLOYMENT_NON_NULL);
    assert_eq!(
        (
            created["TenantId"].as_str(),
            created["ForcePackageRedeployment"].as_bool()
        ),
        (Some("Tenants-3"), Some(true))
    );
    assert!(created["Links"]["Task"]
        .as_str()
        .is_some_and(|l| l.ends_with(created["TaskId"].as_str().unwrap())));

    let (status, list) = get(&o, "/api/Spaces-1/deployments").await;
    assert_eq!(status, StatusCode::OK);
    assert_shape("DeploymentResourceCollection", &list, COLLECTION_NON_NULL);
    assert_eq!(list["Items"].as_array().map(Vec::len), Some(3));
    for id in [
        old.as_str(),
        failed.as_str(),
        created["Id"].as_str().unwrap(),
    ] {
        let (status, d) = get(&o, &format!("/api/Spaces-1/deployments/{id}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_shape("DeploymentResource", &d, DEPLOYMENT_NON_NULL);
        let (status, task) = get(
            &o,
            &format!("/api/Spaces-1/tasks/{}", d["TaskId"].as_str().unwrap()),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_shape("TaskResource", &task, TASK_NON_NULL);
    }
    let task_path = format!("/api/tasks/{}", created["TaskId"].as_str().unwrap());
    for state in ["Executing", "Success"] {
        let (_, task) = get(&o, &task_path).await;
        assert_eq!(task["State"], state);
        assert_shape("TaskResource", &task, TASK_NON_NULL);
    }
    let (status, r) = get(&o, &format!("/api/Spaces-1/releases/{release}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_shape("ReleaseResource", &r, RELEASE_NON_NULL);
    assert_eq!(
        (r["Version"].as_str(), r["ProjectId"].as_str()),
        (Some("1.2.0"), Some("Projects-1"))
    );
}

#[tokio::test]
async fn octopus_errors_use_the_error_shape() {
    let (o, _) = octopus_with_release().await;
    let unauth =
        call(reqwest::Client::new().get(format!("{}/api/Spaces-1/deployments", o.url()))).await;
    let (_, not_found) = get(&o, "/api/Spaces-1/deployments/Deployments-999").await;
    let (_, _, invalid) = post(&o, json!({"EnvironmentId": "Environments-1"})).await;
    for body in [&unauth.2, &not_found, &invalid] {
        assert_shape("Error", body, &["ErrorMessage", "Errors"]);
        assert!(body.as_object().unwrap().contains_key("Details"));
    }
}

// ---- (2) task progression ------------------------------------------------------------------

#[tokio::test]
async fn created_task_walks_queued_executing_final_on_successive_gets() {
    let (o, release) = octopus_with_release().await;
    let (_, _, d) = post(&o, redeploy(&release)).await;
    let task_id = d["TaskId"].as_str().unwrap().to_owned();
    assert!(task_id.starts_with("ServerTasks-"), "{task_id}");
    assert_eq!(
        o.task(&task_id).unwrap()["State"],
        "Queued",
        "inspection must not advance the task"
    );

    let scoped = format!("/api/Spaces-1/tasks/{task_id}");
    let unscoped = format!("/api/tasks/{task_id}");
    let expect = [
        // path, State, IsCompleted, FinishedSuccessfully, picked up, has StartTime, has CompletedTime
        (&scoped, "Queued", false, false, false, false, false),
        (&unscoped, "Executing", false, false, true, true, false),
        (&scoped, "Success", true, true, true, true, true),
        (&unscoped, "Success", true, true, true, true, true),
    ];
    for (path, state, completed, success, picked, started, finished) in expect {
        let (status, t) = get(&o, path).await;
        assert_eq!(status, StatusCode::OK);
        let got = (
            t["State"].as_str(),
            t["IsCompleted"].as_bool(),
            t["FinishedSuccessfully"].as_bool(),
            t["HasBeenPickedUpByProcessor"].as_bool(),
        );
        assert_eq!(
            got,
            (Some(state), Some(completed), Some(success), Some(picked)),
            "{t:#}"
        );
        assert_eq!(
            (!t["StartTime"].is_null(), !t["CompletedTime"].is_null()),
            (started, finished),
            "{t:#}"
        );
        let (_, listed) = get(&o, &format!("/api/Spaces-1/deployments?taskState={state}")).await;
        assert_eq!(
            ids(&listed),
            [d["Id"].as_str().unwrap()],
            "deployment listed under its task's state {state}"
        );
    }

    o.set_task_final_state("Failed");
    let (_, _, d) = post(&o, redeploy(&release)).await;
    let path = format!("/api/tasks/{}", d["TaskId"].as_str().unwrap());
    let mut states = vec![];
    for _ in 0..3 {
        states.push(get(&o, &path).await.1);
    }
    assert_eq!(
        states
            .iter()
            .map(|t| t["State"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["Queued", "Executing", "Failed"]
    );
    let failed = &states[2];
    assert_eq!(
        (
            failed["IsCompleted"].as_bool(),
            failed["FinishedSuccessfully"].as_bool(),
            failed["HasWarningsOrErrors"].as_bool()
        ),
        (Some(true), Some(false), Some(true))
    );
    assert!(!failed["ErrorMessage"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn added_deployments_start_in_their_final_state_and_tasks_can_be_steered() {
    let (o, release) = octopus_with_release().await;
    let id = o.add_deployment("Projects-1", "Environments-1", &release, "TimedOut");
    let (_, d) = get(&o, &format!("/api/Spaces-1/deployments/{id}")).await;
    let task_id = d["TaskId"].as_str().unwrap().to_owned();
    assert_ne!(
        task_id.trim_start_matches("ServerTasks-"),
        id.trim_start_matches("Deployments-"),
        "task numbers must not mirror deployment numbers"
    );
    let (_, t) = get(&o, &format!("/api/tasks/{task_id}")).await;
    assert_eq!(
        (
            t["State"].as_str(),
            t["IsCompleted"].as_bool(),
            t["FinishedSuccessfully"].as_bool()
        ),
        (Some("TimedOut"), Some(true), Some(false))
    );

    o.set_task_state(&task_id, "Cancelling");
    o.set_pending_interruptions(&task_id, true);
    let (_, t) = get(&o, &format!("/api/tasks/{task_id}")).await;
    assert_eq!(
        (
            t["State"].as_str(),
            t["IsCompleted"].as_bool(),
            t["HasPendingInterruptions"].as_bool()
        ),
        (Some("Cancelling"), Some(false), Some(true))
    );
    assert!(t["CompletedTime"].is_null());
}

// ---- (3) auth ------------------------------------------------------------------------------

#[tokio::test]
async fn requests_without_the_right_api_key_get_401() {
    let (o, release) = octopus_with_release().await;
    let http = reqwest::Client::new();
    let release_path = format!("/api/Spaces-1/releases/{release}");
    let paths = [
        "/api/Spaces-1/deployments",
        "/api/tasks/ServerTasks-101",
        release_path.as_str(),
    ];
    for path in paths {
        for key in [None, Some("API-WRONG")] {
            let mut req = http.get(format!("{}{path}", o.url()));
            if let Some(key) = key {
                req = req.header("X-Octopus-ApiKey", key);
            }
            let (status, _, body) = call(req).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} with key {key:?}");
            assert!(
                body["ErrorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("API key")),
                "{body}"
            );
            assert!(
                body["Errors"].is_array() && body["Details"].is_null(),
                "{body}"
            );
        }
    }
    let (status, _, _) = call(
        http.post(format!("{}/api/Spaces-1/deployments", o.url()))
            .json(&redeploy(&release)),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        (
            o.post_attempts(),
            o.created_deployments().len(),
            o.deployments().len()
        ),
        (1, 0, 0)
    );
    assert_eq!(
        get(&o, &format!("/api/Spaces-1/releases/{release}"))
            .await
            .0,
        StatusCode::OK
    );
}

// ---- (4) listing and paging ----------------------------------------------------------------

#[tokio::test]
async fn deployments_are_listed_newest_first_filtered_and_paged() {
    let (o, release) = octopus_with_release().await;
    let t0 = chrono::Utc::now() - chrono::Duration::hours(1);
    let at = |mins| t0 + chrono::Duration::minutes(mins);
    // Added out of order: the list must follow Created, not insertion.
    let d3 = o.add_deployment_at("Projects-1", "Environments-1", &release, "Success", at(3));
    let d1 = o.add_deployment_at("Projects-1", "Environments-1", &release, "Success", at(1));
    let d2 = o.add_deployment_at("Projects-2", "Environments-1", &release, "Success", at(2));
    let d5 = o.add_deployment_at("Projects-1", "Environments-2", &release, "Failed", at(5));
    let d4 = o.add_deployment_at("Projects-1", "Environments-1", &release, "Success", at(4));

    let (_, all) = get(&o, "/api/Spaces-1/deployments").await;
    let newest_first = [&d5, &d4, &d3, &d2, &d1].map(String::as_str);
    assert_eq!(ids(&all), newest_first);
    assert_eq!(
        (
            all["ItemsPerPage"].as_u64(),
            all["NumberOfPages"].as_u64(),
            all["LastPageNumber"].as_u64()
        ),
        (Some(30), Some(1), Some(0))
    );
    assert!(
        all["Links"].get("Page.Next").is_none(),
        "single page has no Page.Next"
    );

    let mut seen = vec![];
    let mut link = "/api/Spaces-1/deployments?skip=0&take=2".to_owned();
    loop {
        let (status, page) = get(&o, &link).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (
                page["TotalResults"].as_u64(),
                page["ItemsPerPage"].as_u64(),
                page["NumberOfPages"].as_u64(),
                page["LastPageNumber"].as_u64()
            ),
            (Some(5), Some(2), Some(3), Some(2))
        );
        assert!(
            ["Self", "Template", "Page.All", "Page.Current", "Page.Last"]
                .iter()
                .all(|k| page["Links"][k].is_string()),
            "{page:#}"
        );
        seen.extend(ids(&page));
        match page["Links"].get("Page.Next") {
            Some(next) => link = next.as_str().unwrap().to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, newest_first);
    assert!(
        link.ends_with("skip=4&take=2"),
        "last followed link was {link}"
    );
    let (_, last) = get(&o, "/api/Spaces-1/deployments?skip=4&take=2").await;
    assert_eq!(
        (ids(&last), last["Links"].get("Page.Next")),
        (vec![d1.clone()], None)
    );
    let (_, beyond) = get(&o, "/api/Spaces-1/deployments?skip=10&take=2").await;
    assert!(ids(&beyond).is_empty());

    let cases: [(&str, Vec<&String>); 5] = [
        ("projects=Projects-1", vec![&d5, &d4, &d3, &d1]),
        (
            "projects=Projects-1,Projects-2&environments=Environments-1",
            vec![&d4, &d3, &d2, &d1],
        ),
        (
            "projects=Projects-2&projects=Projects-1&environments=Environments-2",
            vec![&d5],
        ),
        ("taskState=Failed", vec![&d5]),
        (
            "projects=Projects-1&environments=Environments-1&taskState=Success&take=1",
            vec![&d4],
        ),
    ];
    for (query, expected) in cases {
        let (_, page) = get(&o, &format!("/api/Spaces-1/deployments?{query}")).await;
        assert_eq!(
            ids(&page),
            expected.into_iter().map(String::as_str).collect::<Vec<_>>(),
            "{query}"
        );
    }
    let (status, body) = get(&o, "/api/Spaces-1/deployments?skip=minus-one").await;
    assert_eq!(
        (status, body["ErrorMessage"].is_string()),
        (StatusCode::BAD_REQUEST, true)
    );
}

#[tokio::test]
async fn unknown_ids_and_routes_answer_404_with_an_error_body() {
    let (o, _) = octopus_with_release().await;
    for path in [
        "/api/Spaces-1/deployments/Deployments-9",
        "/api/Spaces-1/releases/Releases-9",
        "/api/tasks/ServerTasks-9",
        "/api/Spaces-1/nonsense",
    ] {
        let (status, body) = get(&o, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body["ErrorMessage"].is_string(), "{path}: {body}");
    }
}

// ---- (5) create validation and fault injection ---------------------------------------------

#[tokio::test]
async fn create_validates_like_the_server_and_takes_the_project_from_the_release() {
    let (o, release) = octopus_with_release().await;
    let cases = [
        (
            json!({"EnvironmentId": "Environments-1"}),
            "Please specify the release to deploy.",
        ),
        (
            json!({"ReleaseId": release}),
            "Please provide a target environment to deploy to.",
        ),
        (
            json!({"ReleaseId": "Releases-404", "EnvironmentId": "Environments-1"}),
            "Releases-404",
        ),
        (
            json!({"ReleaseId": release, "EnvironmentId": "Environments-1", "UseGuidedFailure": "yes"}),
            "UseGuidedFailure",
        ),
    ];
    o.create_then_fail_next_posts(1);
    for (body, error) in cases {
        let (status, _, resp) = post(&o, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            resp["Errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e.as_str().unwrap().contains(error)),
            "{error:?} in {resp}"
        );
    }
    assert!(o.deployments().is_empty());
    let (status, _, _) = post(&o, redeploy(&release)).await;
    assert_eq!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "invalid bodies must not use up a queued create fault"
    );
    let (status, _, d) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        (
            d["ProjectId"].as_str(),
            d["Comments"].as_str(),
            d["ReleaseId"].as_str()
        ),
        (
            Some("Projects-1"),
            Some("backstop: rollback"),
            Some(release.as_str())
        )
    );
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (6, 2));
}

#[tokio::test]
async fn failed_posts_answer_the_status_and_create_nothing() {
    let (o, release) = octopus_with_release().await;
    o.fail_next_posts(2, 429, Some(7));
    o.fail_next_posts(1, 503, None);
    for expected in [429, 429, 503] {
        let (status, headers, body) = post(&o, redeploy(&release)).await;
        assert_eq!(status.as_u16(), expected);
        let retry_after = headers
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(retry_after.as_deref(), (expected == 429).then_some("7"));
        assert!(
            body["ErrorMessage"].is_string() && body["Errors"].is_array(),
            "{body}"
        );
    }
    assert!(o.created_deployments().is_empty() && o.deployments().is_empty());
    let (status, _, _) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (4, 1));
}

#[tokio::test]
async fn create_then_fail_lands_the_deployment_but_loses_the_response() {
    let (o, release) = octopus_with_release().await;
    o.create_then_fail_next_posts(1);
    let (status, _, body) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body.get("Id").is_none(),
        "a lost response must not reveal the deployment: {body}"
    );
    let created = o.created_deployments();
    assert_eq!(created.len(), 1);
    let (_, listed) = get(&o, "/api/Spaces-1/deployments?projects=Projects-1&environments=Environments-1&taskState=Queued").await;
    assert_eq!(
        ids(&listed),
        [created[0]["Id"].as_str().unwrap()],
        "the landed deployment is discoverable"
    );
    assert_eq!(post(&o, redeploy(&release)).await.0, StatusCode::CREATED);
    assert_eq!((o.post_attempts(), o.created_deployments().len()), (2, 2));
}

#[tokio::test]
async fn hung_posts_create_first_and_answer_late() {
    let (o, release) = octopus_with_release().await;
    o.hang_next_posts(1, Duration::from_millis(300));
    let started = Instant::now();
    let (status, _, d) = post(&o, redeploy(&release)).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(d["Id"], o.created_deployments()[0]["Id"]);

    o.hang_next_posts(1, Duration::from_secs(30));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let err = impatient
        .post(format!("{}/api/Spaces-1/deployments", o.url()))
        .header("X-Octopus-ApiKey", KEY)
        .json(&redeploy(&release))
        .send()
        .await
        .expect_err("the client must time out");
    assert!(err.is_timeout(), "{err}");
    let created = o.wait_for_created(2, Duration::from_secs(5)).await;
    assert_eq!(created[1]["ReleaseId"].as_str(), Some(release.as_str()));

    let started = Instant::now();
    assert_eq!(post(&o, redeploy(&release)).await.0, StatusCode::CREATED);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "only the queued POST hangs"
    );
    assert_eq!(o.post_attempts(), 3);
}

#[tokio::test]
async fn post_faults_apply_in_the_order_queued() {
    let (o, release) = octopus_with_release().await;
    o.fail_next_posts(1, 503, None);
    o.create_then_fail_next_posts(1);
    let statuses = [
        post(&o, redeploy(&release)).await.0,
        post(&o, redeploy(&release)).await.0,
        post(&o, redeploy(&release)).await.0,
    ];
    assert_eq!(statuses.map(|s| s.as_u16()), [503, 500, 201]);
    assert_eq!(o.created_deployments().len(), 2);
}

#[tokio::test]
async fn failed_gets_hit_any_endpoint_but_spare_posts() {
    let (o, release) = octopus_with_release().await;
    let id = o.add_deployment("Projects-1", "Environments-1", &release, "Success");
    o.fail_next_gets(3, 503);
    let unauth =
        call(reqwest::Client::new().get(format!("{}/api/Spaces-1/deployments", o.url()))).await;
    assert_eq!(
        unauth.0,
        StatusCode::UNAUTHORIZED,
        "authentication comes before faults"
    );
    let one = format!("/api/Spaces-1/deployments/{id}");
    for path in ["/api/Spaces-1/deployments", one.as_str()] {
        let (status, body) = get(&o, path).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}");
        assert!(body["ErrorMessage"].is_string(), "{body}");
    }
    assert_eq!(
        post(&o, redeploy(&release)).await.0,
        StatusCode::CREATED,
        "POSTs are not GET faults"
    );
    assert_eq!(
        get(&o, "/api/tasks/ServerTasks-101").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        get(&o, &format!("/api/Spaces-1/releases/{release}"))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test]
#[should_panic(expected = "expected at least 1 deployment(s) created via POST")]
async fn wait_for_created_panics_with_a_clear_message() {
    let (o, _) = octopus_with_release().await;
    o.wait_for_created(1, Duration::from_millis(50)).await;
}

// ---- Prometheus ----------------------------------------------------------------------------

async fn prom(p: &FakePrometheus, path: &str, params: &[(&str, &str)]) -> (StatusCode, Value) {
    let (status, _, body) = call(
        reqwest::Client::new()
            .get(format!("{}{path}", p.url()))
            .query(params),
    )
    .await;
    (status, body)
}

#[tokio::test]
async fn prometheus_instant_queries_answer_like_the_v1_api() {
    let p = FakePrometheus::start().await;
    p.set("up", Reply::Value(1.0));
    p.set("ratio", Reply::NaN);
    p.set("latency", Reply::Value(f64::INFINITY));
    p.set("by_instance", Reply::Series(vec![0.25, 0.5]));
    p.set("broken", Reply::Error(422));

    let (status, body) = prom(
        &p,
        "/api/v1/query",
        &[("query", "up"), ("time", "1700000000.5")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000.5, "1"]}]}})
    );
    let (_, body) = prom(&p, "/api/v1/query", &[("query", "up")]).await;
    assert!(body["data"]["result"][0]["value"][0].is_number(), "{body}");
    for (query, value) in [("ratio", "NaN"), ("latency", "+Inf")] {
        let (_, body) = prom(&p, "/api/v1/query", &[("query", query)]).await;
        assert_eq!(body["data"]["result"][0]["value"][1], value);
    }
    let (_, body) = prom(&p, "/api/v1/query", &[("query", "never_set")]).await;
    assert_eq!(body["data"], json!({"resultType": "vector", "result": []}));
    let (_, body) = prom(&p, "/api/v1/query", &[("query", "by_instance")]).await;
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(
        result
            .iter()
            .map(|r| r["value"][1].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["0.25", "0.5"]
    );
    assert_ne!(result[0]["metric"], result[1]["metric"]);
    let (status, body) = prom(&p, "/api/v1/query", &[("query", "broken")]).await;
    assert_eq!(
        (
            status.as_u16(),
            body["status"].as_str(),
            body["errorType"].as_str()
        ),
        (422, Some("error"), Some("execution"))
    );
    assert!(body["error"].is_string());

    let (status, _, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/query", p.url()))
            .form(&[("query", "up"), ("time", "2023-11-14T22:13:20Z")]),
    )
    .await;
    assert_eq!(
        (status, &body["data"]["result"][0]["value"]),
        (StatusCode::OK, &json!([1700000000, "1"]))
    );
    let (status, _, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/query", p.url()))
            .json(&json!({"query": "up"})),
    )
    .await;
    assert_eq!(
        (status, body["errorType"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_data")),
        "JSON bodies are not form parameters"
    );

    let log = p.queries();
    assert_eq!(log.len(), 9);
    assert_eq!(log[0], ("/api/v1/query".to_owned(), "up".to_owned()));
    assert_eq!(log[8].1, "", "a request without a query is logged too");
}

#[tokio::test]
async fn prometheus_range_queries_answer_a_matrix_of_step_spaced_points() {
    let p = FakePrometheus::start().await;
    p.set_range("rate", Reply::Value(0.5));
    p.set("rate", Reply::Value(9.0));
    p.set("errors", Reply::Value(2.0));
    p.set_range("gone", Reply::Empty);
    p.set_range("slow", Reply::Error(503));
    let range = |q: &'static str, step: &'static str| {
        [
            ("query", q),
            ("start", "1000"),
            ("end", "1060"),
            ("step", step),
        ]
    };

    for step in ["15", "15s"] {
        let (status, body) = prom(&p, "/api/v1/query_range", &range("rate", step)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["data"]["resultType"], "matrix");
        let points = &body["data"]["result"][0]["values"];
        assert_eq!(
            points,
            &json!([
                [1000, "0.5"],
                [1015, "0.5"],
                [1030, "0.5"],
                [1045, "0.5"],
                [1060, "0.5"]
            ])
        );
    }
    let (_, body) = prom(&p, "/api/v1/query_range", &range("errors", "30")).await;
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[1000, "2"], [1030, "2"], [1060, "2"]]),
        "falls back to the instant reply"
    );
    let (_, body) = prom(&p, "/api/v1/query_range", &range("gone", "30")).await;
    assert_eq!(body["data"], json!({"resultType": "matrix", "result": []}));
    let (status, body) = prom(&p, "/api/v1/query_range", &range("slow", "30")).await;
    assert_eq!(
        (status.as_u16(), body["errorType"].as_str()),
        (503, Some("unavailable"))
    );

    let bad = [
        vec![
            ("query", "rate"),
            ("start", "1060"),
            ("end", "1000"),
            ("step", "15"),
        ],
        vec![("query", "rate"), ("start", "1000"), ("end", "1060")],
        vec![
            ("query", "rate"),
            ("start", "0"),
            ("end", "100000"),
            ("step", "1"),
        ],
    ];
    for params in bad {
        let (status, body) = prom(&p, "/api/v1/query_range", &params).await;
        assert_eq!(
            (status, body["errorType"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_data")),
            "{params:?}"
        );
    }
    let (_, _, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/v1/query_range", p.url()))
            .form(&range("rate", "1m")),
    )
    .await;
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[1000, "0.5"], [1060, "0.5"]])
    );
    assert!(p
        .queries()
        .iter()
        .all(|(path, _)| path == "/api/v1/query_range"));
}

// ---- FakeApp and helpers -------------------------------------------------------------------

#[tokio::test]
async fn app_health_answers_the_status_set_counts_hits_and_can_be_slow() {
    let app = FakeApp::start().await;
    let http = reqwest::Client::new();
    let health = format!("{}/health", app.url());
    assert_eq!(
        http.get(&health).send().await.unwrap().status(),
        StatusCode::OK
    );
    app.set_health(503);
    let status = http.get(&health).send().await.unwrap().status();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    app.set_delay(Duration::from_secs(30));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(impatient
        .get(&health)
        .send()
        .await
        .unwrap_err()
        .is_timeout());
    wait_until(
        "the slow request is counted",
        Duration::from_secs(5),
        || app.hits() == 3,
    )
    .await;

    app.set_delay(Duration::ZERO);
    app.set_health(200);
    let (http, health) = (&http, health.as_str());
    let healthy = || async move {
        http.get(health)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    };
    wait_until_async("the app is healthy again", Duration::from_secs(5), healthy).await;
    wait_until("the probe was counted", Duration::from_secs(5), || {
        app.hits() >= 4
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "timed out after 50ms waiting until pigs fly")]
async fn wait_until_names_what_it_waited_for() {
    wait_until("pigs fly", Duration::from_millis(50), || false).await;
}
