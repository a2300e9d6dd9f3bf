#![no_main]
//! `cargo fuzz run retry_after`: the invariant is `backstop::fuzzing::retry_after` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::retry_after(data));
