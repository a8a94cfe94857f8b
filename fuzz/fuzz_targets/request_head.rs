//! Fuzz target `request_head`: see `sluice_fuzz_targets::request_head`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz_targets::request_head(data));
