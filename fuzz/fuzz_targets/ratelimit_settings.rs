//! Fuzz target `ratelimit_settings`: see `ratelimit::fuzzing::ratelimit_settings`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| ratelimit::fuzzing::ratelimit_settings(data));
