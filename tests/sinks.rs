//! Notification sinks against fakes of Slack, a JSON webhook and Alertmanager, and against a
//! real Alertmanager (the Debian package `prometheus-alertmanager`): payload shapes, retries,
//! refusals, secrets kept out of logs, and `send` never waiting for a receiver.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backstop::config::SinkConfig;
use backstop::evidence::Evidence;
use backstop::metrics::Metrics;
use backstop::secret::Secret;
use backstop::sinks::{Alert, AlertKind, Sinks};
use chrono::Utc;
use serde_json::{json, Value};
use tokio_util::task::TaskTracker;

use common::sinks::{FakeAlertmanager, FakeJsonHook, FakeSlack, SLACK_TOKEN};

const T: Duration = Duration::from_secs(20);

/// The evidence of a release condemned by its health check and rolled back to `Releases-1`,
/// written as the JSON document the daemon stores and serves.
fn evidence() -> Evidence {
    let at = "2024-05-01T12:00:00Z";
    let sample = |value: f64, result: &str| {
        let mut s = json!({"at": at, "value": value, "result": result});
        if result == "fail" {
            s["limit"] = json!("status 503 not in [200]");
        }
        s
    };
    serde_json::from_value(json!({
        "schema": 1,
        "id": "obs-42",
        "watch": "shop",
        "deployment": {
            "release": "Releases-2", "version": "1.1.0", "deployment_id": "Deployments-7",
            "source": "announce", "kind": "deployment", "deployed_at": at,
            "judging_from": at, "window_ends": at, "rollback_safe": null
        },
        "verdict": {"verdict": "condemned", "decided_at": at,
                    "summary": "health: 3 consecutive failures"},
        "checks": [{
            "kind": "http", "url": "http://app.internal/health", "query": null,
            "name": "health", "rules": [{"rule": "expect_status", "limit": [200]}],
            "failure_limit": 3, "baseline": null,
            "consecutive_failures": 3, "consecutive_errors": 0,
            "passes": 1, "failures": 3, "errors": 0,
            "samples": [sample(200.0, "pass"), sample(503.0, "fail"),
                        sample(503.0, "fail"), sample(503.0, "fail")],
            "limit_hit": "3 consecutive failures reached failure_limit 3"
        }],
        "action": {
            "policy": "rollback", "chosen": "rollback", "why": "on_failure = rollback",
            "target_release": "Releases-1", "target_why": "last verified", "dry_run": false,
            "deploy": {"deployer": "octo", "deployment_id": "Deployments-8",
                       "task_id": "ServerTasks-9", "state": "created", "detail": null},
            "command": null
        },
        "timeline": [{"at": at, "event": "condemned"}],
        "links": [{"name": "health graph", "url": "http://prometheus:9090/graph?g0.expr=up"}]
    }))
    .expect("the evidence document deserialises")
}

fn alert(kind: AlertKind) -> Alert {
    Alert {
        id: format!("obs-1:{}", kind.as_str()),
        kind,
        watch: "shop".into(),
        release: "Releases-2".into(),
        summary: "health: 3 consecutive failures (status 503 not in [200])".into(),
        at: Utc::now(),
        evidence: Some(evidence()),
    }
}

fn slack(url: &str) -> SinkConfig {
    SinkConfig::Slack {
        url: Secret::new(url),
        timeout: Duration::from_secs(2),
    }
}

fn alertmanager(url: &str) -> SinkConfig {
    SinkConfig::Alertmanager {
        url: url.into(),
        labels: BTreeMap::from([("team".to_string(), "payments".to_string())]),
        timeout: Duration::from_secs(2),
    }
}

struct Harness {
    sinks: Sinks,
    metrics: Metrics,
    tasks: TaskTracker,
}

impl Harness {
    fn new(config: Vec<(&str, SinkConfig)>) -> Harness {
        let config: BTreeMap<String, SinkConfig> = config
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let metrics = Metrics::new();
        let tasks = TaskTracker::new();
        let sinks = Sinks::new(
            &config,
            reqwest::Client::new(),
            metrics.clone(),
            tasks.clone(),
        );
        Harness {
            sinks,
            metrics,
            tasks,
        }
    }

    fn send(&self, names: &[&str], alert: &Alert) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        self.sinks.send(&names, alert);
    }

    /// `backstop_notifications_total{sink,event,result}`, 0 when the series does not exist.
    fn count(&self, sink: &str, event: &str, result: &str) -> u64 {
        let series = format!(
            r#"backstop_notifications_total{{event="{event}",result="{result}",sink="{sink}"}} "#
        );
        self.metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map(|v| v.trim().parse().expect("a counter value"))
            .unwrap_or(0)
    }

    /// Waits until every delivery started so far has finished.
    async fn drain(&self) {
        self.tasks.close();
        tokio::time::timeout(Duration::from_secs(60), self.tasks.wait())
            .await
            .expect("deliveries finish within their attempts");
        self.tasks.reopen();
    }
}

#[tokio::test]
async fn slack_gets_fallback_text_and_blocks() {
    let fake = FakeSlack::start().await;
    let h = Harness::new(vec![("chat", slack(&fake.url()))]);
    h.send(&["chat"], &alert(AlertKind::Condemned));
    let msg = fake.wait_for(1, T).await.remove(0);

    let text = msg["text"].as_str().unwrap();
    assert!(
        text.contains("shop") && text.contains("Releases-2"),
        "{text}"
    );
    assert!(text.contains("condemned"), "{text}");
    let blocks = msg["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert!(blocks[0]["text"]["text"].as_str().unwrap().contains("shop"));
    assert_eq!(blocks[1]["type"], "section");
    assert_eq!(blocks[1]["text"]["type"], "mrkdwn");
    let fields: Vec<&str> = blocks[2]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    for want in [
        "*Watch*\nshop",
        "*Release*\nReleases-2 (version 1.1.0)",
        "*Event*\ncondemned",
        "*Action*\nrollback (policy rollback)",
        "*Target*\nReleases-1 (last verified)",
    ] {
        assert!(fields.contains(&want), "{want:?} in {fields:?}");
    }
    let check = blocks[3]["text"]["text"].as_str().unwrap();
    assert!(
        check.contains("*health*") && check.contains("status in [200]"),
        "{check}"
    );
    assert!(check.contains("`503` *fail*"), "{check}");
    let context = blocks.last().unwrap();
    assert_eq!(context["type"], "context");
    assert_eq!(context["elements"][0]["type"], "mrkdwn");
    assert!(context["elements"][0]["text"]
        .as_str()
        .unwrap()
        .contains("obs-42"));

    h.drain().await;
    assert_eq!(h.count("chat", "condemned", "ok"), 1);
    assert_eq!(fake.attempts(), 1);
}

#[tokio::test]
async fn webhook_gets_the_whole_document_with_headers() {
    let fake = FakeJsonHook::start().await;
    let config = SinkConfig::Webhook {
        url: fake.url(),
        headers: BTreeMap::from([("X-Team".to_string(), "payments".to_string())]),
        secret_headers: BTreeMap::from([(
            "Authorization".to_string(),
            Secret::new("Bearer hook-s3cr3t"),
        )]),
        timeout: Duration::from_secs(2),
    };
    let h = Harness::new(vec![("hook", config)]);
    let sent = alert(AlertKind::RolledBack);
    h.send(&["hook"], &sent);
    let req = fake.wait_for(1, T).await.remove(0);

    assert_eq!(req.headers["x-team"], "payments");
    assert_eq!(req.headers["authorization"], "Bearer hook-s3cr3t");
    assert!(req.headers["content-type"].starts_with("application/json"));
    let b = &req.body;
    assert_eq!(b["kind"], "rolled_back");
    assert_eq!(b["watch"], "shop");
    assert_eq!(b["release"], "Releases-2");
    assert_eq!(b["summary"], sent.summary);
    let at: chrono::DateTime<Utc> = serde_json::from_value(b["at"].clone()).unwrap();
    assert_eq!(at, sent.at);
    let ev: Evidence = serde_json::from_value(b["evidence"].clone()).unwrap();
    assert_eq!(Some(ev), sent.evidence, "the full evidence, losslessly");

    h.drain().await;
    assert_eq!(h.count("hook", "rolled_back", "ok"), 1);
}

#[tokio::test]
async fn alertmanager_gets_labels_annotations_and_times() {
    let fake = FakeAlertmanager::start().await;
    let h = Harness::new(vec![("am", alertmanager(&fake.url()))]);
    let sent = alert(AlertKind::Frozen);
    h.send(&["am"], &sent);
    let a = fake.wait_for(1, T).await.remove(0);

    let labels = a["labels"].as_object().unwrap();
    let want = json!({"alertname": "BackstopDecision", "watch": "shop", "release": "Releases-2",
        "event": "frozen", "severity": "page", "team": "payments"});
    assert_eq!(Value::Object(labels.clone()), want);
    assert_eq!(a["annotations"]["summary"], sent.summary);
    assert_eq!(a["annotations"]["verdict_id"], "obs-42");
    assert_eq!(a["generatorURL"], "http://prometheus:9090/graph?g0.expr=up");
    let description = a["annotations"]["description"].as_str().unwrap();
    assert!(description.contains("LIMIT HIT"), "{description}");
    let time = |k: &str| chrono::DateTime::parse_from_rfc3339(a[k].as_str().unwrap()).unwrap();
    let starts = time("startsAt");
    assert!(
        (starts.with_timezone(&Utc) - sent.at)
            .num_milliseconds()
            .abs()
            < 1
    );
    assert_eq!(time("endsAt") - starts, chrono::Duration::hours(1));

    h.drain().await;
    assert_eq!(h.count("am", "frozen", "ok"), 1);
}

#[tokio::test]
async fn server_errors_and_429_are_retried_then_delivered_once() {
    let fake = FakeSlack::start().await;
    fake.fail_next(1, 500);
    fake.fail_next(1, 429);
    let h = Harness::new(vec![("chat", slack(&fake.url()))]);
    h.send(&["chat"], &alert(AlertKind::Inconclusive));
    h.drain().await;

    assert_eq!(fake.bodies().len(), 1, "delivered exactly once");
    assert_eq!(fake.attempts(), 3);
    let times = fake.attempt_times();
    assert!(
        times[2] - times[1] >= Duration::from_millis(950),
        "Retry-After: 1 honoured, waited {:?}",
        times[2] - times[1]
    );
    assert_eq!(h.count("chat", "inconclusive", "ok"), 1);
    assert_eq!(h.count("chat", "inconclusive", "error"), 0);
}

#[tokio::test]
async fn client_errors_are_final() {
    let slack_fake = FakeSlack::start().await;
    slack_fake.fail_next(5, 400);
    let am = FakeAlertmanager::start().await;
    am.fail_next(5, 404);
    let h = Harness::new(vec![
        ("chat", slack(&slack_fake.url())),
        ("am", alertmanager(&am.url())),
    ]);
    h.send(&["chat", "am"], &alert(AlertKind::Condemned));
    h.drain().await;

    assert_eq!(slack_fake.attempts(), 1, "a 400 is not retried");
    assert_eq!(am.attempts(), 1, "a 404 is not retried");
    assert_eq!(h.count("chat", "condemned", "error"), 1);
    assert_eq!(h.count("am", "condemned", "error"), 1);
    assert_eq!(h.count("chat", "condemned", "ok"), 0);
}

/// A `tracing` writer into a shared buffer, to read what the sinks logged.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// Current-thread runtime: the delivery tasks run on this thread, under the capturing subscriber.
#[tokio::test]
async fn secrets_never_reach_logs_errors_or_debug_output() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("backstop=trace"))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let refusing = FakeSlack::start().await;
    refusing.fail_next(1, 404);
    let dead_url = format!(
        "http://127.0.0.1:{}/services/T000/B000/{SLACK_TOKEN}",
        closed_port()
    );
    let dead = slack(&dead_url);
    assert!(!format!("{dead:?}").contains(SLACK_TOKEN), "{dead:?}");
    let hook = SinkConfig::Webhook {
        url: format!("http://127.0.0.1:{}/hook", closed_port()),
        headers: BTreeMap::new(),
        secret_headers: BTreeMap::from([("X-Key".to_string(), Secret::new("hdr-s3cr3t"))]),
        timeout: Duration::from_secs(1),
    };
    assert!(!format!("{hook:?}").contains("hdr-s3cr3t"));
    let h = Harness::new(vec![
        ("refusing", slack(&refusing.url())),
        ("dead", dead),
        ("hook", hook),
    ]);
    h.send(
        &["refusing", "dead", "hook"],
        &alert(AlertKind::RollbackFailed),
    );
    h.drain().await;

    for sink in ["refusing", "dead", "hook"] {
        assert_eq!(h.count(sink, "rollback_failed", "error"), 1, "{sink}");
    }
    let text = log.text();
    assert!(text.contains("notification not delivered"), "{text}");
    assert!(
        text.contains("Connection refused") || text.contains("connect"),
        "{text}"
    );
    assert!(text.contains("404"), "{text}");
    for secret in [SLACK_TOKEN, "/services/", "hdr-s3cr3t"] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
}

#[tokio::test]
async fn unknown_sink_names_are_skipped_and_duplicates_told_once() {
    let fake = FakeSlack::start().await;
    let h = Harness::new(vec![("chat", slack(&fake.url()))]);
    h.send(&["nope", "chat", "chat"], &alert(AlertKind::Paused));
    h.drain().await;
    assert_eq!(fake.bodies().len(), 1);
    assert_eq!(h.count("chat", "paused", "ok"), 1);
    assert!(!h.metrics.render().contains("nope"));
}

#[tokio::test]
async fn send_returns_while_the_receiver_is_still_holding_the_request() {
    let fake = FakeAlertmanager::start().await;
    fake.hold();
    let h = Harness::new(vec![("am", alertmanager(&fake.url()))]);
    h.send(&["am"], &alert(AlertKind::Condemned));
    // send() has returned; the delivery is still running in the background.
    assert_eq!(h.tasks.len(), 1);
    common::wait_until("the request reached the held receiver", T, || {
        fake.attempts() == 1
    })
    .await;
    assert!(fake.alerts().is_empty(), "not answered while held");
    assert_eq!(h.count("am", "condemned", "ok"), 0);
    assert_eq!(h.tasks.len(), 1, "the delivery waits for the receiver");

    fake.release();
    h.drain().await;
    assert_eq!(fake.alerts().len(), 1);
    assert_eq!(h.count("am", "condemned", "ok"), 1);
}

#[tokio::test]
async fn reconfigure_redirects_later_deliveries() {
    let first = FakeJsonHook::start().await;
    let second = FakeSlack::start().await;
    let hook = |url: String| SinkConfig::Webhook {
        url,
        headers: BTreeMap::new(),
        secret_headers: BTreeMap::new(),
        timeout: Duration::from_secs(2),
    };
    let h = Harness::new(vec![("ops", hook(first.url()))]);
    h.send(&["ops"], &alert(AlertKind::Condemned));
    h.drain().await;
    h.sinks
        .reconfigure(&BTreeMap::from([("ops".to_string(), slack(&second.url()))]));
    h.send(&["ops"], &alert(AlertKind::RolledBack));
    h.drain().await;
    assert_eq!(first.requests().len(), 1);
    assert_eq!(first.requests()[0].body["kind"], "condemned");
    assert_eq!(second.bodies().len(), 1);
    assert_eq!(h.count("ops", "rolled_back", "ok"), 1);
}

/// A real Alertmanager on loopback, killed on drop.
struct RealAlertmanager {
    child: Child,
    url: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

const AM_PACKAGE: &str = "prometheus-alertmanager";

fn alertmanager_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(AM_PACKAGE))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "{AM_PACKAGE} not found on PATH: install the Debian package {AM_PACKAGE} \
             (apt-get install -y {AM_PACKAGE})"
        )
    })
}

impl RealAlertmanager {
    async fn start() -> RealAlertmanager {
        let binary = alertmanager_binary();
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("am.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
        )
        .unwrap();
        let port = closed_port();
        let log = dir.path().join("alertmanager.log");
        let child = Command::new(&binary)
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--config.file={}", config.display()))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let mut am = RealAlertmanager {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        am.wait_ready().await;
        am
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let ready = format!("{}/-/ready", self.url);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(&ready).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("alertmanager exited with {status}:\n{}", self.logs());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "alertmanager not ready after 30s:\n{}",
                self.logs()
            );
            tokio::time::sleep(common::POLL).await;
        }
    }

    fn logs(&self) -> String {
        read(&self.log)
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_real_alertmanager_accepts_and_lists_the_alert() {
    let am = RealAlertmanager::start().await;
    let h = Harness::new(vec![("am", alertmanager(&am.url))]);
    let sent = alert(AlertKind::RollbackFailed);
    h.send(&["am"], &sent);
    h.drain().await;
    assert_eq!(
        h.count("am", "rollback_failed", "ok"),
        1,
        "alertmanager accepted the alert; its log:\n{}",
        am.logs()
    );

    let http = reqwest::Client::new();
    let list = format!("{}/api/v2/alerts", am.url);
    let deadline = std::time::Instant::now() + T;
    let found = loop {
        if let Ok(r) = http.get(&list).send().await {
            let alerts: Vec<Value> = r.json().await.unwrap_or_default();
            if let Some(a) = alerts
                .into_iter()
                .find(|a| a["labels"]["alertname"] == "BackstopDecision")
            {
                break a;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alertmanager does not list the alert; its log:\n{}",
            am.logs()
        );
        tokio::time::sleep(common::POLL).await;
    };
    let labels = &found["labels"];
    assert_eq!(labels["watch"], "shop");
    assert_eq!(labels["release"], "Releases-2");
    assert_eq!(labels["event"], "rollback_failed");
    assert_eq!(labels["severity"], "page");
    assert_eq!(labels["team"], "payments");
    assert_eq!(found["annotations"]["verdict_id"], "obs-42");
    assert_eq!(found["annotations"]["summary"], sent.summary);
    assert_eq!(
        found["generatorURL"],
        "http://prometheus:9090/graph?g0.expr=up"
    );
    let ends = chrono::DateTime::parse_from_rfc3339(found["endsAt"].as_str().unwrap()).unwrap();
    let lifetime = ends.with_timezone(&Utc) - sent.at;
    assert!(
        (lifetime - chrono::Duration::hours(1)).num_seconds().abs() <= 1,
        "ends an hour after the decision: {found}"
    );
}

#[tokio::test]
async fn a_closed_gate_stops_the_next_retry_and_keeps_the_notification_undelivered() {
    // The first attempt fails (500); before the retry the node loses the watch's lease: the
    // retry is not sent, and the delivery ends as "try again" (left in the outbox for the
    // owner), never as delivered.
    let fake = FakeSlack::start().await;
    fake.fail_next(1, 500);
    let h = Harness::new(vec![("chat", slack(&fake.url()))]);
    let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let gate: backstop::sinks::Gate = {
        let (open, calls) = (open.clone(), calls.clone());
        Arc::new(move || {
            // Open for the first attempt only.
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
                && open.load(std::sync::atomic::Ordering::SeqCst)
        })
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    h.sinks.send_gated(
        &["chat".to_string()],
        &alert(AlertKind::Condemned),
        gate,
        move |how| {
            let _ = tx.send(how);
        },
    );
    let how = tokio::time::timeout(T, rx).await.unwrap().unwrap();
    assert_eq!(how, backstop::sinks::Delivered::Retry);
    assert_eq!(fake.attempts(), 1, "the retry was withheld");
    assert!(fake.bodies().is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // A gate closed from the start sends nothing at all.
    open.store(false, std::sync::atomic::Ordering::SeqCst);
    let (tx, rx) = tokio::sync::oneshot::channel();
    h.sinks.send_gated(
        &["chat".to_string()],
        &alert(AlertKind::Condemned),
        Arc::new(|| false),
        move |how| {
            let _ = tx.send(how);
        },
    );
    assert_eq!(
        tokio::time::timeout(T, rx).await.unwrap().unwrap(),
        backstop::sinks::Delivered::Retry
    );
    assert_eq!(fake.attempts(), 1);
}
