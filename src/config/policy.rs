//! A watch's policies: `on_failure` (+ `then`), `on_deploy_failure` (+
//! `on_deploy_failure_then`), `[watch.command]` and `[watch.hooks]`.

use std::time::Duration;

use super::fields::Table;
use super::{CommandHook, Fallback, HookProgram, HookWhen, Hooks, OnDeployFailure, OnFailure};

/// A retry's fallback under `key` (`"rollback"` or `"notify"`), `default` when absent.
fn fallback(t: &Table, key: &str, default: Fallback) -> Option<Fallback> {
    match t.string(key).as_deref() {
        None => Some(default),
        Some("rollback") => Some(Fallback::Rollback),
        Some("notify") => Some(Fallback::Notify),
        Some(other) => {
            t.error(
                key,
                format!("unknown value {other:?}; expected \"rollback\" or \"notify\""),
            );
            None
        }
    }
}

pub(super) fn policy(t: &Table) -> Option<OnFailure> {
    let then = fallback(t, "then", Fallback::Rollback);
    let policy = match t.string("on_failure").as_deref() {
        None | Some("rollback") => Some(OnFailure::Rollback),
        Some("notify") => Some(OnFailure::Notify),
        Some("retry") => then.map(|then| OnFailure::Retry { then }),
        Some("command") => Some(OnFailure::Command),
        Some(other) => {
            t.error(
                "on_failure",
                format!("unknown value {other:?}; expected \"rollback\", \"notify\", \"retry\" or \"command\""),
            );
            None
        }
    };
    if t.has("then") && !matches!(policy, Some(OnFailure::Retry { .. })) {
        t.error("then", "only applies to on_failure = \"retry\"");
    }
    policy
}

/// `on_deploy_failure` and `on_deploy_failure_then`.
pub(super) fn deploy_failure_policy(t: &Table) -> Option<OnDeployFailure> {
    // Notify by default: a release that failed to deploy twice wants a person more than a
    // third deploy.
    let then = fallback(t, "on_deploy_failure_then", Fallback::Notify);
    let policy = match t.string("on_deploy_failure").as_deref() {
        None | Some("observe") => Some(OnDeployFailure::Observe),
        Some("retry") => then.map(|then| OnDeployFailure::Retry { then }),
        Some("rollback") => Some(OnDeployFailure::Rollback),
        Some("notify") => Some(OnDeployFailure::Notify),
        Some(other) => {
            t.error(
                "on_deploy_failure",
                format!("unknown value {other:?}; expected \"observe\", \"retry\", \"rollback\" or \"notify\""),
            );
            None
        }
    };
    if t.has("on_deploy_failure_then") && !matches!(policy, Some(OnDeployFailure::Retry { .. })) {
        t.error(
            "on_deploy_failure_then",
            "only applies to on_deploy_failure = \"retry\"",
        );
    }
    policy
}

/// `[watch.hooks]`: `deploy_failed = { argv, timeout }`.
pub(super) fn hooks(t: &Table) -> Hooks {
    let Some(h) = t.table("hooks") else {
        return Hooks::default();
    };
    let deploy_failed = h.table("deploy_failed").and_then(|c| {
        if !c.has("argv") {
            c.error(
                "argv",
                "is required: the program and its arguments, no shell",
            );
        }
        let argv = c.strings("argv");
        let timeout = c.duration("timeout").unwrap_or(Duration::from_secs(60));
        c.finish();
        Some(HookProgram {
            argv: argv?,
            timeout,
        })
    });
    h.finish();
    Hooks { deploy_failed }
}

pub(super) fn command_hook(t: &Table) -> Option<CommandHook> {
    let c = t.table("command")?;
    if !c.has("argv") {
        c.error(
            "argv",
            "is required: the program and its arguments, no shell",
        );
    }
    let argv = c.strings("argv");
    let timeout = c.duration("timeout").unwrap_or(Duration::from_secs(60));
    let when = match c.string("when").as_deref() {
        None | Some("before") => Some(HookWhen::Before),
        Some("after") => Some(HookWhen::After),
        Some(other) => {
            c.error(
                "when",
                format!("unknown value {other:?}; expected \"before\" or \"after\""),
            );
            None
        }
    };
    c.finish();
    Some(CommandHook {
        argv: argv?,
        timeout,
        when: when?,
    })
}
