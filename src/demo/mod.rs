//! `backstop demo`: watch backstop catch a bad release and roll it back, with nothing installed.
//!
//! Everything runs in this process but talks real HTTP on loopback: a simulated service
//! ([`service`]) with `/health` and `/metrics`, a simulated deployment tool shaped like Octopus
//! Deploy ([`octopus`]), and the real daemon ([`crate::daemon::serve`]) with real state in a
//! temporary directory, discovering deployments by polling, judging them with its real checks,
//! and rolling back through its real Octopus client.

mod octopus;
mod service;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use octopus::Octopus;
use service::{Behaviour, Service};

/// A demo scenario. Closed set; `--list` prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// The new release's /health answers 503.
    BadHealth,
    /// A quarter of its requests fail with 500.
    ErrorSpike,
    /// Its latency is five times the baseline.
    Slow,
    /// Healthy but noisy (a failed health check in three): kept, not rolled back.
    NoisyGood,
    /// Down three checks out of four.
    Flapping,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::BadHealth,
        Scenario::ErrorSpike,
        Scenario::Slow,
        Scenario::NoisyGood,
        Scenario::Flapping,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Scenario::BadHealth => "bad-health",
            Scenario::ErrorSpike => "error-spike",
            Scenario::Slow => "slow",
            Scenario::NoisyGood => "noisy-good",
            Scenario::Flapping => "flapping",
        }
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Scenario::BadHealth => "the new release's /health answers 503",
            Scenario::ErrorSpike => "a quarter of the new release's requests fail with 500",
            Scenario::Slow => "the new release is five times slower than its baseline",
            Scenario::NoisyGood => "the new release is healthy but noisy: it must be kept",
            Scenario::Flapping => "the new release is down three checks out of four",
        }
    }

    fn behaviour(&self) -> Behaviour {
        match self {
            Scenario::BadHealth => Behaviour::BadHealth,
            Scenario::ErrorSpike => Behaviour::ErrorSpike,
            Scenario::Slow => Behaviour::Slow,
            Scenario::NoisyGood => Behaviour::Noisy,
            Scenario::Flapping => Behaviour::Flapping,
        }
    }

    /// Whether backstop should roll this release back.
    fn is_bad(&self) -> bool {
        *self != Scenario::NoisyGood
    }
}

/// `backstop simulate`: serves the demo's simulated service and deployment API until the
/// shutdown future completes, printing their URLs as one JSON line. For benchmarks and for
/// trying configurations by hand.
pub async fn simulate(shutdown: impl std::future::Future<Output = ()>) -> Result<(), DemoError> {
    let setup = |e: std::io::Error| DemoError::Setup(e.to_string());
    let cancel = CancellationToken::new();
    let service = Service::start("1.0.0", cancel.clone())
        .await
        .map_err(setup)?;
    let octo = Octopus::start(service.clone(), cancel.clone())
        .await
        .map_err(setup)?;
    let r1 = octo.add_release("1.0.0", Behaviour::Good);
    octo.deploy(&r1, "initial deployment");
    println!(
        "{}",
        serde_json::json!({
            "service": service.url,
            "deployer": octo.url,
            "space": "Spaces-1",
            "project": octopus::PROJECT,
            "environment": octopus::ENVIRONMENT,
        })
    );
    shutdown.await;
    cancel.cancel();
    Ok(())
}

/// The list printed by `--list`.
pub fn list() -> String {
    Scenario::ALL
        .iter()
        .map(|s| format!("{:<12} {}\n", s.name(), s.describe()))
        .collect()
}

const WATCH: &str = "demo-shop";
/// The whole demo must end well within a minute; this bounds every wait.
const DEADLINE: Duration = Duration::from_secs(50);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo setup failed: {0}")]
    Setup(String),
    #[error("the demo did not reach {0} within {DEADLINE:?}")]
    Timeout(&'static str),
    #[error("unexpected outcome: {0}")]
    Outcome(String),
}

fn config(state: &std::path::Path, octo: &str, app: &str) -> String {
    format!(
        r#"
[state]
dir = "{state}"

[deployers.sim]
kind = "octopus"
url = "{octo}"
space = "Spaces-1"
api_key_file = "api-key"
timeout = "2s"
task_poll = "100ms"

[[watch]]
name = "{WATCH}"
deployer = "sim"
project = "{project}"
environment = "{env}"
poll = "250ms"
warmup = "1s"
window = "4s"
interval = "500ms"

[[watch.check]]
name = "health"
kind = "http"
url = "{app}/health"
timeout = "400ms"
failure_limit = 3

[[watch.check]]
name = "errors"
kind = "scrape"
url = "{app}/metrics"
timeout = "400ms"
mode = "ratio"
numerator = {{ metric = "demo_http_requests_total", labels = {{ code = "500" }} }}
denominator = {{ metric = "demo_http_requests_total" }}
rate_window = "2s"
max = 0.05
failure_limit = 3

[[watch.check]]
name = "latency"
kind = "scrape"
url = "{app}/metrics"
timeout = "400ms"
mode = "quantile"
quantile = 0.9
metric = "demo_request_duration_seconds_bucket"
rate_window = "2s"
baseline_window = "3s"
max_ratio = 2.0
failure_limit = 3
"#,
        state = state.display(),
        project = octopus::PROJECT,
        env = octopus::ENVIRONMENT,
    )
}

/// Prints progress lines, or collects nothing in JSON mode.
struct Out {
    json: bool,
    start: Instant,
    tty: bool,
}

impl Out {
    fn line(&self, text: &str) {
        if self.json {
            return;
        }
        let t = self.start.elapsed().as_secs_f64();
        let mut out = std::io::stdout();
        if self.tty {
            let _ = write!(out, "\r\x1b[2K");
        }
        let _ = writeln!(out, "[{t:5.1}s] {text}");
        let _ = out.flush();
    }

    /// A line that the next one overwrites on a terminal.
    fn progress(&self, text: &str) {
        if self.json {
            return;
        }
        if self.tty {
            let t = self.start.elapsed().as_secs_f64();
            let mut out = std::io::stdout();
            let _ = write!(out, "\r\x1b[2K[{t:5.1}s] {text}");
            let _ = out.flush();
        }
    }
}

/// Runs the demo; returns the text to print last (the summary, or the JSON evidence). With
/// `stay`, that text is printed at once, then the dashboard's URL, and the daemon and the
/// simulations keep running until `stay` completes; nothing is left to print.
pub async fn run(
    scenario: Scenario,
    json: bool,
    stay: Option<impl std::future::Future<Output = ()>>,
) -> Result<String, DemoError> {
    let out = Out {
        json,
        start: Instant::now(),
        tty: std::io::stdout().is_terminal(),
    };
    let cancel = CancellationToken::new();
    let dir = std::env::temp_dir().join(format!(
        "backstop-demo-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| DemoError::Setup(e.to_string()))?;
    let result = run_in(scenario, &out, &dir, cancel.clone(), stay).await;
    cancel.cancel();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_in(
    scenario: Scenario,
    out: &Out,
    dir: &std::path::Path,
    cancel: CancellationToken,
    stay: Option<impl std::future::Future<Output = ()>>,
) -> Result<String, DemoError> {
    let setup = |e: std::io::Error| DemoError::Setup(e.to_string());
    let service = Service::start("1.0.0", cancel.clone())
        .await
        .map_err(setup)?;
    let octo = Octopus::start(service.clone(), cancel.clone())
        .await
        .map_err(setup)?;
    let r1 = octo.add_release("1.0.0", Behaviour::Good);
    let r2 = octo.add_release("1.1.0", Behaviour::Good);
    let r3 = octo.add_release("1.2.0", scenario.behaviour());
    octo.deploy(&r1, "initial deployment");

    std::fs::write(dir.join("api-key"), "API-DEMO").map_err(setup)?;
    let path = dir.join("backstop.toml");
    std::fs::write(&path, config(&dir.join("state"), &octo.url, &service.url)).map_err(setup)?;
    let cfg = crate::config::load(&path).map_err(|e| DemoError::Setup(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(setup)?;
    let api = format!("http://{}", listener.local_addr().map_err(setup)?);
    let (control, rx) = tokio::sync::mpsc::channel(1);
    let daemon = tokio::spawn(crate::daemon::serve(cfg, path, rx, listener));

    out.line(&format!(
        "backstop demo, scenario {}: {}",
        scenario.name(),
        scenario.describe()
    ));
    out.line(&format!(
        "  simulated service    {}  (/health, /metrics)",
        service.url
    ));
    out.line(&format!("  simulated Octopus    {}", octo.url));
    out.line(&format!(
        "  backstop             {api}  (dashboard {api}/, API {api}/v1/status)"
    ));
    out.line("release 1.0.0 is running; backstop collects its baseline from /metrics");
    let http = reqwest::Client::new();
    let status = |http: reqwest::Client, api: String| async move {
        let v: Value = http
            .get(format!("{api}/v1/status"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        v["watches"].as_array()?.first().cloned()
    };
    // Let the scrape checks gather a few seconds of the running release.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_secs(3) {
        out.progress(&format!(
            "collecting baseline {:.1}s",
            warm.elapsed().as_secs_f64()
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    out.line("CI deploys release 1.1.0 (good)");
    octo.deploy(&r2, "CI pipeline");
    let w = watch_until(out, &http, &api, &status, |w| {
        w["last_verdict"]["release"] == r2.as_str() && w["state"] == "idle"
    })
    .await?;
    let v = &w["last_verdict"];
    out.line(&format!(
        "✔ backstop verdict on 1.1.0: {} — it is now the last good release",
        v["verdict"].as_str().unwrap_or("?")
    ));

    out.line(&format!(
        "CI deploys release 1.2.0 ({})",
        scenario.describe()
    ));
    let bad = octo
        .deploy(&r3, "CI pipeline")
        .ok_or(DemoError::Setup("release missing".into()))?;
    let w = watch_until(out, &http, &api, &status, |w| {
        w["last_verdict"]["release"] == r3.as_str()
    })
    .await?;
    let verdict = w["last_verdict"]["verdict"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let summary;
    if scenario.is_bad() {
        if verdict != "condemned" {
            return Err(DemoError::Outcome(format!(
                "1.2.0 was {verdict}, expected condemned"
            )));
        }
        out.line(&format!(
            "✘ backstop condemned 1.2.0: {}",
            w["last_verdict"]["summary"].as_str().unwrap_or("")
        ));
        // The verdict is published before the deploy call is made: wait for the call.
        let asked = Instant::now();
        let rollback = loop {
            if let Some(d) = octo
                .deployments()
                .into_iter()
                .find(|d| d.comments.contains("backstop"))
            {
                break d;
            }
            if asked.elapsed() > DEADLINE {
                return Err(DemoError::Outcome("no rollback deployment was made".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        out.line(&format!(
            "→ backstop called the deployment API: deploy {} ({}), {} after the bad deployment",
            rollback.version,
            rollback.release,
            fmt(rollback.at - bad.at)
        ));
        let w = watch_until(out, &http, &api, &status, |w| {
            w["last_verdict"]["release"] == r2.as_str() && w["state"] == "idle"
        })
        .await?;
        out.line(&format!(
            "✔ the rollback to 1.1.0 was {} by backstop; the service runs {}",
            w["last_verdict"]["verdict"].as_str().unwrap_or("?"),
            service.release()
        ));
        let overhead = overhead(&http, &api, &rollback).await;
        summary = format!(
            "Summary: bad release 1.2.0 ({}) rolled back to 1.1.0.\n  bad deployment → rollback call: {} (deploy 0.3 s + discovery + warmup 1 s + 3 failed rounds of 0.5 s)\n  condemning sample → deploy call: {}\n  (run with --json for the evidence documents)\n",
            scenario.name(),
            fmt(rollback.at - bad.at),
            overhead.unwrap_or_else(|| "unknown".into())
        );
        let _ = &api;
    } else {
        if verdict != "verified" {
            return Err(DemoError::Outcome(format!(
                "1.2.0 was {verdict}, expected verified"
            )));
        }
        let failures: u64 = w["last_verdict"]["checks"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["failures"].as_u64()).sum())
            .unwrap_or(0);
        out.line(&format!(
            "✔ 1.2.0 verified despite {failures} failed samples: noise is not a failure"
        ));
        if octo
            .deployments()
            .iter()
            .any(|d| d.comments.contains("backstop"))
        {
            return Err(DemoError::Outcome("a good release was rolled back".into()));
        }
        summary = "Summary: noisy but good release 1.2.0 kept; no rollback was made.\n".to_string();
    }
    let mut text = if out.json {
        evidence(&http, &api).await?
    } else {
        summary
    };
    if let Some(stay) = stay {
        print!("{text}");
        text = String::new();
        let verdict = release_observation(&http, &api, &r3).await;
        let lines = format!(
            "\nThe dashboard: {api}/\n  release 1.2.0's verdict: {}\n  (the daemon and the simulations keep running; Ctrl-C stops them)\n",
            verdict
                .map(|id| format!("{api}/ui/verdicts/{id}"))
                .unwrap_or_else(|| "see the dashboard".into())
        );
        // In JSON mode stdout holds the JSON document alone.
        if out.json {
            eprint!("{lines}");
        } else {
            print!("{lines}");
        }
        let _ = std::io::stdout().flush();
        stay.await;
    }
    let _ = control.send(crate::signals::Control::Shutdown).await;
    let _ = tokio::time::timeout(Duration::from_secs(10), daemon).await;
    Ok(text)
}

/// Time from the sample that condemned the release to the rollback deployment's creation.
async fn overhead(
    http: &reqwest::Client,
    api: &str,
    rollback: &octopus::Deployment,
) -> Option<String> {
    let history: Value = http
        .get(format!("{api}/v1/history?watch={WATCH}"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let id = history["deployments"]
        .as_array()?
        .iter()
        .find(|e| e["verdict"] == "condemned")?["id"]
        .as_str()?
        .to_string();
    let ev: Value = http
        .get(format!("{api}/v1/verdicts/{id}"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let condemning = ev["checks"]
        .as_array()?
        .iter()
        .filter(|c| !c["limit_hit"].is_null())
        .filter_map(|c| {
            c["samples"].as_array()?.last()?["at"]
                .as_str()
                .map(String::from)
        })
        .filter_map(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
        .max()?;
    let ms = (rollback.created - condemning.with_timezone(&chrono::Utc)).num_microseconds()? as f64
        / 1000.0;
    Some(format!("{ms:.1} ms"))
}

/// The id of the observation of `release`'s deployment (not of a rollback to it).
async fn release_observation(http: &reqwest::Client, api: &str, release: &str) -> Option<String> {
    let history: Value = http
        .get(format!("{api}/v1/history?watch={WATCH}"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    history["deployments"]
        .as_array()?
        .iter()
        .find(|e| e["release"] == release && e["kind"] == "deployment")?["id"]
        .as_str()
        .map(String::from)
}

fn fmt(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// All evidence documents, newest first, as one JSON document.
async fn evidence(http: &reqwest::Client, api: &str) -> Result<String, DemoError> {
    let get = |url: String| async move {
        http.get(url)
            .send()
            .await
            .map_err(|e| DemoError::Setup(e.to_string()))?
            .json::<Value>()
            .await
            .map_err(|e| DemoError::Setup(e.to_string()))
    };
    let history = get(format!("{api}/v1/history?watch={WATCH}")).await?;
    let mut docs = Vec::new();
    for e in history["deployments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        if let Some(id) = e["id"].as_str() {
            docs.push(get(format!("{api}/v1/verdicts/{id}")).await?);
        }
    }
    Ok(
        serde_json::to_string_pretty(&serde_json::json!({ "evidence": docs })).unwrap_or_default()
            + "\n",
    )
}

/// Shows the observation live until `done` holds.
async fn watch_until<F, Fut>(
    out: &Out,
    http: &reqwest::Client,
    api: &str,
    status: &F,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, DemoError>
where
    F: Fn(reqwest::Client, String) -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let start = Instant::now();
    let mut last_line = String::new();
    let mut last_state = String::new();
    while start.elapsed() < DEADLINE {
        if let Some(w) = status(http.clone(), api.to_string()).await {
            if done(&w) {
                return Ok(w);
            }
            let state = w["state"].as_str().unwrap_or("").to_string();
            if state != last_state && state == "rolling_back" {
                out.line("backstop is rolling back …");
            }
            last_state = state;
            if let Some(o) = w.get("observation").filter(|o| !o.is_null()) {
                let line = observation_line(o);
                if line != last_line {
                    if out.tty {
                        out.progress(&line);
                    } else {
                        out.line(&line);
                    }
                    last_line = line;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(DemoError::Timeout("the expected verdict"))
}

/// "observing 1.1.0 [#####.....] round 4: health 200 ✓ | errors 0.004 ✓ | latency 0.09 ✓".
fn observation_line(o: &Value) -> String {
    let parse = |k: &str| {
        o[k].as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
    };
    let progress = match (parse("judging_from"), parse("window_ends")) {
        (Some(a), Some(b)) => {
            let total = (b - a).num_milliseconds().max(1) as f64;
            ((chrono::Utc::now() - a).num_milliseconds() as f64 / total).clamp(0.0, 1.0)
        }
        _ => 0.0,
    };
    let filled = (progress * 20.0).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(20 - filled));
    let checks: Vec<String> = o["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let last = c["samples"].as_array().and_then(|s| s.last()).cloned();
            match last {
                None => format!("{} …", c["name"].as_str().unwrap_or("")),
                Some(s) => {
                    let mark = match s["result"].as_str() {
                        Some("pass") => "✓",
                        Some("fail") => "✗",
                        _ => "?",
                    };
                    let value = s["value"]
                        .as_f64()
                        .map(crate::judge::num)
                        .unwrap_or_else(|| "-".into());
                    format!("{} {value} {mark}", c["name"].as_str().unwrap_or(""))
                }
            }
        })
        .collect();
    // Releases-N is the Nth demo release: 1.0.0, 1.1.0, 1.2.0.
    let release = o["release"].as_str().unwrap_or("?");
    let version = match release {
        "Releases-1" => "1.0.0",
        "Releases-2" => "1.1.0",
        "Releases-3" => "1.2.0",
        other => other,
    };
    format!(
        "observing {version} [{bar}] round {}: {}",
        o["rounds"],
        checks.join(" | ")
    )
}
