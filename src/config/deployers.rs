//! Validation of `[deployers.NAME]` tables, one function per kind.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::fields::Table;
use super::validate::{http_url, load_secret};
use super::{
    ArgoCdConfig, CallSettings, CommandDeployerConfig, DeployerConfig, OctopusConfig,
    WebhookDeployerConfig,
};
use crate::secret::{Secret, SecretSource};

/// Placeholders a webhook or command deployer may use in its templates.
pub const PLACEHOLDERS: [&str; 10] = [
    "watch",
    "release",
    "version",
    "target_release",
    "target_version",
    "condemned_release",
    "action",
    "idempotency_key",
    "environment",
    "deployment_id",
];

/// A deployer as validated: its kind (known even when the rest is invalid, so watches can be
/// checked against it) and its config when valid.
pub(super) type Parsed = BTreeMap<String, (Option<&'static str>, Option<DeployerConfig>)>;

pub(super) fn deployers(root: &Table, dir: &Path) -> Parsed {
    let mut out = BTreeMap::new();
    for (name, t) in root.named_tables("deployers") {
        let kind = t.required_string("kind");
        let known = match kind.as_deref() {
            Some("octopus") => Some("octopus"),
            Some("webhook") => Some("webhook"),
            Some("command") => Some("command"),
            Some("argocd") => Some("argocd"),
            _ => None,
        };
        let deployer = match kind.as_deref() {
            Some("octopus") => octopus(&t, dir).map(DeployerConfig::Octopus),
            Some("webhook") => webhook(&t, dir).map(DeployerConfig::Webhook),
            Some("command") => command(&t).map(DeployerConfig::Command),
            Some("argocd") => argocd(&t, dir).map(DeployerConfig::ArgoCd),
            Some(other) => {
                t.error(
                    "kind",
                    format!("unknown deployer kind {other:?}; expected \"octopus\", \"webhook\", \"command\" or \"argocd\""),
                );
                None
            }
            None => None,
        };
        t.finish();
        out.insert(name, (known, deployer));
    }
    out
}

fn calls(t: &Table, default_timeout: Duration) -> CallSettings {
    let timeout = t.duration("timeout").unwrap_or(default_timeout);
    CallSettings {
        timeout,
        settle: t
            .duration("settle")
            .unwrap_or(2 * timeout + Duration::from_secs(30)),
        task_poll: t.duration("task_poll").unwrap_or(Duration::from_secs(5)),
        task_timeout: t
            .duration("task_timeout")
            .unwrap_or(Duration::from_secs(30 * 60)),
        max_retries: t.count("max_retries").unwrap_or(6),
    }
}

fn required_secret(t: &Table, base: &str, dir: &Path, what: &str) -> Option<Secret> {
    let secret = load_secret(t, base, dir);
    if !t.has_secret(base) && !t.has(base) {
        t.error(
            &format!("{base}_file"),
            format!("{what} is required: set {base}_file, {base}_env or {base}_credential"),
        );
    }
    secret
}

fn octopus(t: &Table, dir: &Path) -> Option<OctopusConfig> {
    let url = http_url(t, "url");
    let space = t.required_string("space");
    let api_key = required_secret(t, "api_key", dir, "an API key");
    let webhook_header = t.string("webhook_header");
    let webhook_secret = load_secret(t, "webhook_secret", dir);
    if webhook_header.is_some() != t.has_secret("webhook_secret") {
        t.error(
            "webhook_header",
            "webhook_header and webhook_secret_file (or _env/_credential) go together",
        );
    }
    let no_rollback_marker = t
        .string("no_rollback_marker")
        .unwrap_or_else(|| "[backstop:no-rollback]".into());
    let calls = calls(t, Duration::from_secs(10));
    Some(OctopusConfig {
        url: url?,
        space: space?,
        api_key: api_key?,
        webhook_header,
        webhook_secret,
        no_rollback_marker,
        calls,
    })
}

/// Reports `{{name}}` placeholders that do not exist.
fn check_template(t: &Table, key: &str, template: &str) {
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            t.error(key, "unclosed {{ in template");
            return;
        };
        let name = rest[start + 2..start + end].trim();
        if !PLACEHOLDERS.contains(&name) {
            t.error(
                key,
                format!(
                    "unknown placeholder {{{{{name}}}}}; known: {}",
                    PLACEHOLDERS.join(", ")
                ),
            );
        }
        rest = &rest[start + end + 2..];
    }
}

/// `[NAME.secret_headers]`: header = secret file path (or `credential:NAME`).
pub(super) fn secret_headers(t: &Table, dir: &Path) -> BTreeMap<String, Secret> {
    let mut out = BTreeMap::new();
    for (header, path) in t.string_map("secret_headers") {
        let source = match path.strip_prefix("credential:") {
            Some(name) => SecretSource::Credential(name.to_string()),
            None => SecretSource::File(path.clone().into()),
        };
        match source.load(dir) {
            Ok(s) => {
                out.insert(header, s);
            }
            Err(e) => {
                t.secret_error(&format!("secret_headers.{header}"), e.to_string());
                if t.lenient_secrets() {
                    out.insert(header, Secret::new(""));
                }
            }
        }
    }
    out
}

fn webhook(t: &Table, dir: &Path) -> Option<WebhookDeployerConfig> {
    let method = t
        .string("method")
        .unwrap_or_else(|| "POST".into())
        .to_uppercase();
    if !["POST", "PUT", "PATCH", "GET"].contains(&method.as_str()) {
        t.error(
            "method",
            format!("{method:?} is not one of POST, PUT, PATCH, GET"),
        );
    }
    let url = http_url(t, "url");
    if let Some(u) = &url {
        check_template(t, "url", u);
    }
    let headers = t.string_map("headers");
    let secret_headers = secret_headers(t, dir);
    let body = t.string("body");
    if let Some(b) = &body {
        check_template(t, "body", b);
        // The template must be JSON once filled in: check it with every placeholder as "x".
        let mut filled = b.clone();
        for p in PLACEHOLDERS {
            filled = filled.replace(&format!("{{{{{p}}}}}"), "x");
        }
        if serde_json::from_str::<serde_json::Value>(&filled).is_err() {
            t.error(
                "body",
                "is not a JSON template: placeholders go inside strings, e.g. {\"release\": \"{{target_release}}\"}",
            );
        }
    }
    let success_status = t
        .statuses("success_status")
        .unwrap_or_else(|| vec![200, 201, 202, 204]);
    let status_url = t.string("status_url");
    if let Some(u) = &status_url {
        check_template(t, "status_url", u);
    }
    let status_field = t.string("status_field").unwrap_or_else(|| "status".into());
    let success_values = t
        .strings("success_values")
        .unwrap_or_else(|| vec!["succeeded".into(), "success".into(), "healthy".into()]);
    let failure_values = t
        .strings("failure_values")
        .unwrap_or_else(|| vec!["failed".into(), "error".into(), "degraded".into()]);
    let calls = calls(t, Duration::from_secs(10));
    Some(WebhookDeployerConfig {
        method,
        url: url?,
        headers,
        secret_headers,
        body,
        success_status,
        status_url,
        status_field,
        success_values,
        failure_values,
        calls,
    })
}

fn command(t: &Table) -> Option<CommandDeployerConfig> {
    let argv = t.strings("argv");
    if !t.has("argv") {
        t.error("argv", "is required: the program and its arguments, e.g. [\"/usr/local/bin/deploy\", \"{{target_release}}\"]");
    }
    if let Some(a) = &argv {
        for arg in a {
            check_template(t, "argv", arg);
        }
    }
    let calls = calls(t, Duration::from_secs(300));
    Some(CommandDeployerConfig { argv: argv?, calls })
}

fn argocd(t: &Table, dir: &Path) -> Option<ArgoCdConfig> {
    let url = http_url(t, "url");
    let token = required_secret(t, "token", dir, "a bearer token");
    let calls = calls(t, Duration::from_secs(10));
    Some(ArgoCdConfig {
        url: url?,
        token: token?,
        calls,
    })
}
