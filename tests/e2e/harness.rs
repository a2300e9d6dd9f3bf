//! Runs the real `backstop` binary against the fakes: config in a temp dir, a free loopback
//! port, readiness awaited on `/healthz`, signals sent with kill(1).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const TOKEN: &str = "test-token-123";
pub const API_KEY: &str = "API-TESTKEY";
pub const HOOK_SECRET: &str = "hook-secret-xyz";

/// A temp directory with secrets, state dir and a config file.
pub struct Setup {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Setup {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
        std::fs::write(dir.path().join("api-key"), API_KEY).unwrap();
        std::fs::write(dir.path().join("hook-secret"), HOOK_SECRET).unwrap();
        let port = free_port();
        Setup { dir, port }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("backstop.toml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The `[server]`, `[state]` and `[deployers.octo]` sections pointing at `octopus_url`.
    pub fn base(&self, octopus_url: &str) -> String {
        format!(
            r#"
[server]
listen = "127.0.0.1:{port}"
token_file = "token"

[state]
dir = "{state}"

[deployers.octo]
kind = "octopus"
url = "{octopus_url}"
space = "Spaces-1"
api_key_file = "api-key"
webhook_header = "X-Backstop-Secret"
webhook_secret_file = "hook-secret"
timeout = "1s"
task_poll = "50ms"
task_timeout = "20s"
max_retries = 8
# Tests fault the server on purpose: search for an unknown create for 3s, not 32s.
settle = "3s"
"#,
            port = self.port,
            state = self.state_dir().display(),
        )
    }

    pub fn write(&self, toml: &str) {
        std::fs::write(self.config_path(), toml).unwrap();
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_backstop")
}

/// A running daemon process.
pub struct Daemon {
    child: Option<Child>,
    pub url: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl Daemon {
    /// Starts `backstop run` and waits until `/healthz` answers.
    pub async fn start(setup: &Setup) -> Daemon {
        Self::start_with_env(setup, &[]).await
    }

    /// Like [`Daemon::start`], with extra environment variables (e.g. `NOTIFY_SOCKET`).
    pub async fn start_with_env(setup: &Setup, env: &[(&str, &str)]) -> Daemon {
        Self::start_full(setup, env, &[]).await
    }

    /// Like [`Daemon::start`], with extra environment variables and global arguments.
    pub async fn start_full(setup: &Setup, env: &[(&str, &str)], args: &[&str]) -> Daemon {
        let log = setup.dir.path().join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let child = Command::new(binary())
            .args(args)
            .args(["run", "--config"])
            .arg(setup.config_path())
            .env("RUST_LOG", "backstop=debug,info")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            // The allocator's options are the build's (tests/e2e/footprint.rs), not the host's.
            .env_remove("_RJEM_MALLOC_CONF")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn backstop");
        let d = Daemon {
            child: Some(child),
            url: setup.url(),
            log,
            http: reqwest::Client::new(),
        };
        let mut d = d;
        let health = format!("{}/healthz", d.url);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = d.http.get(&health).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if let Some(status) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "backstop exited with {status} before it was ready:\n{}",
                    d.logs()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "backstop not ready:\n{}",
                d.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        d
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGTERM, then waits for the exit status.
    pub async fn stop(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit().await
    }

    /// Waits for the process to exit (after a signal sent earlier).
    pub async fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "daemon did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn status(&self) -> Value {
        self.http
            .get(format!("{}/v1/status", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The detail of one watch (`GET /v1/watches/{name}`, check tracks included), or null.
    pub async fn watch(&self, name: &str) -> Value {
        let r = self
            .http
            .get(format!("{}/v1/watches/{name}", self.url))
            .send()
            .await
            .unwrap();
        if r.status() == reqwest::StatusCode::NOT_FOUND {
            return Value::Null;
        }
        r.json().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until the watch's status satisfies `pred`, returning it.
    pub async fn wait_watch(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let w = self.watch(name).await;
            if pred(&w) {
                return w;
            }
            if std::time::Instant::now() >= deadline {
                panic!(
                    "timed out waiting until {what}; status:\n{}\nlogs:\n{}",
                    serde_json::to_string_pretty(&w).unwrap(),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `POST /v1/deployments` with the test token.
    pub async fn announce(&self, watch: &str, release: &str) -> reqwest::StatusCode {
        self.http
            .post(format!("{}/v1/deployments", self.url))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"watch": watch, "release": release}))
            .send()
            .await
            .unwrap()
            .status()
    }

    /// `POST /v1/deployments` with any body.
    pub async fn announce_json(&self, body: serde_json::Value) -> reqwest::StatusCode {
        self.http
            .post(format!("{}/v1/deployments", self.url))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `backstop` with arguments and returns (status, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (ExitStatus, String, String) {
    let out = Command::new(binary())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `[[watch]]` with one http health check against `app_url`.
pub fn http_watch(name: &str, app_url: &str, extra: &str) -> String {
    format!(
        r#"
[[watch]]
name = "{name}"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
warmup = "0s"
window = "1500ms"
interval = "100ms"
{extra}

[[watch.check]]
name = "health"
kind = "http"
url = "{app_url}/health"
timeout = "80ms"
expect_status = [200]
failure_limit = 3
"#
    )
}
