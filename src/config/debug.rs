//! `Debug` for the config types that hold URLs: the URL is shown through
//! [`redact_url`], so a `user:pass@` or `?token=` in it never reaches a log line or `{:?}`.
//!
//! Every impl destructures its type without `..`, so a field added later fails to compile here
//! until someone decides how it is shown.

use std::fmt;

use super::{ArgoCdConfig, OctopusConfig, Probe, ScrapeProbe, SinkConfig, WebhookDeployerConfig};
use crate::secret::redact_url;

impl fmt::Debug for OctopusConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let OctopusConfig {
            url,
            space,
            api_key,
            webhook_header,
            webhook_secret,
            no_rollback_marker,
            calls,
        } = self;
        f.debug_struct("OctopusConfig")
            .field("url", &redact_url(url))
            .field("space", space)
            .field("api_key", api_key)
            .field("webhook_header", webhook_header)
            .field("webhook_secret", webhook_secret)
            .field("no_rollback_marker", no_rollback_marker)
            .field("calls", calls)
            .finish()
    }
}

impl fmt::Debug for WebhookDeployerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let WebhookDeployerConfig {
            method,
            url,
            headers,
            secret_headers,
            body,
            success_status,
            status_url,
            status_field,
            success_values,
            failure_values,
            calls,
        } = self;
        f.debug_struct("WebhookDeployerConfig")
            .field("method", method)
            .field("url", &redact_url(url))
            .field("headers", headers)
            .field("secret_headers", secret_headers)
            .field("body", body)
            .field("success_status", success_status)
            .field("status_url", &status_url.as_deref().map(redact_url))
            .field("status_field", status_field)
            .field("success_values", success_values)
            .field("failure_values", failure_values)
            .field("calls", calls)
            .finish()
    }
}

impl fmt::Debug for ArgoCdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ArgoCdConfig { url, token, calls } = self;
        f.debug_struct("ArgoCdConfig")
            .field("url", &redact_url(url))
            .field("token", token)
            .field("calls", calls)
            .finish()
    }
}

impl fmt::Debug for SinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The whole Slack URL is a `Secret`: its Debug is already a mask.
            SinkConfig::Slack { url, timeout } => f
                .debug_struct("Slack")
                .field("url", url)
                .field("timeout", timeout)
                .finish(),
            SinkConfig::Webhook {
                url,
                headers,
                secret_headers,
                timeout,
            } => f
                .debug_struct("Webhook")
                .field("url", &redact_url(url))
                .field("headers", headers)
                .field("secret_headers", secret_headers)
                .field("timeout", timeout)
                .finish(),
            SinkConfig::Alertmanager {
                url,
                labels,
                timeout,
            } => f
                .debug_struct("Alertmanager")
                .field("url", &redact_url(url))
                .field("labels", labels)
                .field("timeout", timeout)
                .finish(),
        }
    }
}

impl fmt::Debug for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Http { url, timeout } => f
                .debug_struct("Http")
                .field("url", &redact_url(url))
                .field("timeout", timeout)
                .finish(),
            Probe::Prometheus {
                url,
                query,
                timeout,
                baseline_window,
                lookback,
            } => f
                .debug_struct("Prometheus")
                .field("url", &redact_url(url))
                .field("query", query)
                .field("timeout", timeout)
                .field("baseline_window", baseline_window)
                .field("lookback", lookback)
                .finish(),
            Probe::Scrape(probe) => f.debug_tuple("Scrape").field(probe).finish(),
            Probe::Alert(probe) => f.debug_tuple("Alert").field(probe).finish(),
            Probe::Slo(probe) => f.debug_tuple("Slo").field(probe).finish(),
        }
    }
}

impl fmt::Debug for super::SloProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SloProbe")
            .field("url", &redact_url(&self.url))
            .field("objective", &self.objective)
            .field("events", &self.events)
            .field("long_window", &self.long_window)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl fmt::Debug for super::AlertProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let super::AlertProbe {
            source,
            url,
            labels,
            include_silenced,
            timeout,
        } = self;
        f.debug_struct("AlertProbe")
            .field("source", source)
            .field("url", &redact_url(url))
            .field("labels", labels)
            .field("include_silenced", include_silenced)
            .field("timeout", timeout)
            .finish()
    }
}

impl fmt::Debug for ScrapeProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ScrapeProbe {
            url,
            timeout,
            mode,
            rate_window,
            baseline_window,
        } = self;
        f.debug_struct("ScrapeProbe")
            .field("url", &redact_url(url))
            .field("timeout", timeout)
            .field("mode", mode)
            .field("rate_window", rate_window)
            .field("baseline_window", baseline_window)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::load_str;

    /// Every kind of configured URL, each with a password and a secret query parameter.
    const TOML: &str = r#"
[deployers.octo]
kind = "octopus"
url = "https://deploy:s3cr3t@octopus.example"
space = "Spaces-1"
api_key_file = "key"

[deployers.cd]
kind = "webhook"
url = "https://cd:s3cr3t@cd.example/deploy/{{watch}}"
status_url = "https://cd.example/status/{{idempotency_key}}?token=s3cr3t"

[deployers.argo]
kind = "argocd"
url = "https://s3cr3t@argocd.example"
token_file = "key"

[notify.hook]
kind = "webhook"
url = "https://hooks.example/in?api_key=s3cr3t"

[notify.am]
kind = "alertmanager"
url = "http://am:s3cr3t@127.0.0.1:9093"

[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
notify = ["hook", "am"]

[[watch.check]]
name = "health"
kind = "http"
url = "http://user:s3cr3t@127.0.0.1:8080/health"

[[watch.check]]
name = "errors"
kind = "prometheus"
url = "http://prom:s3%40cr3t@prometheus:9090"
query = "sum(rate(errors[1m]))"
max = 0.05

[[watch.check]]
name = "scraped"
kind = "scrape"
url = "http://app:8080/metrics?access_token=s3cr3t"
metric = "up"
min = 1
"#;

    #[test]
    fn debug_of_a_loaded_config_hides_url_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), "API-KEY").unwrap();
        let config = load_str(TOML, dir.path()).unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(!debug.contains("s3%40cr3t"), "{debug}");
        for shown in [
            "https://***@octopus.example",
            "http://***@127.0.0.1:8080/health",
            "http://***@prometheus:9090",
            "http://app:8080/metrics?access_token=***",
            "https://hooks.example/in?api_key=***",
        ] {
            assert!(debug.contains(shown), "{shown} missing from {debug}");
        }
        // The real URL is kept for the requests.
        let crate::config::Probe::Http { url, .. } = &config.watches[0].checks[0].probe else {
            panic!("http probe expected")
        };
        assert_eq!(url, "http://user:s3cr3t@127.0.0.1:8080/health");
    }
}
