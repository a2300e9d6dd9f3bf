//! `backstop demo` as a newcomer runs it: no config, no services, exits 0 with a summary.

use std::process::Command;

use crate::harness::binary;

fn demo(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(binary())
        .arg("demo")
        .args(args)
        .output()
        .expect("run backstop demo");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_lists_its_scenarios() {
    let (ok, out, _) = demo(&["--list"]);
    assert!(ok);
    for s in [
        "bad-health",
        "error-spike",
        "slow",
        "noisy-good",
        "flapping",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(s)),
            "{s} missing from:\n{out}"
        );
    }
}

#[test]
fn demo_catches_an_error_spike_and_rolls_back() {
    let (ok, out, err) = demo(&["--scenario", "error-spike"]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    assert!(out.contains("condemned 1.2.0"), "{out}");
    assert!(out.contains("rolled back to 1.1.0"), "{out}");
    assert!(out.contains("bad deployment → rollback call"), "{out}");
}

#[test]
fn demo_keeps_a_noisy_good_release_and_prints_evidence_as_json() {
    let (ok, out, err) = demo(&["--scenario", "noisy-good", "--json"]);
    assert!(ok, "demo failed:\n{out}\n{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON evidence");
    let docs = v["evidence"].as_array().unwrap();
    assert!(docs.len() >= 2, "{v}");
    assert_eq!(
        docs[0]["verdict"]["verdict"], "verified",
        "newest first: the noisy release was kept"
    );
    assert!(
        docs[0]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["failures"].as_u64().unwrap_or(0) > 0),
        "noise was seen"
    );
}
