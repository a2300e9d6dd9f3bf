//! Test support: a config with one watch and one check of the given keys, loaded or refused.

use crate::config::{load_str, CheckConfig, LoadError};

/// A config with one watch (interval 5s) and one check of these keys.
fn config(check: &str) -> String {
    format!(
        r#"
[deployers.o]
kind = "octopus"
url = "http://octo"
space = "Spaces-1"
api_key_file = "key"
[[watch]]
name = "w"
deployer = "o"
project = "Projects-1"
environment = "Environments-1"
interval = "5s"
window = "10m"
[[watch.check]]
name = "c"
{check}
"#
    )
}

fn dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("key"), "k\n").unwrap();
    d
}

pub(super) fn check(keys: &str) -> CheckConfig {
    let d = dir();
    let c = load_str(&config(keys), d.path()).unwrap_or_else(|e| panic!("{e}"));
    c.watches[0].checks[0].clone()
}

pub(super) fn errors(keys: &str) -> String {
    let d = dir();
    match load_str(&config(keys), d.path()) {
        Ok(_) => panic!("config unexpectedly valid:\n{keys}"),
        Err(LoadError::Invalid(errs)) => errs
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
        Err(e) => panic!("unexpected error: {e}"),
    }
}
