//! Fuzz target `redis_entry`: see `sluice_fuzz_targets::redis_entry`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz_targets::redis_entry(data));
