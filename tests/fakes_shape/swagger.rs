//! The Swagger 2 conformance checker: resolves `$ref`/`allOf` in the document Octopus published
//! and lists every way a JSON value departs from a definition. Its own test proves it catches
//! what it claims to.

use std::sync::OnceLock;

use serde_json::{json, Value};

const SWAGGER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/octopus-swagger-2021.2.4488.json"
);

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
pub fn resolve(schema: &Value) -> Value {
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
pub fn conform(v: &Value, schema: &Value, at: &str, errors: &mut Vec<String>) {
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
pub fn assert_shape(def: &str, v: &Value, non_null: &[&str]) {
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

pub const DEPLOYMENT_NON_NULL: &[&str] = &[
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
pub const TASK_NON_NULL: &[&str] = &[
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
pub const RELEASE_NON_NULL: &[&str] = &[
    "Id",
    "SpaceId",
    "ProjectId",
    "ChannelId",
    "Version",
    "Assembled",
    "Links",
];
pub const COLLECTION_NON_NULL: &[&str] = &[
    "ItemType",
    "TotalResults",
    "ItemsPerPage",
    "NumberOfPages",
    "LastPageNumber",
    "Items",
    "Links",
];

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
