//! Prints what `bench/auth-load` needs to benchmark JWT verification: an RS256 and an ES256
//! public key as TOML inline tables (JWKs) and a token signed by each (valid for a day), one
//! per line: RS256 JWK, RS256 token, ES256 JWK, ES256 token. RSA keys come from
//! `openssl genpkey` (ring cannot make them).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(alg: &str, kid: &str, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_secs();
    let header = format!(r#"{{"alg":"{alg}","typ":"JWT","kid":"{kid}"}}"#);
    let claims = format!(r#"{{"sub":"bench","scope":"read","exp":{},"iat":{now}}}"#, now + 86_400);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

fn main() {
    let rng = SystemRandom::new();
    let der = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-outform",
            "DER",
        ])
        .output()
        .expect("openssl runs");
    let rsa = signature::RsaKeyPair::from_der(&der.stdout).expect("openssl wrote an RSA key");
    let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(rsa.public());
    println!(
        r#"{{ kty = "RSA", kid = "rs", alg = "RS256", n = "{}", e = "{}" }}"#,
        b64(&parts.n),
        b64(&parts.e)
    );
    println!(
        "{}",
        token("RS256", "rs", |input| {
            let mut sig = vec![0; rsa.public().modulus_len()];
            rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, input, &mut sig)
                .expect("RSA signs");
            sig
        })
    );
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(alg, &rng).expect("P-256 key");
    let ec = signature::EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).expect("P-256 key");
    let point = ec.public_key().as_ref();
    println!(
        r#"{{ kty = "EC", kid = "es", alg = "ES256", crv = "P-256", x = "{}", y = "{}" }}"#,
        b64(&point[1..33]),
        b64(&point[33..])
    );
    println!(
        "{}",
        token("ES256", "es", |input| ec
            .sign(&rng, input)
            .expect("ECDSA signs")
            .as_ref()
            .to_vec())
    );
}
