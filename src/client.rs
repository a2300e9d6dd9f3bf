//! The CLI side of the HTTP API: `status`, `history`, `explain`, `pause`, `resume`.

use std::time::Duration;

use serde_json::Value;

use crate::cli::ApiAuth;
use crate::evidence::Evidence;
use crate::secret::redact_url;
use crate::status::{render_table, StatusDocument, MAX_LIMIT};

/// A CLI failure, printed as one line; the URL without any credentials it carries.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach backstop at {}: {message}", redact_url(.url))]
    Unreachable { url: String, message: String },
    #[error("backstop answered {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("unexpected answer from {}: {message}", redact_url(.url))]
    Malformed { url: String, message: String },
    #[error("no API token: {0}")]
    Token(String),
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

async fn get(url: String) -> Result<Value, ClientError> {
    let resp = client()
        .get(&url)
        .send()
        .await
        .map_err(|e| ClientError::Unreachable {
            url: url.clone(),
            message: e.without_url().to_string(),
        })?;
    decode(url, resp).await
}

async fn decode(url: String, resp: reqwest::Response) -> Result<Value, ClientError> {
    let status = resp.status();
    let bytes = crate::limits::read(resp, crate::limits::CLI)
        .await
        .map_err(|e| match e {
            crate::limits::ReadError::Transport(e) => ClientError::Unreachable {
                url: url.clone(),
                message: e.without_url().to_string(),
            },
            too_large => ClientError::Malformed {
                url: url.clone(),
                message: too_large.to_string(),
            },
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let body: Value = serde_json::from_str(&text).map_err(|e| ClientError::Malformed {
        url: url.clone(),
        message: e.to_string(),
    })?;
    if !status.is_success() {
        return Err(ClientError::Refused {
            status: status.as_u16(),
            message: body["error"].as_str().unwrap_or(&text).to_string(),
        });
    }
    Ok(body)
}

fn base(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// `backstop status`: every watch, page after page.
pub async fn status(url: &str, json: bool) -> Result<String, ClientError> {
    let doc = status_document(url, MAX_LIMIT).await?;
    Ok(if json {
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        use std::io::IsTerminal;
        let colour = crate::status::colour_wanted(
            std::io::stdout().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        render_table(&doc, chrono::Utc::now(), colour)
    })
}

/// The whole status document: pages of `limit` watches joined, following `next`.
async fn status_document(url: &str, limit: usize) -> Result<StatusDocument, ClientError> {
    let mut doc: Option<StatusDocument> = None;
    loop {
        let after = doc.as_ref().and_then(|d| d.next.clone());
        let u = status_url(url, limit, after.as_deref())?;
        let v = get(u.to_string()).await?;
        let page: StatusDocument =
            serde_json::from_value(v).map_err(|e| ClientError::Malformed {
                url: u.to_string(),
                message: e.to_string(),
            })?;
        // A cursor that does not move on would loop forever.
        let stuck = page.next.is_some() && page.next <= after;
        let mut whole = match doc {
            None => page,
            Some(mut d) => {
                d.watches.extend(page.watches);
                d.fleet = page.fleet;
                d.next = page.next;
                d
            }
        };
        if whole.next.is_none() || stuck {
            whole.next = None;
            return Ok(whole);
        }
        doc = Some(whole);
    }
}

/// `/v1/status?limit=N[&after=NAME]`, the name encoded.
fn status_url(url: &str, limit: usize, after: Option<&str>) -> Result<reqwest::Url, ClientError> {
    let mut u = reqwest::Url::parse(&format!("{}/v1/status", base(url))).map_err(|e| {
        ClientError::Unreachable {
            url: url.to_string(),
            message: e.to_string(),
        }
    })?;
    u.query_pairs_mut().append_pair("limit", &limit.to_string());
    if let Some(a) = after {
        u.query_pairs_mut().append_pair("after", a);
    }
    Ok(u)
}

/// `backstop history [WATCH]`.
pub async fn history(url: &str, watch: Option<&str>, limit: usize) -> Result<String, ClientError> {
    let mut u = format!("{}/v1/history?limit={limit}", base(url));
    if let Some(w) = watch {
        u.push_str(&format!("&watch={w}"));
    }
    let v = get(u).await?;
    let entries = v["deployments"].as_array().cloned().unwrap_or_default();
    let mut rows = vec![[
        "DEPLOYED (UTC)".to_string(),
        "WATCH".into(),
        "RELEASE".into(),
        "KIND".into(),
        "VERDICT".into(),
        "ID".into(),
        "ACTION".into(),
    ]];
    for e in &entries {
        let s = |k: &str| e[k].as_str().unwrap_or("-").to_string();
        let deployed = s("deployed_at")
            .replace('T', " ")
            .chars()
            .take(19)
            .collect();
        rows.push([
            deployed,
            s("watch"),
            s("release"),
            if e["outcome"].as_str() == Some("failed") {
                format!("{} (FAILED)", s("kind"))
            } else {
                s("kind")
            },
            e["verdict"].as_str().unwrap_or("observing").to_string(),
            s("id"),
            s("action"),
        ]);
    }
    let mut widths = [0usize; 7];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(c);
            } else {
                line.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if entries.is_empty() {
        out.push_str("(no deployments recorded)\n");
    }
    Ok(out)
}

/// `backstop explain ID`.
pub async fn explain(url: &str, id: &str, json: bool) -> Result<String, ClientError> {
    let u = format!("{}/v1/verdicts/{id}", base(url));
    let v = get(u.clone()).await?;
    if json {
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default() + "\n");
    }
    let ev: Evidence = serde_json::from_value(v).map_err(|e| ClientError::Malformed {
        url: u,
        message: e.to_string(),
    })?;
    Ok(ev.report())
}

/// `backstop pause|resume WATCH`.
pub async fn control(auth: &ApiAuth, watch: &str, action: &str) -> Result<String, ClientError> {
    let token = match &auth.token_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| ClientError::Token(format!("cannot read {}: {e}", path.display())))?,
        None => std::env::var(&auth.token_env).map_err(|_| {
            ClientError::Token(format!(
                "set --token-file or the environment variable {}",
                auth.token_env
            ))
        })?,
    };
    let u = format!("{}/v1/watches/{watch}/{action}", base(&auth.url));
    let resp = client()
        .post(&u)
        .bearer_auth(token.trim())
        .send()
        .await
        .map_err(|e| ClientError::Unreachable {
            url: u.clone(),
            message: e.without_url().to_string(),
        })?;
    decode(u, resp).await?;
    Ok(format!("{watch}: {action} requested\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_follows_next_until_every_watch_is_listed() {
        let state = crate::ui::tests::state();
        for name in ["a b", "cart", "zeta", "api&x"] {
            state.status.update(name, |_| {});
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = crate::api::router(state, false);
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let doc = status_document(&url, 2).await.unwrap();
        server.abort();
        let names: Vec<&str> = doc.watches.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["a b", "api&x", "cart", "shop", "zeta"]);
        assert_eq!(doc.next, None);
    }
}
