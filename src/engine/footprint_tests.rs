//! What an idle watch costs: the actor's future is the task's memory for as long as the
//! watch runs, so the rarely taken, deep branches (a round, a deploy, a command) are boxed
//! and an idle actor stays small.

use std::sync::Arc;

use super::*;

fn shared() -> Shared {
    let metrics = Metrics::new();
    let http = reqwest::Client::new();
    let tasks = TaskTracker::new();
    Shared {
        store: Store::in_memory().unwrap(),
        metrics: metrics.clone(),
        status: StatusBoard::default(),
        http: http.clone(),
        tasks: tasks.clone(),
        sinks: crate::sinks::Sinks::new(&Default::default(), http, metrics, tasks),
        evidence_dir: std::env::temp_dir(),
        outbox: Default::default(),
        leases: crate::fleet::Leases::single(),
        lag: Default::default(),
        probes: Default::default(),
    }
}

#[tokio::test]
async fn an_idle_watch_actor_is_small() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t").unwrap();
    std::fs::write(dir.path().join("api-key"), "k").unwrap();
    let toml = format!(
        r#"
[server]
listen = "127.0.0.1:0"
token_file = "token"
[state]
dir = "{}"
[deployers.octo]
kind = "octopus"
url = "http://127.0.0.1:1"
space = "Spaces-1"
api_key_file = "api-key"
[[watch]]
name = "shop"
deployer = "octo"
project = "Projects-1"
environment = "Environments-1"
[[watch.check]]
name = "health"
kind = "http"
url = "http://127.0.0.1:1/health"
"#,
        dir.path().display()
    );
    let config = crate::config::load_str(&toml, dir.path()).unwrap();
    let w = config.watches[0].clone();
    let shared = shared();
    let deployer = Deployer::new(
        &w.deployer,
        &config.deployers["octo"],
        shared.http.clone(),
        shared.metrics.clone(),
    );
    let actor = Box::new(watch::WatchActor::new(
        w,
        deployer,
        shared,
        CancellationToken::new(),
        Arc::new(Pulse::default()),
    ));
    let (_tx, rx) = mpsc::channel::<Command>(QUEUE);
    let future = actor.run(rx);
    // 14 kB before its branches were boxed, its argument boxed and the record's read kept out
    // of its waits (debug build; 0.5 kB after).
    let size = std::mem::size_of_val(&future);
    assert!(size <= 1024, "an idle actor's future is {size} bytes");
    // A box or nothing: the box's niche leaves no tag (16 bytes while pause and resume were
    // commands of their own).
    assert_eq!(std::mem::size_of::<Command>(), 8, "a queued command");
}
