//! Fuzz target `verdict`: see `sluice_runtime::fuzzing::packed_verdict`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice_runtime::fuzzing::packed_verdict(data));
