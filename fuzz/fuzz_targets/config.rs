#![no_main]
//! `cargo fuzz run config`: the invariant is `backstop::fuzzing::config` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::config(data));
