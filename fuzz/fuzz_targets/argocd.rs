#![no_main]
//! `cargo fuzz run argocd`: the invariant is `backstop::fuzzing::argocd` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::argocd(data));
