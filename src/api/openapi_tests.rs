//! The committed document is the generated one, and it is a sound OpenAPI 3 document.

use serde_json::Value;

use super::document;

/// The committed copy, relative to the crate.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/openapi.json");

#[test]
fn the_committed_document_is_current() {
    let generated = document();
    if std::env::var_os("BACKSTOP_BLESS").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    if committed != generated {
        let line = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| "its end".to_string(), |n| format!("line {}", n + 1));
        panic!(
            "config/openapi.json is stale (first difference at {line}): the API's types or \
             handlers changed. Refresh it with `BACKSTOP_BLESS=1 cargo test --lib openapi` \
             and commit it."
        );
    }
}

#[test]
fn it_is_openapi_3_with_every_path() {
    let doc: Value = serde_json::from_str(&document()).unwrap();
    let version = doc["openapi"].as_str().unwrap();
    assert!(version.starts_with("3."), "{version}");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for path in [
        "/healthz",
        "/metrics",
        "/v1/status",
        "/v1/watches/{name}",
        "/v1/watches/{name}/pause",
        "/v1/watches/{name}/resume",
        "/v1/deployments",
        "/v1/verdicts/{id}",
        "/v1/history",
        "/v1/hooks/octopus",
        "/v1/openapi.json",
    ] {
        assert!(paths.contains(&path), "{path} missing from {paths:?}");
    }
    // The page size's range is written out in an attribute: it must be the board's.
    let limit = &doc["paths"]["/v1/status"]["get"]["parameters"][0];
    assert_eq!(limit["name"], "limit");
    assert_eq!(limit["schema"]["maximum"], crate::status::MAX_LIMIT);
    assert!(limit["description"]
        .as_str()
        .unwrap()
        .contains(&format!("default {}", crate::status::DEFAULT_LIMIT)));
    // Every mutating operation names its security scheme, and the schemes exist.
    let schemes = &doc["components"]["securitySchemes"];
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            // The header caps' 431 is added to GETs and POSTs only.
            assert!(
                ["get", "post"].contains(&method.as_str()),
                "{method} {path}"
            );
            assert!(
                op["responses"].get("431").is_some(),
                "{method} {path} lacks the 431"
            );
            if method == "post" {
                let security = op["security"].as_array();
                let named = security
                    .and_then(|s| s.first())
                    .and_then(|s| s.as_object())
                    .and_then(|s| s.keys().next())
                    .unwrap_or_else(|| panic!("POST {path} has no security"));
                assert!(schemes.get(named).is_some(), "{named} is not a scheme");
            } else {
                assert!(
                    op.get("security").is_none(),
                    "{method} {path} needs no auth"
                );
            }
        }
    }
}

#[test]
fn every_ref_resolves() {
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r);
                }
                m.values().for_each(|v| refs(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let doc: Value = serde_json::from_str(&document()).unwrap();
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.len() > 20, "{found:?}");
    for r in found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{r} is not local"));
        assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
    }
}
