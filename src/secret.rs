//! Secrets (API keys, bearer tokens, webhook secrets) that must never reach logs.
//!
//! A [`Secret`] is read once from a file, an environment variable or a systemd credential, and
//! only [`Secret::expose`] gives the text back: `Debug` and `Display` print a fixed mask, so a
//! secret inside any config struct that is logged or printed with `{:?}` stays hidden.
//!
//! Configured URLs are plain strings (they are needed verbatim to make requests) but may carry
//! credentials too, as `user:pass@` or as a `?token=` parameter: [`redact_url`] is what every
//! log line, error, evidence document, notification and `Debug` output shows instead.

use std::fmt;
use std::path::{Path, PathBuf};

use subtle::ConstantTimeEq;

/// A secret string. Cloning is cheap enough for the handful of secrets a config holds.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value that is already known; used by tests and by the loaders below.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret text, for the single place that must send it (a header).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a presented value in constant time, so response timing does not reveal
    /// how many leading bytes of a guessed token were right.
    pub fn matches(&self, presented: &[u8]) -> bool {
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where a secret comes from, as written in the config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file; relative paths are looked up in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`)
    /// when that is set, else relative to the config file's directory.
    File(PathBuf),
    /// An environment variable name.
    Env(String),
    /// A systemd credential name, read from `$CREDENTIALS_DIRECTORY/<name>`.
    Credential(String),
}

/// Why a secret could not be loaded. The message names the source but never the content.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} is not set")]
    EnvMissing(String),
    #[error("credential {0:?} requested but $CREDENTIALS_DIRECTORY is not set (not running under systemd LoadCredential=?)")]
    NoCredentialsDirectory(String),
    #[error("secret from {0} is empty")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret. Trailing newlines are trimmed because `echo key > file` adds one.
    pub fn load(&self, config_dir: &Path) -> Result<Secret, SecretError> {
        let creds = std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from);
        let (text, origin) = match self {
            SecretSource::File(path) => {
                let full = if path.is_absolute() {
                    path.clone()
                } else if let Some(dir) = &creds {
                    dir.join(path)
                } else {
                    config_dir.join(path)
                };
                let text = std::fs::read_to_string(&full).map_err(|source| SecretError::File {
                    path: full.clone(),
                    source,
                })?;
                (text, full.display().to_string())
            }
            SecretSource::Env(name) => {
                let text =
                    std::env::var(name).map_err(|_| SecretError::EnvMissing(name.clone()))?;
                (text, format!("${name}"))
            }
            SecretSource::Credential(name) => {
                let dir = creds.ok_or_else(|| SecretError::NoCredentialsDirectory(name.clone()))?;
                let full = dir.join(name);
                let text = std::fs::read_to_string(&full).map_err(|source| SecretError::File {
                    path: full.clone(),
                    source,
                })?;
                (text, format!("credential {name}"))
            }
        };
        let trimmed = text.trim_end_matches(['\n', '\r']).to_string();
        if trimmed.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(Secret(trimmed))
    }
}

/// Query parameters whose values are hidden by [`redact_url`] (compared case-insensitively,
/// also as the suffix of a longer name such as `client_secret` or `x-api-key`).
const SECRET_PARAMS: [&str; 7] = [
    "token",
    "key",
    "api_key",
    "apikey",
    "password",
    "secret",
    "access_token",
];

/// The URL as it may be displayed: userinfo (user and password alike, since a token is often
/// the user name) becomes `***@`, and the values of secret-looking query parameters become
/// `***`. A URL with neither is returned unchanged. Text that is not a URL with a host is
/// returned unchanged unless it contains an `@`, in which case everything up to the last `@`
/// (after any `scheme://`) is masked.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => redact_parsed(url, parsed),
        _ if url.contains('@') => {
            let (scheme, rest) = match url.find("://") {
                Some(i) => url.split_at(i + 3),
                None => ("", url),
            };
            let after = rest.rfind('@').map_or("", |at| &rest[at + 1..]);
            format!("{scheme}***@{after}")
        }
        _ => url.to_string(),
    }
}

fn redact_parsed(original: &str, mut url: reqwest::Url) -> String {
    let userinfo = !url.username().is_empty() || url.password().is_some();
    let secret_query = url.query_pairs().any(|(k, _)| is_secret_param(&k));
    if !userinfo && !secret_query {
        // Untouched, not re-serialised: the text people configured is the text they see.
        return original.to_string();
    }
    if userinfo {
        // Cannot fail: the URL has a host and its scheme is not `file`, or it has no userinfo.
        let _ = url.set_password(None);
        let _ = url.set_username("***");
    }
    if secret_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

fn is_secret_param(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SECRET_PARAMS.iter().any(|s| {
        key.strip_suffix(s)
            .is_some_and(|head| head.is_empty() || head.ends_with(['_', '-', '.']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("API-SUPERSECRET");
        assert!(!format!("{s:?}").contains("SUPERSECRET"));
        assert!(!format!("{s}").contains("SUPERSECRET"));
    }

    #[test]
    fn matches_compares_whole_value() {
        let s = Secret::new("abc");
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b"abcd"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn file_secret_is_trimmed_and_relative_to_config_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "API-1\n").unwrap();
        let s = SecretSource::File("key".into()).load(dir.path()).unwrap();
        assert_eq!(s.expose(), "API-1");
    }

    #[test]
    fn missing_and_empty_secrets_are_errors_without_content() {
        let dir = tempfile::tempdir().unwrap();
        let err = SecretSource::File("nope".into())
            .load(dir.path())
            .unwrap_err();
        assert!(err.to_string().contains("nope"));
        std::fs::write(dir.path().join("empty"), "\n").unwrap();
        let err = SecretSource::File("empty".into())
            .load(dir.path())
            .unwrap_err();
        assert!(matches!(err, SecretError::Empty(_)));
        let err = SecretSource::Env("BACKSTOP_TEST_SURELY_UNSET_VAR".into())
            .load(dir.path())
            .unwrap_err();
        assert!(matches!(err, SecretError::EnvMissing(_)));
    }

    #[test]
    fn urls_without_secrets_are_unchanged() {
        for url in [
            "http://127.0.0.1:8080/health",
            "https://prometheus.example.com:9090",
            "http://app/metrics?job=api&instance=a",
            "http://octopus/api/{{target_release}}",
        ] {
            assert_eq!(redact_url(url), url);
        }
    }

    #[test]
    fn userinfo_is_masked_whole() {
        assert_eq!(
            redact_url("http://user:s3cr3t@127.0.0.1:8080/health"),
            "http://***@127.0.0.1:8080/health"
        );
        // A token in the user name is hidden too.
        assert_eq!(
            redact_url("https://ghp_T0KEN@prom.example.com/api"),
            "https://***@prom.example.com/api"
        );
        assert_eq!(redact_url("http://:pw@host/"), "http://***@host/");
        // Already redacted stays the same.
        assert_eq!(redact_url("http://***@host/x"), "http://***@host/x");
    }

    #[test]
    fn percent_encoded_and_at_sign_passwords_are_masked() {
        let out = redact_url("http://admin:s3%40cr%3At@host:9090/path");
        assert_eq!(out, "http://***@host:9090/path");
        // An unencoded '@' in the password: the last '@' ends the userinfo.
        let out = redact_url("http://admin:s3@cr3t@host/");
        assert_eq!(out, "http://***@host/");
    }

    #[test]
    fn secret_query_values_are_masked() {
        let out = redact_url("http://h/p?job=api&token=abc&API_KEY=def&x-api-key=g&apikey=h");
        assert_eq!(
            out,
            "http://h/p?job=api&token=***&API_KEY=***&x-api-key=***&apikey=***"
        );
        let out = redact_url("http://u:p@h/p?Password=a&secret=b&access_token=c&key=d&monkey=e");
        assert_eq!(
            out,
            "http://***@h/p?Password=***&secret=***&access_token=***&key=***&monkey=e"
        );
        assert_eq!(redact_url(&out), out, "idempotent");
    }

    #[test]
    fn text_that_is_not_a_url_is_masked_up_to_the_last_at() {
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url(""), "");
        assert_eq!(redact_url("user:s3cr3t@host:9090"), "***@host:9090");
        assert_eq!(
            redact_url("http://user:s3cr3t@[bad/health"),
            "http://***@[bad/health"
        );
        assert_eq!(redact_url("a@b@c"), "***@c");
    }
}
