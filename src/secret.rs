//! Secrets (API keys, bearer tokens, webhook secrets) that must never reach logs.
//!
//! A [`Secret`] is read once from a file, an environment variable or a systemd credential, and
//! only [`Secret::expose`] gives the text back: `Debug` and `Display` print a fixed mask, so a
//! secret inside any config struct that is logged or printed with `{:?}` stays hidden.

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
}
