//! The dashboard in a real browser: `backstop demo --stay` plays a bad deployment (an error
//! spike) and its rollback with the daemon and its simulated service and Octopus, then
//! headless Chromium (Debian's `chromium` and `chromium-driver`) opens the printed URLs. The
//! overview lists the watch with its state and refreshes live; the verdict page shows the
//! condemning check first, one chart per check, one marker per sample, the threshold line at
//! the configured value (measured in the laid-out page), the condemning samples marked as
//! failures, and the value and limit in text beside the chart. The pages are valid HTML
//! (`tidy`) and whole without JavaScript. Screenshots go to `target/ui-screenshots/`.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::binary;
use crate::webdriver::Browser;

/// `backstop demo --stay`, stopped with SIGINT like a user's Ctrl-C.
struct Demo {
    child: Option<Child>,
    dashboard: String,
    verdict: String,
}

impl Demo {
    fn start() -> Demo {
        let mut child = Command::new(binary())
            .args(["demo", "--scenario", "error-spike", "--stay"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run backstop demo --stay");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let mut demo = Demo {
            child: Some(child),
            dashboard: String::new(),
            verdict: String::new(),
        };
        let mut seen = String::new();
        while demo.verdict.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(90))
                .unwrap_or_else(|_| panic!("the demo printed no dashboard URL:\n{seen}"));
            if let Some(url) = line.strip_prefix("The dashboard: ") {
                demo.dashboard = url.trim().to_string();
            }
            if let Some(url) = line.trim().strip_prefix("release 1.2.0's verdict: ") {
                demo.verdict = url.trim().to_string();
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        assert!(demo.dashboard.starts_with("http://127.0.0.1:"), "{seen}");
        assert!(demo.verdict.contains("/ui/verdicts/"), "{seen}");
        demo
    }

    /// Ctrl-C; the demo must stop cleanly.
    fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -INT failed");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the demo did not stop on Ctrl-C"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots")
}

/// What the verdict page shows of each check, read from the laid-out page.
const READ_CHECKS: &str = r#"
const box = (el) => el.getBoundingClientRect();
return Array.from(document.querySelectorAll("article.check"), (a) => {
  const svg = a.querySelector("svg.chart");
  const line = (g) => box(g.querySelector("line")).top;
  return {
    name: a.dataset.check,
    condemning: a.dataset.condemning === "true",
    charts: a.querySelectorAll("svg.chart").length,
    role: svg.getAttribute("role"),
    title: svg.querySelector("title").textContent,
    desc: svg.querySelector("desc").textContent,
    ticks: Array.from(svg.querySelectorAll("g.tick.y"), (g) => [parseFloat(g.dataset.value), line(g)]),
    thresholds: Array.from(svg.querySelectorAll("g.threshold"), (g) => [parseFloat(g.dataset.value), line(g)]),
    samples: Array.from(svg.querySelectorAll("g.sample"), (g) => ({
      at: g.dataset.at, state: g.dataset.state,
      condemning: g.classList.contains("condemning"),
      y: box(g).top + box(g).height / 2,
    })),
    rows: a.querySelectorAll("table.samples tbody tr").length,
    value: a.querySelector("aside dd.value").textContent,
    limit: a.querySelector("aside dd.limit").textContent,
    beside: box(a.querySelector("aside")).left >= box(svg).right - 1,
  };
});
"#;

/// The samples a check's chart plots: the whole `series` when the document has it, else the
/// recent `samples`.
fn plotted(check: &Value) -> Vec<Value> {
    check["series"]
        .as_array()
        .filter(|s| !s.is_empty())
        .or(check["samples"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// The failures since the last pass: the run that condemned.
fn condemning_times(samples: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    for s in samples.iter().rev() {
        match s["result"].as_str() {
            Some("pass") => break,
            Some("fail") => out.push(s["at"].as_str().unwrap().to_string()),
            _ => {}
        }
    }
    out.reverse();
    out
}

fn instant(t: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(t).unwrap().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_the_condemned_release_against_its_limits() {
    let mut demo = Demo::start();
    let http = reqwest::Client::new();
    let id = demo.verdict.rsplit('/').next().unwrap().to_string();
    let api = |p: String| {
        let http = http.clone();
        async move {
            http.get(p)
                .header("Accept", "application/json")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let ev = api(format!("{}v1/verdicts/{id}", demo.dashboard)).await;
    assert_eq!(ev["verdict"]["verdict"], "condemned", "{ev}");
    assert_eq!(
        api(demo.verdict.clone()).await,
        ev,
        "the page answers its document as JSON"
    );

    let browser = Browser::start(1280).await;

    // The overview: the watch, its state in words, live refresh running.
    browser.goto(&demo.dashboard).await;
    browser
        .wait_for(
            "the overview lists demo-shop",
            r#"return !!document.querySelector('tr.watch[data-watch="demo-shop"]');"#,
        )
        .await;
    let row = browser
        .eval(
            r#"const r = document.querySelector('tr.watch[data-watch="demo-shop"]');
               return {state: r.dataset.state, badge: r.querySelector(".badge").textContent, text: r.textContent};"#,
            json!([]),
        )
        .await;
    assert_eq!(row["state"], "idle", "{row}");
    assert_eq!(row["badge"], "idle", "{row}");
    assert!(row["text"].as_str().unwrap().contains("verified"), "{row}");
    browser
        .wait_for(
            "live refresh polled /v1/status",
            r#"const l = document.getElementById("live"); return !!l && l.textContent.startsWith("live, updated");"#,
        )
        .await;
    browser
        .screenshot(&screenshots().join("overview.png"))
        .await;

    // The verdict page.
    browser.goto(&demo.verdict).await;
    let n = ev["checks"].as_array().unwrap().len();
    browser
        .wait_for(
            "every check is shown",
            &format!("return document.querySelectorAll('article.check').length === {n};"),
        )
        .await;
    let shown = browser.eval(READ_CHECKS, json!([])).await;
    let shown = shown.as_array().unwrap();
    let condemning = ev["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| !c["limit_hit"].is_null())
        .expect("a check condemned");
    assert_eq!(condemning["name"], "errors");
    assert_eq!(
        shown[0]["name"], "errors",
        "the condemning check comes first"
    );
    assert_eq!(shown[0]["condemning"], true);
    for s in shown {
        let c = ev["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == s["name"])
            .unwrap();
        let samples = plotted(c);
        assert_eq!(s["charts"], 1, "one chart per check: {s}");
        assert_eq!(s["role"], "img");
        assert!(
            !s["title"].as_str().unwrap().is_empty() && !s["desc"].as_str().unwrap().is_empty()
        );
        assert_eq!(
            s["samples"].as_array().unwrap().len(),
            samples.len(),
            "one marker per sample: {s}"
        );
        assert_eq!(
            s["rows"].as_u64().unwrap() as usize,
            samples.len(),
            "and one row each"
        );
        assert_eq!(s["beside"], true, "the numbers sit beside the chart: {s}");
    }

    // The errors chart: threshold line at max = 0.05, read back through the axis' ticks.
    let errors = &shown[0];
    let limit = condemning["rules"][0]["limit"].as_f64().unwrap();
    assert_eq!(condemning["rules"][0]["rule"], "max");
    let ticks = errors["ticks"].as_array().unwrap();
    let (lo, hi) = (&ticks[0], &ticks[ticks.len() - 1]);
    let (v0, y0, v1, y1) = (
        lo[0].as_f64().unwrap(),
        lo[1].as_f64().unwrap(),
        hi[0].as_f64().unwrap(),
        hi[1].as_f64().unwrap(),
    );
    let at_value = |y: f64| v0 + (y - y0) * (v1 - v0) / (y1 - y0);
    let th = &errors["thresholds"][0];
    assert_eq!(th[0].as_f64().unwrap(), limit);
    let drawn = at_value(th[1].as_f64().unwrap());
    assert!(
        (drawn - limit).abs() <= (v1 - v0) * 0.005,
        "the threshold line sits at {drawn}, not at {limit}: {errors}"
    );
    // The condemning run: marked failures, drawn above the limit.
    let expected: Vec<_> = condemning_times(&plotted(condemning))
        .iter()
        .map(|t| instant(t))
        .collect();
    assert!(expected.len() >= 3, "{condemning}");
    let marked: Vec<&Value> = errors["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["condemning"] == true)
        .collect();
    let marked_at: Vec<_> = marked
        .iter()
        .map(|s| instant(s["at"].as_str().unwrap()))
        .collect();
    assert_eq!(marked_at, expected, "{errors}");
    for s in &marked {
        assert_eq!(s["state"], "fail", "{s}");
        assert!(
            at_value(s["y"].as_f64().unwrap()) > limit,
            "a condemning sample is drawn above the limit: {s}"
        );
    }
    // Its value and its limit in text beside the chart.
    let last_fail = plotted(condemning)
        .iter()
        .rev()
        .find(|s| s["result"] == "fail")
        .and_then(|s| s["value"].as_f64())
        .unwrap();
    let value = errors["value"].as_str().unwrap();
    assert!(
        value.starts_with(&backstop::judge::num(last_fail)),
        "{value:?} does not show {last_fail}"
    );
    assert_eq!(errors["limit"], "value <= 0.05");
    browser.screenshot(&screenshots().join("verdict.png")).await;

    // The watch page: the timeline, newest first, linking to the evidence.
    browser
        .goto(&format!("{}ui/watches/demo-shop", demo.dashboard))
        .await;
    browser
        .wait_for(
            "the timeline links to the condemned release's evidence",
            &format!(
                "return !!document.querySelector('ol.timeline a[href=\"/ui/verdicts/{id}\"]');"
            ),
        )
        .await;
    browser.screenshot(&screenshots().join("watch.png")).await;
    drop(browser);

    // Without JavaScript: the served HTML already holds every chart and marker, and is valid.
    for (name, url) in [
        ("overview", demo.dashboard.clone()),
        ("verdict", demo.verdict.clone()),
        ("watch", format!("{}ui/watches/demo-shop", demo.dashboard)),
    ] {
        let html = http
            .get(&url)
            .header("Accept", "text/html")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if name == "verdict" {
            let markers: usize = ev["checks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| plotted(c).len())
                .sum();
            assert_eq!(html.matches("<g class=\"sample ").count(), markers);
        }
        let file = screenshots().join(format!("{name}.html"));
        std::fs::write(&file, &html).unwrap();
        let out = Command::new("tidy")
            .args(["-q", "-e"])
            .arg(&file)
            .output()
            .expect("tidy not found: install Debian's tidy (tests/run-all.sh does)");
        assert!(
            out.status.success(),
            "{name} page is not valid HTML:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    assert!(demo.stop().success(), "the demo exits 0 on Ctrl-C");
}
