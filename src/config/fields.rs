//! A small schema walker over the generic config tree: typed accessors that record an error
//! with the key path instead of stopping, and a check for keys nobody asked for.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::time::Duration;

/// The longest duration any setting accepts: time arithmetic stays far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(10 * 366 * 24 * 3600);

use serde_json::{Map, Value};

use super::load::ConfigError;
use crate::secret::SecretSource;

/// A setting's duration text (`30s`, `5m`, `1h 30m`, `250ms`) as a duration: longer than zero
/// unless `zero_ok`, and at most [`MAX_DURATION`]; the error says why not. Pure and total,
/// whatever the text, and free of the tree walker, so that the fuzzer
/// (`crate::fuzzing::duration`) checks exactly what the config accepts.
pub fn parse_duration(text: &str, zero_ok: bool) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d > MAX_DURATION => Err(format!(
            "{text:?} is longer than the 10 years any setting allows"
        )),
        Ok(d) if zero_ok || !d.is_zero() => Ok(d),
        Ok(_) => Err("must be longer than zero".into()),
        Err(e) => Err(format!(
            "malformed duration {text:?} ({e}); write e.g. \"30s\", \"5m\", \"1h\""
        )),
    }
}

/// Collects every error found during one validation pass.
#[derive(Default)]
pub(super) struct Errors {
    errors: RefCell<Vec<ConfigError>>,
    warnings: RefCell<Vec<ConfigError>>,
    /// When set, secrets that cannot be read are warnings: `check-config` on a machine that
    /// does not hold the secrets (a CI runner, a laptop) still validates everything else.
    pub lenient_secrets: bool,
}

impl Errors {
    pub fn new(lenient_secrets: bool) -> Self {
        Errors {
            lenient_secrets,
            ..Errors::default()
        }
    }

    pub fn warn(&self, key: impl Into<String>, message: impl Into<String>) {
        self.warnings.borrow_mut().push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn take_warnings(&self) -> Vec<ConfigError> {
        std::mem::take(&mut *self.warnings.borrow_mut())
    }

    pub fn push(&self, key: impl Into<String>, message: impl Into<String>) {
        self.errors.borrow_mut().push(ConfigError {
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.errors.borrow().is_empty()
    }

    pub fn into_vec(self) -> Vec<ConfigError> {
        self.errors.into_inner()
    }
}

/// One table of the config with its path; remembers which keys were read so
/// [`Table::finish`] can report the rest as unknown.
pub(super) struct Table<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
    errors: &'a Errors,
    read: RefCell<BTreeSet<String>>,
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

impl<'a> Table<'a> {
    /// The root table; a non-table root is reported.
    pub fn root(value: &'a Value, errors: &'a Errors) -> Self {
        Self::at(String::new(), value, errors)
    }

    fn at(path: String, value: &'a Value, errors: &'a Errors) -> Self {
        let map = match value {
            Value::Object(m) => Some(m),
            other => {
                errors.push(
                    if path.is_empty() { "<root>" } else { &path },
                    format!("expected a table, found {}", type_name(other)),
                );
                None
            }
        };
        Table {
            path,
            map,
            errors,
            read: RefCell::new(BTreeSet::new()),
        }
    }

    /// Full path of a key in this table, for error messages.
    pub fn key(&self, key: &str) -> String {
        join(&self.path, key)
    }

    pub fn error(&self, key: &str, message: impl Into<String>) {
        self.errors.push(self.key(key), message);
    }

    /// A warning (printed by `check-config`; the config is still valid).
    pub fn warn(&self, key: &str, message: impl Into<String>) {
        self.errors.warn(self.key(key), message);
    }

    pub fn lenient_secrets(&self) -> bool {
        self.errors.lenient_secrets
    }

    /// Records a secret that could not be read: an error, or a warning in lenient mode.
    pub fn secret_error(&self, key: &str, message: impl Into<String>) {
        if self.errors.lenient_secrets {
            let message = format!(
                "{} (the daemon will refuse to start until it can read this secret)",
                message.into()
            );
            self.errors.warn(self.key(key), message);
        } else {
            self.error(key, message);
        }
    }

    fn raw(&self, key: &str) -> Option<&'a Value> {
        self.read.borrow_mut().insert(key.to_string());
        self.map.and_then(|m| m.get(key))
    }

    /// Every key of the table, in order.
    pub fn keys(&self) -> Vec<String> {
        self.map
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// A sub-table when the value is one (read, so not unknown); `None` for other values.
    pub fn table_if_table(&self, key: &str) -> Option<Table<'a>> {
        match self.map.and_then(|m| m.get(key)) {
            Some(v @ Value::Object(_)) => {
                self.read.borrow_mut().insert(key.to_string());
                Some(Table::at(self.key(key), v, self.errors))
            }
            _ => None,
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.is_some_and(|m| m.contains_key(key))
    }

    /// A string; numbers and booleans are accepted as text (environment overrides are text).
    pub fn string(&self, key: &str) -> Option<String> {
        match self.raw(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            other => {
                self.error(
                    key,
                    format!("expected a string, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// A required, non-empty string.
    pub fn required_string(&self, key: &str) -> Option<String> {
        if !self.has(key) {
            self.read.borrow_mut().insert(key.to_string());
            self.error(key, "is required");
            return None;
        }
        let s = self.string(key)?;
        if s.trim().is_empty() {
            self.error(key, "must not be empty");
            return None;
        }
        Some(s)
    }

    /// A finite number; numeric strings are accepted.
    pub fn number(&self, key: &str) -> Option<f64> {
        let v = self.raw(key)?;
        let n = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() => Some(n),
            _ => {
                self.error(key, format!("expected a finite number, found {v}"));
                None
            }
        }
    }

    /// A positive integer (at least 1).
    pub fn count(&self, key: &str) -> Option<u32> {
        let v = self.raw(key)?;
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n.and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n >= 1 => Some(n),
            _ => {
                self.error(
                    key,
                    format!("expected a whole number of at least 1, found {v}"),
                );
                None
            }
        }
    }

    /// A duration like `30s`, `5m`, `1h 30m`, `250ms`; must be longer than zero and at most
    /// [`MAX_DURATION`].
    pub fn duration(&self, key: &str) -> Option<Duration> {
        self.duration_inner(key, false)
    }

    /// A duration that may be zero (`"0s"`), such as a warmup.
    pub fn duration_or_zero(&self, key: &str) -> Option<Duration> {
        self.duration_inner(key, true)
    }

    fn duration_inner(&self, key: &str, zero_ok: bool) -> Option<Duration> {
        let v = self.raw(key)?;
        let Value::String(s) = v else {
            self.error(
                key,
                format!("expected a duration string such as \"30s\" or \"5m\", found {v}"),
            );
            return None;
        };
        parse_duration(s, zero_ok)
            .map_err(|message| self.error(key, message))
            .ok()
    }

    /// A list of HTTP status codes.
    pub fn statuses(&self, key: &str) -> Option<Vec<u16>> {
        let v = self.raw(key)?;
        let items = match v {
            Value::Array(items) => items.clone(),
            single => vec![single.clone()],
        };
        let mut out = Vec::new();
        for item in &items {
            let code = match item {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match code {
                Some(c @ 100..=599) => out.push(c as u16),
                _ => {
                    self.error(key, format!("{item} is not an HTTP status code (100-599)"));
                    return None;
                }
            }
        }
        if out.is_empty() {
            self.error(key, "must list at least one status code");
            return None;
        }
        Some(out)
    }

    /// A boolean; "true"/"false" text is accepted (environment overrides are text).
    pub fn boolean(&self, key: &str) -> Option<bool> {
        let v = self.raw(key)?;
        match v {
            Value::Bool(b) => Some(*b),
            Value::String(s) if s == "true" => Some(true),
            Value::String(s) if s == "false" => Some(false),
            other => {
                self.error(key, format!("expected true or false, found {other}"));
                None
            }
        }
    }

    /// A non-empty list of non-empty strings (an argv, a list of names).
    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        let v = self.raw(key)?;
        let Value::Array(items) = v else {
            self.error(
                key,
                format!("expected a list of strings, found {}", type_name(v)),
            );
            return None;
        };
        let mut out = Vec::new();
        for item in items {
            match item {
                Value::String(s) if !s.is_empty() => out.push(s.clone()),
                other => {
                    self.error(key, format!("expected non-empty strings, found {other}"));
                    return None;
                }
            }
        }
        Some(out)
    }

    /// A table of string values (`[x.headers]`).
    pub fn string_map(&self, key: &str) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let Some(v) = self.raw(key) else {
            return out;
        };
        let Value::Object(map) = v else {
            self.error(key, format!("expected a table, found {}", type_name(v)));
            return out;
        };
        for (k, v) in map {
            match v {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                Value::Number(n) => {
                    out.insert(k.clone(), n.to_string());
                }
                other => self.error(
                    &format!("{key}.{k}"),
                    format!("expected a string, found {}", type_name(other)),
                ),
            }
        }
        out
    }

    /// A sub-table, if present.
    pub fn table(&self, key: &str) -> Option<Table<'a>> {
        let v = self.raw(key)?;
        Some(Table::at(self.key(key), v, self.errors))
    }

    /// An array of tables (`[[key]]`); a single table is accepted as a one-element array.
    pub fn tables(&self, key: &str) -> Vec<Table<'a>> {
        match self.raw(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Table::at(format!("{}[{i}]", self.key(key)), v, self.errors))
                .collect(),
            Some(v @ Value::Object(_)) => {
                vec![Table::at(format!("{}[0]", self.key(key)), v, self.errors)]
            }
            Some(other) => {
                self.error(
                    key,
                    format!("expected [[{key}]] tables, found {}", type_name(other)),
                );
                Vec::new()
            }
        }
    }

    /// The entries of a table whose keys are user-chosen names (`[deployers.NAME]`).
    pub fn named_tables(&self, key: &str) -> Vec<(String, Table<'a>)> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let Value::Object(map) = v else {
            self.error(key, format!("expected a table, found {}", type_name(v)));
            return Vec::new();
        };
        map.iter()
            .map(|(name, v)| {
                let path = format!("{}.{name}", self.key(key));
                (name.clone(), Table::at(path, v, self.errors))
            })
            .collect()
    }

    /// A secret given as `<base>_file`, `<base>_env` or `<base>_credential`; at most one.
    pub fn secret(&self, base: &str) -> Option<SecretSource> {
        let file = self.string(&format!("{base}_file"));
        let env = self.string(&format!("{base}_env"));
        let cred = self.string(&format!("{base}_credential"));
        let given = [file.is_some(), env.is_some(), cred.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            self.error(
                &format!("{base}_file"),
                format!("give only one of {base}_file, {base}_env, {base}_credential"),
            );
            return None;
        }
        if self.has(base) {
            self.read.borrow_mut().insert(base.to_string());
            self.error(
                base,
                format!("secrets are never written inline; use {base}_file, {base}_env or {base}_credential"),
            );
        }
        file.map(|f| SecretSource::File(f.into()))
            .or(env.map(SecretSource::Env))
            .or(cred.map(SecretSource::Credential))
    }

    /// Whether any source of the secret `<base>` is given.
    pub fn has_secret(&self, base: &str) -> bool {
        ["_file", "_env", "_credential"]
            .iter()
            .any(|suffix| self.has(&format!("{base}{suffix}")))
    }

    /// Reports every key of this table that was never read as unknown.
    pub fn finish(self) {
        let Some(map) = self.map else { return };
        let read = self.read.borrow();
        for key in map.keys() {
            if !read.contains(key) {
                self.errors.push(join(&self.path, key), "unknown key");
            }
        }
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_duration(" 1h 30m ", true),
            Ok(Duration::from_secs(5400))
        );
        assert_eq!(parse_duration("0s", true), Ok(Duration::ZERO));
        for (bad, says) in [
            ("", "malformed duration"),
            ("5", "malformed duration"),
            ("-5s", "malformed duration"),
            ("5 parsecs", "malformed duration"),
            ("11y", "longer than the 10 years"),
            ("99999999999999999999999999h", "malformed duration"),
            (
                "18446744073709551615s 18446744073709551615s",
                "malformed duration",
            ),
            ("\u{0}", "malformed duration"),
        ] {
            let e = parse_duration(bad, true).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
