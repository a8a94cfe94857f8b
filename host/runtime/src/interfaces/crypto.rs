//! `crypto`: signature verification (`sluice_backends::crypto`, ring and p521). Always granted.

use crate::state::HostState;
use sluice_bindings::sluice::plugin::crypto::{Algorithm, Host, PublicKey};

impl Host for HostState {
    fn verify(&mut self, algorithm: Algorithm, key: PublicKey, message: Vec<u8>, signature: Vec<u8>) -> bool {
        sluice_backends::crypto::verify(algorithm, &key, &message, &signature)
    }

    fn verify_jws(&mut self, alg: String, key: PublicKey, message: Vec<u8>, signature: Vec<u8>) -> bool {
        sluice_backends::crypto::verify_jws(&alg, &key, &message, &signature)
    }
}
