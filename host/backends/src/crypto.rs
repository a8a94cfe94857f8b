//! `crypto`: signature verification with ring, natively, on the plugin's data. Always
//! granted: it reaches nothing outside the call.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use sluice_bindings::sluice::plugin::crypto::{Algorithm, PublicKey};

/// Whether `sig` is `key`'s signature of `msg` under `alg`.
pub fn verify(alg: Algorithm, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    match (alg, key) {
        (Algorithm::RsaPkcs1Sha256, PublicKey::Rsa((n, e))) => {
            rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e, msg, sig)
        }
        (Algorithm::RsaPkcs1Sha384, PublicKey::Rsa((n, e))) => {
            rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e, msg, sig)
        }
        (Algorithm::RsaPkcs1Sha512, PublicKey::Rsa((n, e))) => {
            rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e, msg, sig)
        }
        (Algorithm::RsaPssSha256, PublicKey::Rsa((n, e))) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e, msg, sig),
        (Algorithm::EcdsaP256Sha256, PublicKey::Ec(point)) => {
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg, sig)
                .is_ok()
        }
        (Algorithm::EcdsaP384Sha384, PublicKey::Ec(point)) => {
            UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
                .verify(msg, sig)
                .is_ok()
        }
        (Algorithm::Ed25519, PublicKey::Ed25519(key)) => UnparsedPublicKey::new(&signature::ED25519, key)
            .verify(msg, sig)
            .is_ok(),
        _ => false,
    }
}

fn rsa(params: &'static signature::RsaParameters, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    RsaPublicKeyComponents { n, e }.verify(params, msg, sig).is_ok()
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{self, KeyPair};

    use super::*;

    #[test]
    fn signatures_verify_only_with_their_key_and_algorithm() {
        let rng = SystemRandom::new();
        let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap();
        let sig = pair.sign(&rng, b"message").unwrap();
        let key = PublicKey::Ec(pair.public_key().as_ref().to_vec());
        assert!(verify(Algorithm::EcdsaP256Sha256, &key, b"message", sig.as_ref()));
        assert!(!verify(Algorithm::EcdsaP256Sha256, &key, b"messagf", sig.as_ref()));
        assert!(!verify(Algorithm::EcdsaP384Sha384, &key, b"message", sig.as_ref()));
        assert!(!verify(Algorithm::EcdsaP256Sha256, &key, b"message", &[0u8; 64]));
        assert!(!verify(Algorithm::Ed25519, &key, b"message", sig.as_ref()));
        let ed =
            signature::Ed25519KeyPair::from_pkcs8(signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
                .unwrap();
        let ed_key = PublicKey::Ed25519(ed.public_key().as_ref().to_vec());
        assert!(verify(Algorithm::Ed25519, &ed_key, b"m", ed.sign(b"m").as_ref()));
        assert!(!verify(
            Algorithm::RsaPkcs1Sha256,
            &ed_key,
            b"m",
            ed.sign(b"m").as_ref()
        ));
    }
}
