//! The published JWS examples (RFC 7515 Appendix A, RFC 7520 §4; `tests/vectors/jose-rfc.json`)
//! through [`verify_jws`]: each verifies under its algorithm and no other, and a changed
//! message or signature does not.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use super::*;

const VECTORS: &str = include_str!("../../../../tests/vectors/jose-rfc.json");

fn bytes(v: &Value, field: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(v[field].as_str().unwrap()).unwrap()
}

fn public_key(jwk: &Value) -> PublicKey {
    match jwk["kty"].as_str().unwrap() {
        "RSA" => PublicKey::Rsa((bytes(jwk, "n"), bytes(jwk, "e"))),
        "EC" => {
            let mut point = vec![4];
            point.extend(bytes(jwk, "x"));
            point.extend(bytes(jwk, "y"));
            PublicKey::Ec(point)
        }
        other => panic!("no public key of type {other} in the vectors"),
    }
}

#[test]
fn the_rfc_examples_verify_under_their_algorithm_only() {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let vectors = all["public"].as_array().unwrap();
    assert_eq!(vectors.len(), 6);
    let algs = [
        "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
    ];
    for v in vectors {
        let (name, alg) = (v["name"].as_str().unwrap(), v["alg"].as_str().unwrap());
        let key = public_key(&v["key"]);
        let input = v["signing_input"].as_str().unwrap().as_bytes();
        let sig = bytes(v, "signature");
        assert!(verify_jws(alg, &key, input, &sig), "{name} ({alg})");
        for other in algs.iter().filter(|a| **a != alg) {
            assert!(!verify_jws(other, &key, input, &sig), "{name} under {other}");
        }
        let mut changed = input.to_vec();
        *changed.last_mut().unwrap() ^= 1;
        assert!(!verify_jws(alg, &key, &changed, &sig), "{name}: changed message");
        for i in [0, sig.len() / 2, sig.len() - 1] {
            let mut bad = sig.clone();
            bad[i] ^= 0x40;
            assert!(
                !verify_jws(alg, &key, input, &bad),
                "{name}: signature byte {i} changed"
            );
        }
        assert!(
            !verify_jws(alg, &key, input, &sig[..sig.len() - 1]),
            "{name}: short signature"
        );
    }
}

#[test]
fn a_p521_key_is_taken_only_uncompressed_and_on_the_curve() {
    let all: Value = serde_json::from_str(VECTORS).unwrap();
    let v = &all["public"][2];
    assert_eq!(v["alg"], "ES512");
    let PublicKey::Ec(point) = public_key(&v["key"]) else {
        unreachable!()
    };
    let (input, sig) = (v["signing_input"].as_str().unwrap().as_bytes(), bytes(v, "signature"));
    let mut off_curve = point.clone();
    off_curve[100] ^= 1;
    let mut compressed = vec![2 + (point[132] & 1)];
    compressed.extend(&point[1..67]);
    for (what, key) in [
        ("off the curve", off_curve),
        ("compressed", compressed),
        ("truncated", point[..132].to_vec()),
        ("empty", Vec::new()),
    ] {
        assert!(!verify_jws("ES512", &PublicKey::Ec(key), input, &sig), "{what}");
    }
    assert!(
        !verify_jws("ES512", &PublicKey::Ec(point.clone()), input, &[0u8; 132]),
        "r = s = 0"
    );
    assert!(verify_jws("ES512", &PublicKey::Ec(point), input, &sig));
}
