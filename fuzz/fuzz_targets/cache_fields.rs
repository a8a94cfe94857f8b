//! Fuzz target `cache_fields`: see `cache::fuzzing::cache_fields`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cache::fuzzing::cache_fields(data));
