//! Fuzz target `spill_line`: see `sluice_fuzz_targets::spill_line`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_fuzz_targets::spill_line(data));
