//! A minimal W3C WebDriver client over reqwest, for the dashboard's browser test: headless
//! Chromium through Debian's `chromedriver`. Six endpoints are all the test needs (new session,
//! navigate, execute script, window size, screenshot, delete session); a full client crate
//! would bring a second HTTP stack and a C crypto build.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

/// A running chromedriver with one headless Chromium session.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    profile: tempfile::TempDir,
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless session `width` pixels wide.
    pub async fn start(width: u32) -> Browser {
        let driver_bin = which("chromedriver").expect(
            "chromedriver not found: install Debian's chromium and chromium-driver (tests/run-all.sh does)",
        );
        let chromium = ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .find_map(|n| which(n))
            .expect("chromium not found: install Debian's chromium (tests/run-all.sh does)");
        let port = crate::harness::free_port();
        let driver = Command::new(driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            profile,
        };
        // Ready when it accepts connections and says so.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                if let Ok(r) = b.http.get(format!("{}/status", b.base)).send().await {
                    let v: Value = r.json().await.unwrap_or_default();
                    if v["value"]["ready"] == true {
                        break;
                    }
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            &format!("--window-size={width},1000"),
            &format!("--user-data-dir={}", b.profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let v = b.post("/session", caps).await;
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {v}"))
            .to_string();
        b.base = format!("{}/session/{id}", b.base);
        b
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("WebDriver {path}: {e}"));
        let v: Value = r.json().await.unwrap();
        assert!(
            v["value"]["error"].is_null(),
            "WebDriver {path} failed: {}",
            v["value"]
        );
        v["value"].clone()
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page; its result.
    pub async fn eval(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Waits until `script` returns true, or fails saying `what`.
    pub async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if self.eval(script, json!([])).await == Value::Bool(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a screenshot of the whole page (the window grown to its height) as PNG.
    pub async fn screenshot(&self, path: &Path) {
        let height = self
            .eval(
                "return Math.ceil(document.documentElement.scrollHeight);",
                json!([]),
            )
            .await
            .as_u64()
            .unwrap_or(1000)
            .clamp(400, 8000);
        let width = self
            .eval("return window.outerWidth;", json!([]))
            .await
            .as_u64()
            .unwrap_or(1280);
        self.post(
            "/window/rect",
            json!({"width": width, "height": height + 120}),
        )
        .await;
        let r = self
            .http
            .get(format!("{}/screenshot", self.base))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        let png = base64::engine::general_purpose::STANDARD
            .decode(v["value"].as_str().expect("screenshot data"))
            .expect("base64 screenshot");
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends the session (Chromium with it), then the driver.
        let url = self.base.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    let _ = reqwest::Client::new()
                        .delete(url)
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await;
                });
            }
        })
        .join();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
