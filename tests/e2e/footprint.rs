//! The daemon's allocator is built with the options `.cargo/config.toml` compiles in: one
//! background thread that returns freed pages to the kernel on time. Without it, pages freed at
//! start-up stayed resident in arenas that went quiet and an idle watch cost twice its memory
//! (bench/RESULTS.md, benchmark 3); a build that lost the setting would only show in the
//! benchmark, so this test looks for the thread itself.

use std::time::{Duration, Instant};

use crate::common::octopus::FakeOctopus;
use crate::harness::*;

/// The names of a process's threads, from `/proc/PID/task/*/comm`.
fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .map(|n| n.trim().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allocator_purges_freed_pages_from_one_background_thread() {
    let octo = FakeOctopus::start(API_KEY).await;
    let setup = Setup::new();
    setup.write(&setup.base(&octo.url()));
    let mut daemon = Daemon::start(&setup).await;
    // jemalloc starts the thread as it starts itself; the wait is only for a slow machine.
    let deadline = Instant::now() + Duration::from_secs(20);
    let purgers = loop {
        let names = thread_names(daemon.pid());
        let purgers = names.iter().filter(|n| *n == "jemalloc_bg_thd").count();
        if purgers > 0 || Instant::now() > deadline {
            break (purgers, names);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(purgers.0, 1, "threads: {:?}", purgers.1);
    // jemalloc ignores an option it cannot read, saying so on stderr: a typo in the compiled-in
    // string would otherwise pass unnoticed.
    assert!(!daemon.logs().contains("<jemalloc>"), "{}", daemon.logs());
    daemon.stop().await;
}
