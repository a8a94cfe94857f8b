//! `crypto`: signature verification, natively, on the plugin's data (ring; P-521 with the
//! p521 crate, which ring lacks). Always granted: it reaches nothing outside the call.

use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use sluice_bindings::sluice::plugin::crypto::{Algorithm, PublicKey};

/// Whether `sig` is `key`'s signature of `msg` under `alg` (the 0.1.0 form of
/// [`verify_jws`], by enum).
pub fn verify(alg: Algorithm, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let name = match alg {
        Algorithm::RsaPkcs1Sha256 => "RS256",
        Algorithm::RsaPkcs1Sha384 => "RS384",
        Algorithm::RsaPkcs1Sha512 => "RS512",
        Algorithm::RsaPssSha256 => "PS256",
        Algorithm::EcdsaP256Sha256 => "ES256",
        Algorithm::EcdsaP384Sha384 => "ES384",
        Algorithm::Ed25519 => "EdDSA",
    };
    verify_jws(name, key, msg, sig)
}

/// Whether `sig` is `key`'s signature of `msg` under the JWS algorithm named `alg` (RFC 7518
/// §3.1, RFC 8037 for EdDSA). False for unknown and HMAC names, a key of another type, a
/// malformed key or signature (ECDSA signatures must be the fixed-size `r || s`), and RSA keys
/// outside 2048..=8192 bits.
pub fn verify_jws(alg: &str, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    use signature as s;
    match (alg, key) {
        ("RS256", PublicKey::Rsa((n, e))) => rsa(&s::RSA_PKCS1_2048_8192_SHA256, n, e, msg, sig),
        ("RS384", PublicKey::Rsa((n, e))) => rsa(&s::RSA_PKCS1_2048_8192_SHA384, n, e, msg, sig),
        ("RS512", PublicKey::Rsa((n, e))) => rsa(&s::RSA_PKCS1_2048_8192_SHA512, n, e, msg, sig),
        ("PS256", PublicKey::Rsa((n, e))) => rsa(&s::RSA_PSS_2048_8192_SHA256, n, e, msg, sig),
        ("PS384", PublicKey::Rsa((n, e))) => rsa(&s::RSA_PSS_2048_8192_SHA384, n, e, msg, sig),
        ("PS512", PublicKey::Rsa((n, e))) => rsa(&s::RSA_PSS_2048_8192_SHA512, n, e, msg, sig),
        ("ES256", PublicKey::Ec(point)) => ring_key(&s::ECDSA_P256_SHA256_FIXED, point, msg, sig),
        ("ES384", PublicKey::Ec(point)) => ring_key(&s::ECDSA_P384_SHA384_FIXED, point, msg, sig),
        ("ES512", PublicKey::Ec(point)) => es512(point, msg, sig),
        ("EdDSA", PublicKey::Ed25519(key)) => ring_key(&s::ED25519, key, msg, sig),
        _ => false,
    }
}

fn rsa(params: &'static signature::RsaParameters, n: &[u8], e: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    RsaPublicKeyComponents { n, e }.verify(params, msg, sig).is_ok()
}

fn ring_key(alg: &'static dyn signature::VerificationAlgorithm, key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(alg, key).verify(msg, sig).is_ok()
}

/// ECDSA on P-521 with SHA-512: an uncompressed point (133 bytes) and `r || s` (132 bytes).
fn es512(point: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier;
    use p521::ecdsa::{Signature, VerifyingKey};
    if point.len() != 133 || point[0] != 4 {
        return false;
    }
    let (Ok(key), Ok(sig)) = (VerifyingKey::from_sec1_bytes(point), Signature::from_slice(sig)) else {
        return false;
    };
    key.verify(msg, &sig).is_ok()
}

#[cfg(test)]
mod jws_vectors;

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
        assert!(!verify_jws("ES512", &key, b"message", sig.as_ref()));
        assert!(!verify(Algorithm::EcdsaP256Sha256, &key, b"message", &[0u8; 64]));
        assert!(!verify(Algorithm::Ed25519, &key, b"message", sig.as_ref()));
        let ed =
            signature::Ed25519KeyPair::from_pkcs8(signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
                .unwrap();
        let ed_key = PublicKey::Ed25519(ed.public_key().as_ref().to_vec());
        assert!(verify(Algorithm::Ed25519, &ed_key, b"m", ed.sign(b"m").as_ref()));
        assert!(verify_jws("EdDSA", &ed_key, b"m", ed.sign(b"m").as_ref()));
        for other in ["RS256", "HS256", "none", "eddsa", ""] {
            assert!(!verify_jws(other, &ed_key, b"m", ed.sign(b"m").as_ref()), "{other}");
        }
    }
}
