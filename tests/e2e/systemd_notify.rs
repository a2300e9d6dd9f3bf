//! The systemd notify protocol, proved with a NOTIFY_SOCKET the test owns: READY=1 once the
//! listener is up, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 (with MONOTONIC_USEC) then
//! READY=1 around SIGHUP, STOPPING=1 on SIGTERM. Also: SIGTERM during an in-flight deploy call
//! lets it finish, and the restarted daemon does not repeat it.

use std::time::{Duration, Instant};

use tokio::net::UnixDatagram;

use crate::common::app::FakeApp;
use crate::common::octopus::FakeOctopus;
use crate::harness::*;

const T: Duration = Duration::from_secs(20);

/// Receives datagrams until one contains `line`; returns it with everything seen before it.
async fn until(sock: &UnixDatagram, line: &str) -> (String, Vec<String>) {
    let mut seen = Vec::new();
    let deadline = Instant::now() + T;
    let mut buf = vec![0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = tokio::time::timeout(left, sock.recv(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {line:?} within {T:?}; got {seen:?}"))
            .unwrap();
        let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
        if msg.lines().any(|l| l == line) {
            return (msg, seen);
        }
        seen.push(msg);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_protocol_ready_watchdog_reload_stopping() {
    let octo = FakeOctopus::start(API_KEY).await;
    let app = FakeApp::start().await;
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &http_watch("shop", &app.url(), "")));
    let sock_path = setup.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // 400ms watchdog: pings expected every 200ms.
    let mut d = Daemon::start_with_env(
        &setup,
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "400000"),
        ],
    )
    .await;

    let (ready, before) = until(&sock, "READY=1").await;
    assert!(
        before.iter().all(|m| !m.contains("WATCHDOG=1")),
        "READY comes first: {before:?}"
    );
    assert!(ready.contains("STATUS="), "{ready}");
    // READY=1 is only sent once the listener is bound: it must accept connections now.
    std::net::TcpStream::connect(("127.0.0.1", setup.port)).expect("listener up at READY=1");

    // Watchdog cadence: never faster than half of WATCHDOG_USEC, and steadily there.
    until(&sock, "WATCHDOG=1").await;
    let start = Instant::now();
    for _ in 0..5 {
        until(&sock, "WATCHDOG=1").await;
    }
    let five = start.elapsed();
    assert!(
        five >= Duration::from_millis(5 * 200 - 50),
        "pings too fast: 5 in {five:?}"
    );
    assert!(
        five < Duration::from_secs(5),
        "pings too slow: 5 in {five:?}"
    );

    d.signal("HUP");
    let (reloading, _) = until(&sock, "RELOADING=1").await;
    let mono = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .expect("MONOTONIC_USEC with RELOADING=1");
    assert!(mono.parse::<u64>().unwrap() > 0);
    until(&sock, "READY=1").await;

    d.signal("TERM");
    until(&sock, "STOPPING=1").await;
    assert_eq!(d.wait_exit().await.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_an_in_flight_rollback_call_finish() {
    let octo = FakeOctopus::start(API_KEY).await;
    let r1 = octo.add_release("Projects-1", "1.0.0");
    octo.add_deployment("Projects-1", "Environments-1", &r1, "Success");
    let r2 = octo.add_release("Projects-1", "1.1.0");
    // The create is slow (but within the 1s deployer timeout): SIGTERM arrives while it is in flight.
    octo.hang_next_posts(1, Duration::from_millis(700));
    let app = FakeApp::start().await;
    app.set_health(503);
    let setup = Setup::new();
    setup.write(
        &(setup.base(&octo.url())
            + &http_watch("shop", &app.url(), "").replace("warmup = \"0s\"", "warmup = \"300ms\"")),
    );
    let mut d = Daemon::start(&setup).await;
    assert_eq!(d.announce("shop", &r2).await, 202);
    octo.wait_for_created(1, T).await;
    let status = d.stop().await;
    assert_eq!(status.code(), Some(0), "{}", d.logs());
    assert!(
        d.logs().contains("deployment created"),
        "the call finished before exit:\n{}",
        d.logs()
    );

    app.set_health(200);
    let d = Daemon::start(&setup).await;
    d.wait_watch("shop", "rollback completed after restart", T, |w| {
        w["rollback"]["state"] == "succeeded" && w["last_verdict"]["verdict"] == "verified"
    })
    .await;
    assert_eq!(octo.post_attempts(), 1);
    assert_eq!(octo.created_deployments().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_the_systemd_credentials_directory() {
    let octo = FakeOctopus::start(API_KEY).await;
    let app = FakeApp::start().await;
    let setup = Setup::new();
    // What LoadCredential= would provide: a directory with one file per credential.
    let creds = setup.dir.path().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("token"), "credential-token\n").unwrap();
    std::fs::write(creds.join("api-key"), API_KEY).unwrap();
    std::fs::write(creds.join("hook-secret"), HOOK_SECRET).unwrap();
    // token by credential name; api_key_file relative, so looked up in the credentials dir.
    let config = setup
        .base(&octo.url())
        .replace("token_file = \"token\"", "token_credential = \"token\"")
        + &http_watch("shop", &app.url(), "");
    setup.write(&config);
    let d = Daemon::start_with_env(
        &setup,
        &[("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())],
    )
    .await;
    let url = format!("{}/v1/deployments", d.url);
    let body = serde_json::json!({"watch": "shop", "release": "Releases-1"});
    let r = d
        .http()
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        401,
        "the token file next to the config is not used"
    );
    let r = d
        .http()
        .post(&url)
        .bearer_auth("credential-token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // And without the credentials directory, a credential reference is a clear startup error.
    let (status, _, err) = run_cli(
        &["run", "--config", setup.config_path().to_str().unwrap()],
        setup.dir.path(),
    );
    assert!(!status.success());
    assert!(
        err.contains("server.token_credential") && err.contains("CREDENTIALS_DIRECTORY"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_on_request_and_unstamped_under_journald() {
    let octo = FakeOctopus::start(API_KEY).await;
    let app = FakeApp::start().await;
    let setup = Setup::new();
    setup.write(&(setup.base(&octo.url()) + &http_watch("shop", &app.url(), "")));
    let mut d = Daemon::start_full(&setup, &[], &["--log-format", "json"]).await;
    d.stop().await;
    let logs = d.logs();
    let first = logs.lines().next().expect("some logs");
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("not JSON ({e}): {first}"));
    assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");

    let mut d = Daemon::start_with_env(&setup, &[("JOURNAL_STREAM", "8:12345")]).await;
    d.stop().await;
    let logs = d.logs();
    let line = logs
        .lines()
        .find(|l| l.contains("backstop running"))
        .expect("startup line");
    assert!(
        line.trim_start().starts_with("INFO"),
        "journald adds its own timestamp: {line}"
    );
}
