#![no_main]
//! `cargo fuzz run octopus_webhook`: the invariant is `backstop::fuzzing::octopus_webhook` (fuzz/README.md).
libfuzzer_sys::fuzz_target!(|data: &[u8]| backstop::fuzzing::octopus_webhook(data));
