//! Reading the config sources (file, then environment overrides) into one generic tree.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde_json::Value;

use super::{validate, Config};

/// One problem in the configuration, with the key path that names where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path such as `watch[0].check[1].max_ratio`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is missing, unreadable or not TOML.
    #[error("cannot read config {path}: {message}")]
    Read { path: String, message: String },
    /// The file parsed but breaks the schema; every problem is listed.
    #[error("invalid config ({} problem{}):\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, list(.0))]
    Invalid(Vec<ConfigError>),
}

fn list(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(|e| format!("  - {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Prefix of environment overrides: `BACKSTOP_SERVER__LISTEN=0.0.0.0:9870` sets `server.listen`.
/// Only variables with a `__` section separator are read, so variables such as
/// `BACKSTOP_TOKEN` that hold secrets named by `token_env` are not mistaken for keys.
const ENV_PREFIX: &str = "BACKSTOP_";

/// Loads and validates the config file at `path` with environment overrides applied.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let (tree, dir) = read(path)?;
    validate(&tree, &dir).map_err(LoadError::Invalid)
}

/// Validates the file for `check-config`: like [`load`], but secrets that cannot be read on
/// this machine are returned as warnings instead of errors.
pub fn check(path: &Path) -> Result<(Config, Vec<ConfigError>), LoadError> {
    let (tree, dir) = read(path)?;
    super::validate::validate_with(&tree, &dir, true).map_err(LoadError::Invalid)
}

fn read(path: &Path) -> Result<(Value, std::path::PathBuf), LoadError> {
    let env: HashMap<String, String> = std::env::vars()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k[ENV_PREFIX.len()..].contains("__"))
        .map(|(k, v)| (k[ENV_PREFIX.len()..].to_string(), v))
        .collect();
    let read_err = |message: String| LoadError::Read {
        path: path.display().to_string(),
        message,
    };
    if !path.exists() {
        return Err(read_err("no such file".into()));
    }
    let tree = config::Config::builder()
        .add_source(config::File::from(path).format(config::FileFormat::Toml))
        .add_source(
            config::Environment::default()
                .separator("__")
                .source(Some(env.into_iter().collect())),
        )
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| read_err(e.to_string()))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((tree, dir.to_path_buf()))
}

/// Loads a config from TOML text (no environment overrides); used by tests and tools.
pub fn load_str(toml: &str, secrets_dir: &Path) -> Result<Config, LoadError> {
    let tree = config::Config::builder()
        .add_source(config::File::from_str(toml, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize::<Value>())
        .map_err(|e| LoadError::Read {
            path: "<string>".into(),
            message: e.to_string(),
        })?;
    validate(&tree, secrets_dir).map_err(LoadError::Invalid)
}
