#![no_main]
//! `cargo fuzz run duration`: the invariant is `backstop::fuzzing::duration` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::duration(data));
