//! Validation of `[state]`: the SQLite directory, or the PostgreSQL URL (a secret).

use std::path::Path;

use super::fields::Table;
use super::validate::load_secret;
use super::StateConfig;
use crate::secret::Secret;

const DEFAULT_STATE_DIR: &str = "/var/lib/backstop";

pub(super) fn state(root: &Table, config_dir: &Path) -> StateConfig {
    let Some(t) = root.table("state") else {
        return StateConfig {
            dir: DEFAULT_STATE_DIR.into(),
            url: None,
        };
    };
    let dir = t.string("dir").unwrap_or_else(|| DEFAULT_STATE_DIR.into());
    let url = url(&t, config_dir);
    t.finish();
    StateConfig {
        dir: dir.into(),
        url,
    }
}

/// `url` inline (without a password: the config file is not a secret) or the whole URL from
/// `url_file` / `url_env` / `url_credential`, as every other secret is read.
fn url(t: &Table, config_dir: &Path) -> Option<Secret> {
    let (key, url) = if t.has("url") && t.has_secret("url") {
        for suffix in ["_file", "_env", "_credential"] {
            t.string(&format!("url{suffix}"));
        }
        t.string("url");
        t.error(
            "url",
            "give either url or one of url_file, url_env, url_credential",
        );
        return None;
    } else if t.has("url") {
        let url = Secret::new(t.string("url")?);
        if has_password(url.expose()) {
            t.error(
                "url",
                "a password is never written inline; read the whole URL from url_file, url_env or url_credential",
            );
            return None;
        }
        ("url", url)
    } else {
        let key = if t.has("url_env") {
            "url_env"
        } else if t.has("url_credential") {
            "url_credential"
        } else {
            "url_file"
        };
        (key, load_secret(t, "url", config_dir)?)
    };
    if url.expose().is_empty() {
        // A secret that could not be read in check-config's lenient mode: already reported.
        return Some(url);
    }
    if !(url.expose().starts_with("postgres://") || url.expose().starts_with("postgresql://")) {
        // The text is a secret: the message must not show it.
        t.error(
            key,
            "the state URL must start with postgres:// or postgresql://",
        );
        return None;
    }
    Some(url)
}

/// Whether a `postgres://user:password@host` URL carries a password (in its user info, or
/// as a `password=` parameter).
fn has_password(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let userinfo_password = authority
        .rsplit_once('@')
        .is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let query_password = url.split_once('?').is_some_and(|(_, q)| {
        q.split('&')
            .any(|p| p.to_ascii_lowercase().starts_with("password="))
    });
    userinfo_password || query_password
}

#[cfg(test)]
mod tests {
    use crate::config::{load_str, Config};

    fn load(state: &str) -> Result<Config, String> {
        std::env::set_var("BACKSTOP_TEST_STATE_API_KEY", "k");
        let text = format!(
            r#"
[state]
{state}

[deployers.o]
kind = "octopus"
url = "http://octo"
space = "Spaces-1"
api_key_env = "BACKSTOP_TEST_STATE_API_KEY"

[[watch]]
name = "w"
deployer = "o"
project = "Projects-1"
environment = "Environments-1"

[[watch.check]]
name = "h"
kind = "http"
url = "http://app/health"
"#
        );
        load_str(&text, std::path::Path::new("/nonexistent")).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn without_url_the_store_is_sqlite_in_dir() {
        let c = load("dir = \"/tmp/x\"").unwrap();
        assert_eq!(c.state.dir, std::path::PathBuf::from("/tmp/x"));
        assert!(c.state.url.is_none());
    }

    #[test]
    fn an_inline_url_without_password_is_accepted_and_redacted_in_debug() {
        let c = load("url = \"postgres://backstop@db.example/backstop\"").unwrap();
        let url = c.state.url.as_ref().unwrap();
        assert_eq!(url.expose(), "postgres://backstop@db.example/backstop");
        assert!(!format!("{c:?}").contains("db.example"));
    }

    #[test]
    fn an_inline_password_is_refused_without_showing_it() {
        for url in [
            "postgres://backstop:hunter2@db.example/backstop",
            "postgres://db.example/backstop?user=b&password=hunter2",
        ] {
            let e = load(&format!("url = \"{url}\"")).unwrap_err();
            assert!(e.contains("state.url"), "{e}");
            assert!(e.contains("never written inline"), "{e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
    }

    #[test]
    fn the_url_comes_whole_from_an_env_variable_and_errors_name_the_key() {
        std::env::set_var("BACKSTOP_TEST_STATE_URL", "postgres://b:hunter2@db/b\n");
        let c = load("url_env = \"BACKSTOP_TEST_STATE_URL\"").unwrap();
        assert_eq!(c.state.url.unwrap().expose(), "postgres://b:hunter2@db/b");
        std::env::set_var("BACKSTOP_TEST_STATE_URL_BAD", "mysql://b:hunter2@db/b");
        let e = load("url_env = \"BACKSTOP_TEST_STATE_URL_BAD\"").unwrap_err();
        assert!(e.contains("state.url_env"), "{e}");
        assert!(!e.contains("hunter2"), "{e}");
        let e = load("url = \"postgres://db/b\"\nurl_file = \"x\"").unwrap_err();
        assert!(e.contains("state.url"), "{e}");
        let e = load("url_env = \"BACKSTOP_TEST_STATE_URL_UNSET\"").unwrap_err();
        assert!(e.contains("state.url_env"), "{e}");
    }
}
