//! Fuzz target `gpu_router_request`: see `gpu_router::fuzzing::gpu_router_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gpu_router::fuzzing::gpu_router_request(data));
