#![no_main]
//! `cargo fuzz run octopus`: the invariant is `backstop::fuzzing::octopus` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::octopus(data));
