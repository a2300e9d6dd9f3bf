use std::path::{Path, PathBuf};

use super::*;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, none when the directory does not exist.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(fuzz_dir().join(kind).join(target)) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// What makes a crash found once a test for good: every committed corpus and regression
/// input goes through its target's invariant, on stable, in CI.
#[test]
fn every_committed_corpus_and_regression_input_keeps_its_invariant() {
    // The config target loads each input twice and compares: a test setting BACKSTOP_*
    // variables in between would make the two loads differ.
    let _env = crate::config::TEST_ENV
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    for (target, check) in TARGETS {
        let corpus = inputs("corpus", target);
        assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no seeds");
        for path in corpus.iter().chain(&inputs("regressions", target)) {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target} broke on {}", path.display());
        }
    }
}

/// A target added under `fuzz/` but not here would never run in CI, and the reverse would
/// be a target nobody fuzzes.
#[test]
fn the_fuzz_crate_has_a_wrapper_for_every_target_and_no_other() {
    let mut wrappers: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    wrappers.sort();
    let mut listed: Vec<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(wrappers, listed);
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in listed {
        assert!(
            manifest.contains(&format!("path = \"fuzz_targets/{name}.rs\"")),
            "fuzz/Cargo.toml has no [[bin]] for {name}"
        );
    }
}

#[test]
fn config_accepts_the_example_and_rejects_nonsense_with_reasons() {
    let example = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("config/backstop.example.toml"),
    )
    .unwrap()
    .replace("/etc/backstop/", "");
    let loaded = config::load_str(&example, secrets_dir()).unwrap();
    assert_eq!(accepted(&loaded), Ok(()));
    assert_eq!(check_config(&example), Ok(()));
    for bad in [
        "[[watch]]\nname = 3",
        "= =",
        "",
        "[server]\nlisten = \"nope\"",
    ] {
        assert_eq!(check_config(bad), Ok(()), "{bad:?}");
        assert!(config::load_str(bad, secrets_dir()).is_err() || bad.is_empty());
    }
}

#[test]
fn config_skips_secret_paths_that_could_leave_the_secrets_directory() {
    for toml in [
        "[server]\ntoken_file = \"/dev/zero\"",
        "[server]\ntoken_credential = \"../../dev/stdin\"",
        "[server]\ntoken_file = \"\\u002fdev\\u002fzero\"",
        "[[watch]]\n[watch.x]\napi_key_file = \"..\"",
    ] {
        assert!(names_a_path(toml), "{toml}");
    }
    assert!(!names_a_path("[server]\ntoken_file = \"token\""));
    assert!(!names_a_path("[server]\nurl = \"http://x/dev\""));
}

#[test]
fn exposition_round_trip_holds_and_differences_are_seen() {
    let text = "# TYPE a counter\na_total{x=\"q\\\"\\\\\\n\"} NaN 17\nb -0\nc 1e300\n# EOF\n";
    assert_eq!(check_exposition(text), Ok(()));
    assert_eq!(check_exposition("not { an exposition"), Ok(()));
    let one = exposition_text::parse("a 0\nb NaN").unwrap();
    assert!(same_exposition(&one, &one.clone()));
    let mut other = one.clone();
    other.series[0].value = -0.0;
    assert!(!same_exposition(&one, &other), "-0 is not 0");
    other = one.clone();
    other.series[1].labels.push(("l".into(), "v".into()));
    assert!(!same_exposition(&one, &other));
}

#[test]
fn durations_hold_their_bounds_and_read_back() {
    for text in [
        "30s",
        " 1h 30m ",
        "0s",
        "3650d",
        "250ms",
        "1y 2M",
        "2025-05-01T10:00:00Z",
    ] {
        assert_eq!(check_duration(text), Ok(()), "{text:?}");
    }
    assert!(config::parse_duration("3700d", true).is_err());
    assert!(config::parse_duration("0s", false).is_err());
    assert_eq!(
        crate::backtest::time::parse("1h", fuzz_now()),
        Ok(fuzz_now() - chrono::Duration::hours(1))
    );
}

#[test]
#[should_panic(expected = "invariant broken")]
fn a_broken_invariant_panics_for_libfuzzer() {
    enforce(Err("x".into()));
}

#[test]
fn the_decoder_targets_hold_on_chosen_inputs() {
    let ok = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"2"]}]}}"#;
    for status in [200, 500, 503] {
        assert_eq!(check_prometheus(status, ok), Ok(()), "HTTP {status}");
    }
    assert!(crate::checks::prometheus::decode_instant(500, ok).is_err());
    for value in [
        "120",
        " 7 ",
        "Wed, 21 Oct 2015 07:28:00 GMT",
        "Sun, 11 May 2025 12:00:00 GMT",
        "-1",
        "1e3",
        "99999999999999999999",
    ] {
        assert_eq!(check_retry_after(value), Ok(()), "{value:?}");
    }
    let payload = br#"{"Payload":{"Event":{"Id":"Events-1","Category":"DeploymentSucceeded","RelatedDocumentIds":["Projects-1"]}}}"#;
    assert_eq!(check_octopus_webhook(payload), Ok(()));
    // What `Value` refuses is no payload at all, wherever it is.
    let odd = br#"{"Payload":{"Event":{"Id":"E","Category":"C"}},"Timestamp":1e400}"#;
    assert!(crate::deployer::octopus::subscription::decode(odd).is_err());
    assert_eq!(check_octopus_webhook(odd), Ok(()));
    assert_eq!(check_octopus(b"{\"Items\": []}"), Ok(()));
    assert_eq!(check_octopus(b"not json"), Ok(()));
    assert_eq!(check_argocd(b"{}"), Ok(()));
}
