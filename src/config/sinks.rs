//! Validation of `[notify.NAME]` sinks.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::deployers::secret_headers;
use super::fields::Table;
use super::validate::{http_url, load_secret};
use super::SinkConfig;

pub(super) fn sinks(root: &Table, dir: &Path) -> BTreeMap<String, Option<SinkConfig>> {
    let mut out = BTreeMap::new();
    for (name, t) in root.named_tables("notify") {
        let timeout = t.duration("timeout").unwrap_or(Duration::from_secs(10));
        let sink = match t.required_string("kind").as_deref() {
            Some("slack") => {
                let url = load_secret(&t, "url", dir);
                if !t.has_secret("url") && !t.has("url") {
                    t.error(
                        "url_file",
                        "a Slack webhook URL is a secret: set url_file, url_env or url_credential",
                    );
                }
                url.map(|url| SinkConfig::Slack { url, timeout })
            }
            Some("webhook") => {
                let url = http_url(&t, "url");
                let headers = t.string_map("headers");
                let secret_headers = secret_headers(&t, dir);
                url.map(|url| SinkConfig::Webhook {
                    url,
                    headers,
                    secret_headers,
                    timeout,
                })
            }
            Some("alertmanager") => {
                let url = http_url(&t, "url");
                let labels = t.string_map("labels");
                for key in labels.keys() {
                    let valid = key.chars().enumerate().all(|(i, c)| {
                        c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())
                    });
                    if !valid || key.is_empty() {
                        t.error(
                            &format!("labels.{key}"),
                            "is not a valid Prometheus label name",
                        );
                    }
                }
                url.map(|url| SinkConfig::Alertmanager {
                    url,
                    labels,
                    timeout,
                })
            }
            Some(other) => {
                t.error(
                    "kind",
                    format!("unknown notify kind {other:?}; expected \"slack\", \"webhook\" or \"alertmanager\""),
                );
                None
            }
            None => None,
        };
        t.finish();
        out.insert(name, sink);
    }
    out
}
