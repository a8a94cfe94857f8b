//! Fuzz target `auth_jwt`: see `auth::fuzzing::auth_jwt`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| auth::fuzzing::auth_jwt(data));
