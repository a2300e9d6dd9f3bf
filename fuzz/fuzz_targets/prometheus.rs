#![no_main]
//! `cargo fuzz run prometheus`: the invariant is `backstop::fuzzing::prometheus` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::prometheus(data));
