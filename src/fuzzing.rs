//! The invariants the fuzz targets check, one function per target over raw bytes.
//!
//! They live in the crate, not in `fuzz/`, so that the libFuzzer targets (`fuzz/fuzz_targets/`,
//! nightly-only tooling, run by hand or by `fuzz/run.sh`) are three-line wrappers, and so that
//! a plain `cargo test` on stable runs every committed corpus and regression input
//! (`fuzz/corpus/TARGET/`, `fuzz/regressions/TARGET/`) through the very same checks: a crash
//! once found stays a test without nightly. Each function panics only when an invariant is
//! broken; input the parser rejects is fine as long as it is rejected with an error.
//!
//! Adding a target: a `pub fn NAME(data: &[u8])` here, an entry in [`TARGETS`], a wrapper in
//! `fuzz/fuzz_targets/NAME.rs` with its `[[bin]]` in `fuzz/Cargo.toml`, and seeds in
//! `fuzz/corpus/NAME/` (`fuzz/README.md`).

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::checks::scrape::parse::{self as exposition_text, Exposition};
use crate::config::{self, Config, LoadError, MAX_DURATION};

/// A target: the whole input in, a panic out only when an invariant is broken.
pub type Target = fn(&[u8]);

/// Every target by the name of its `fuzz/fuzz_targets/NAME.rs` and corpus directory.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("exposition", exposition),
    ("duration", duration),
    ("prometheus", prometheus),
    ("octopus", octopus),
    ("octopus_webhook", octopus_webhook),
    ("argocd", argocd),
    ("retry_after", retry_after),
];

/// Panics with the broken invariant, the one way a target reports a bug to libFuzzer.
fn enforce(result: Result<(), String>) {
    if let Err(broken) = result {
        panic!("invariant broken: {broken}");
    }
}

/// Text input: the parsers take `&str`, so bytes that are not UTF-8 never reach them.
fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// `config`: the TOML loader and validator ([`config::load_str`]).
pub fn config(data: &[u8]) {
    if let Some(toml) = text(data) {
        enforce(check_config(toml));
    }
}

/// The directory secrets named in the config are read from: the example's secret files
/// (`token`, `octopus-api-key`, `hook-secret`) exist, so valid configs reach the validator's
/// end, and nothing else does. Created once per process in the temp directory, with fixed
/// contents, so runs do not depend on each other.
fn secrets_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        // One per process: runs and test binaries in parallel (several checkouts, libFuzzer's
        // jobs) never rewrite each other's files between the two loads of an input.
        let dir =
            std::env::temp_dir().join(format!("backstop-fuzz-secrets-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for name in ["token", "octopus-api-key", "hook-secret"] {
            let _ = std::fs::write(dir.join(name), format!("{name}-value\n"));
        }
        dir
    })
}

/// Loading never panics; the same text loads to the same result twice (validation is a pure
/// function of the text); a rejected config names at least one problem; an accepted one
/// keeps the promises the rest of the daemon relies on without re-checking.
pub fn check_config(toml: &str) -> Result<(), String> {
    if names_a_path(toml) {
        return Ok(());
    }
    let dir = secrets_dir();
    let first = config::load_str(toml, dir);
    let second = config::load_str(toml, dir);
    match (&first, &second) {
        (Ok(a), Ok(b)) if a == b => accepted(a),
        (Err(LoadError::Invalid(errors)), _) if errors.is_empty() => {
            Err("rejected without naming a problem".into())
        }
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(()),
        _ => Err(format!("two loads differ: {first:?} then {second:?}")),
    }
}

/// Whether a secret reference (`*_file`, `*_credential`, a `secret_headers` value) could
/// leave the secrets directory: an absolute or `..` path may name a device such as
/// `/dev/zero`, which would hang the fuzzer rather than find a bug. Such inputs are skipped, judged on the parsed
/// tree so that TOML escapes (`"\u002fdev"`) cannot slip a path through.
fn names_a_path(toml: &str) -> bool {
    let Ok(tree) = ::config::Config::builder()
        .add_source(::config::File::from_str(toml, ::config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<serde_json::Value>())
    else {
        return false;
    };
    fn walk(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::Object(map) => map.iter().any(|(k, v)| {
                let secret_key = k.ends_with("_file") || k.ends_with("_credential");
                let path = |v: &serde_json::Value| {
                    v.as_str()
                        .is_some_and(|s| s.contains(['/', '\\']) || s.contains(".."))
                };
                // `secret_headers = { Header = "file" }`: every value is a secret file.
                let headers =
                    k == "secret_headers" && v.as_object().is_some_and(|h| h.values().any(path));
                (secret_key && path(v)) || headers || walk(v)
            }),
            serde_json::Value::Array(items) => items.iter().any(walk),
            _ => false,
        }
    }
    walk(&tree)
}

fn accepted(config: &Config) -> Result<(), String> {
    let _ = format!("{config:?}");
    let mut names = std::collections::BTreeSet::new();
    for w in &config.watches {
        let name = &w.name;
        if name.is_empty() || !names.insert(name.as_str()) {
            return Err(format!("watch name {name:?} is empty or given twice"));
        }
        if !config.deployers.contains_key(&w.deployer) {
            return Err(format!(
                "watch {name} names an unknown deployer {:?}",
                w.deployer
            ));
        }
        if let Some(sink) = w.notify.iter().find(|s| !config.sinks.contains_key(*s)) {
            return Err(format!("watch {name} notifies an unknown sink {sink:?}"));
        }
        let mut checks = std::collections::BTreeSet::new();
        if let Some(c) = w.checks.iter().find(|c| !checks.insert(c.name.as_str())) {
            return Err(format!("watch {name} has check {:?} twice", c.name));
        }
        for (what, d) in [("interval", w.interval), ("window", w.window)] {
            if d.is_zero() || d > MAX_DURATION {
                return Err(format!("watch {name} has {what} {d:?}"));
            }
        }
        if w.warmup > MAX_DURATION || w.fast_interval.is_zero() {
            return Err(format!(
                "watch {name}: warmup {:?}, fast_interval {:?}",
                w.warmup, w.fast_interval
            ));
        }
    }
    Ok(())
}

/// `exposition`: the Prometheus text exposition parser
/// ([`crate::checks::scrape::parse::parse`]).
pub fn exposition(data: &[u8]) {
    if let Some(text) = text(data) {
        enforce(check_exposition(text));
    }
}

/// Parsing never panics, and whatever parses survives parse → render → parse unchanged
/// (values bit for bit, NaN as NaN).
pub fn check_exposition(text: &str) -> Result<(), String> {
    let Ok(parsed) = exposition_text::parse(text) else {
        return Ok(());
    };
    let rendered = exposition_text::render(&parsed);
    match exposition_text::parse(&rendered) {
        Ok(again) if same_exposition(&parsed, &again) => Ok(()),
        Ok(again) => Err(format!(
            "{parsed:?} rendered as {rendered:?} reads back as {again:?}"
        )),
        Err(e) => Err(format!(
            "{parsed:?} rendered as {rendered:?} does not parse: {e}"
        )),
    }
}

/// Equality with NaN equal to itself and `0.0` distinct from `-0.0`: the round trip must keep
/// every bit a check could judge.
fn same_exposition(a: &Exposition, b: &Exposition) -> bool {
    let same_value = |x: f64, y: f64| x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan());
    a.declared == b.declared
        && a.series.len() == b.series.len()
        && a.series
            .iter()
            .zip(&b.series)
            .all(|(s, t)| s.name == t.name && s.labels == t.labels && same_value(s.value, t.value))
}

/// `duration`: the config's duration settings ([`config::parse_duration`]) and the
/// backtest's `--from`/`--to` ([`crate::backtest::time::parse`]), on the same text.
pub fn duration(data: &[u8]) {
    if let Some(text) = text(data) {
        enforce(check_duration(text));
    }
}

/// The fixed "now" of the backtest checks: the invariants do not depend on the clock.
fn fuzz_now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_746_878_400, 0).unwrap_or_default()
}

/// A setting's duration stays within its bounds and reads back the same from humantime's
/// rendering (which `check-config` and the docs print); a backtest time is either an RFC 3339
/// time that reads back from its own rendering, or exactly that duration before now.
pub fn check_duration(text: &str) -> Result<(), String> {
    match config::parse_duration(text, true) {
        Ok(d) => {
            if d > MAX_DURATION {
                return Err(format!("{text:?} accepted as {d:?}, beyond the maximum"));
            }
            let shown = humantime::format_duration(d).to_string();
            if config::parse_duration(&shown, true) != Ok(d) {
                return Err(format!(
                    "{text:?} is {d:?}, shown as {shown:?}, which reads differently"
                ));
            }
            if d.is_zero() != config::parse_duration(text, false).is_err() {
                return Err(format!("{text:?}: zero {d:?} and the zero check disagree"));
            }
        }
        Err(e) if e.is_empty() => return Err(format!("{text:?} rejected without a reason")),
        Err(_) => {}
    }
    check_backtest_time(text)
}

fn check_backtest_time(text: &str) -> Result<(), String> {
    let now = fuzz_now();
    let Ok(t) = crate::backtest::time::parse(text, now) else {
        return Ok(());
    };
    if DateTime::parse_from_rfc3339(text.trim()).is_ok() {
        let again = crate::backtest::time::parse(&t.to_rfc3339(), now);
        return match again {
            Ok(a) if a == t => Ok(()),
            _ => Err(format!("{text:?} is {t}, which reads back as {again:?}")),
        };
    }
    let ago =
        humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is {t} but {e}"))?;
    let expected = chrono::Duration::from_std(ago)
        .ok()
        .and_then(|d| now.checked_sub_signed(d));
    if expected != Some(t) || t > now {
        return Err(format!(
            "{text:?} ({ago:?} ago) is {t}, expected {expected:?}"
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "fuzzing_tests.rs"]
mod tests;

/// The HTTP statuses the `prometheus` target answers with: the first input byte picks one, the
/// rest is the body (Prometheus answers 400, 422 and 503 with a JSON error envelope).
const STATUSES: [u16; 6] = [200, 204, 400, 422, 500, 503];

/// Splits an input into an HTTP status (its first byte, see [`STATUSES`]) and a body.
fn status_and_body(data: &[u8]) -> (u16, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (STATUSES[usize::from(*first) % STATUSES.len()], rest),
        None => (200, data),
    }
}

/// `prometheus`: the query API's answers ([`crate::checks::prometheus::decode_instant`],
/// [`crate::checks::prometheus::decode_range`]).
pub fn prometheus(data: &[u8]) {
    let (status, body) = status_and_body(data);
    enforce(check_prometheus(status, body));
}

/// An instant answer decodes to one finite value or an error, never both an instant and a
/// range answer; a range answer's points are in the timestamps' representable range.
pub fn check_prometheus(status: u16, body: &[u8]) -> Result<(), String> {
    use crate::checks::prometheus::{decode_instant, decode_range};
    let instant = decode_instant(status, body);
    if let Ok(v) = instant {
        if !v.is_finite() {
            return Err(format!("an instant answer gave the non-finite value {v}"));
        }
    }
    let range = decode_range(status, body);
    if instant.is_ok() && range.is_ok() {
        return Err("one body decoded both as an instant vector and as a matrix".into());
    }
    if !(200..300).contains(&status) && (instant.is_ok() || range.is_ok()) {
        return Err(format!("HTTP {status} decoded as a successful answer"));
    }
    Ok(())
}

/// `octopus`: the Octopus REST API's resources ([`crate::deployer::octopus::decode`]), every
/// decoder on the same bytes.
pub fn octopus(data: &[u8]) {
    enforce(check_octopus(data));
}

/// Deployment lists come out newest first; any JSON document is a task's account and nothing
/// else is; an error's text stays one bounded line.
pub fn check_octopus(body: &[u8]) -> Result<(), String> {
    use crate::deployer::octopus::decode;
    if let Ok(list) = decode::deployments(body) {
        if list.windows(2).any(|w| w[0].created < w[1].created) {
            return Err("deployments not newest first".into());
        }
    }
    let _ = decode::deployment(body);
    let _ = decode::release(body);
    let _ = decode::task(body);
    let is_json = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    if decode::task_details(body).is_ok() != is_json {
        return Err(format!(
            "task details decoded: {}, body is JSON: {is_json}",
            !is_json
        ));
    }
    bounded_error_text(&decode::error_text(body))
}

/// An error text made from a server's answer: it reaches logs and evidence, so it is bounded
/// (a few bytes over the cap for the truncation mark).
fn bounded_error_text(text: &str) -> Result<(), String> {
    const MOST: usize = crate::deployer::octopus::decode::MAX_ERROR_TEXT + 8;
    if text.len() > MOST {
        return Err(format!("an error text of {} bytes", text.len()));
    }
    Ok(())
}

/// `octopus_webhook`: the subscription payload ([`crate::deployer::octopus::subscription`]).
pub fn octopus_webhook(data: &[u8]) {
    enforce(check_octopus_webhook(data));
}

/// A decoded event is the one the JSON holds at `Payload.Event` (its id and category, as any
/// JSON reader sees them), whenever `serde_json::Value` can read the body at all.
pub fn check_octopus_webhook(body: &[u8]) -> Result<(), String> {
    let Ok(event) = crate::deployer::octopus::subscription::decode(body) else {
        return Ok(());
    };
    // The typed decoder skips fields it does not read without the limits `Value` enforces
    // (nesting depth, number range, UTF-8 in skipped strings): such a body is an event that
    // `Value` cannot hold, and there is nothing to compare it with.
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    let seen = &doc["Payload"]["Event"];
    if seen["Id"] != event.id.as_str() || seen["Category"] != event.category.as_str() {
        return Err(format!("decoded {event:?} from {seen}"));
    }
    Ok(())
}

/// `argocd`: an Argo CD application document ([`crate::deployer::argocd::decode`]) and what
/// backstop reads from it (the failure of a sync, an error's text).
pub fn argocd(data: &[u8]) {
    enforce(check_argocd(data));
}

/// Decoding and reading a failure never panic; an error's text stays bounded.
pub fn check_argocd(body: &[u8]) -> Result<(), String> {
    use crate::deployer::argocd;
    if let Ok(app) = argocd::decode(body) {
        for release in [
            "",
            "main",
            "v1.2.3",
            "0123456789abcdef0123456789abcdef01234567",
        ] {
            let _ = argocd::failure::failure_of(&app, release);
        }
    }
    bounded_error_text(&argocd::error_text(body))
}

/// `retry_after`: the `Retry-After` header ([`crate::retry_after::parse`]).
pub fn retry_after(data: &[u8]) {
    if let Some(text) = text(data) {
        enforce(check_retry_after(text));
    }
}

/// Delta-seconds read exactly; a date's wait shrinks by exactly the time that passes (and is
/// never negative).
pub fn check_retry_after(value: &str) -> Result<(), String> {
    use std::time::Duration;
    let now = fuzz_now();
    let wait = crate::retry_after::parse(value, now);
    let trimmed = value.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit()) {
        let expected = trimmed.parse::<u64>().ok().map(Duration::from_secs);
        if wait != expected {
            return Err(format!("{value:?} read as {wait:?}, not {expected:?}"));
        }
        return Ok(());
    }
    if let Some(d) = wait {
        let later = crate::retry_after::parse(value, now + chrono::Duration::seconds(1));
        if later != Some(d.saturating_sub(Duration::from_secs(1))) {
            return Err(format!(
                "{value:?}: {d:?} now, but {later:?} a second later"
            ));
        }
    }
    Ok(())
}
