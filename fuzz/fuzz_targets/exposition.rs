#![no_main]
//! `cargo fuzz run exposition`: the invariant is `backstop::fuzzing::exposition` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::exposition(data));
