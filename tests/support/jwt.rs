//! Minting JWTs for the tests with ring (RSA keys from `openssl genpkey`, since ring cannot
//! make them), the matching public JWKs, and a JWKS server the test can change or break.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair};
use serde_json::{Value, json};

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key for one algorithm, with its `kid`.
pub enum Signer {
    /// HS256/384/512.
    Hmac(ring::hmac::Key, &'static str),
    /// RS256/384/512 or PS256/384/512.
    Rsa(signature::RsaKeyPair, &'static str),
    /// ES256 or ES384.
    Ecdsa(signature::EcdsaKeyPair, &'static str),
    /// ES512 (ring has no P-521: the p521 crate).
    P521(p521::ecdsa::SigningKey),
    /// EdDSA.
    Ed25519(signature::Ed25519KeyPair),
}

/// A key that signs tokens, and what names it.
pub struct TestKey {
    /// The `kid`.
    pub kid: String,
    /// The signer.
    pub signer: Signer,
}

/// A fresh 2048-bit RSA key, DER (PKCS#1 RSAPrivateKey: what `genpkey -outform DER` writes).
fn rsa_der() -> Vec<u8> {
    let out = std::process::Command::new("openssl")
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
        .expect("openssl is installed on these machines");
    assert!(out.status.success(), "openssl genpkey failed");
    out.stdout
}

impl TestKey {
    /// A key for `alg` named `kid` (HMAC secrets are 48 bytes of `secret_byte`).
    pub fn new(alg: &'static str, kid: &str) -> Self {
        let rng = SystemRandom::new();
        let signer = match alg {
            "HS256" | "HS384" | "HS512" => {
                let algo = match alg {
                    "HS256" => ring::hmac::HMAC_SHA256,
                    "HS384" => ring::hmac::HMAC_SHA384,
                    _ => ring::hmac::HMAC_SHA512,
                };
                Signer::Hmac(ring::hmac::Key::new(algo, &hmac_secret(kid)), alg)
            }
            "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
                Signer::Rsa(signature::RsaKeyPair::from_der(&rsa_der()).unwrap(), alg)
            }
            "ES256" | "ES384" => {
                let algo = if alg == "ES256" {
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING
                } else {
                    &signature::ECDSA_P384_SHA384_FIXED_SIGNING
                };
                let pkcs8 = signature::EcdsaKeyPair::generate_pkcs8(algo, &rng).unwrap();
                Signer::Ecdsa(
                    signature::EcdsaKeyPair::from_pkcs8(algo, pkcs8.as_ref(), &rng).unwrap(),
                    alg,
                )
            }
            "ES512" => Signer::P521(p521::ecdsa::SigningKey::random(
                &mut p521::elliptic_curve::rand_core::OsRng,
            )),
            "EdDSA" => {
                let pkcs8 = signature::Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
                Signer::Ed25519(signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
            }
            other => panic!("no test key for {other}"),
        };
        TestKey {
            kid: kid.to_string(),
            signer,
        }
    }

    /// The algorithm name.
    pub fn alg(&self) -> &'static str {
        match &self.signer {
            Signer::Hmac(_, a) | Signer::Rsa(_, a) | Signer::Ecdsa(_, a) => a,
            Signer::P521(_) => "ES512",
            Signer::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK (none for HMAC keys).
    pub fn jwk(&self) -> Option<Value> {
        Some(match &self.signer {
            Signer::Hmac(..) => return None,
            Signer::Rsa(key, alg) => {
                let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(key.public());
                json!({
                    "kty": "RSA", "kid": self.kid, "alg": alg, "use": "sig",
                    "n": b64(&parts.n), "e": b64(&parts.e),
                })
            }
            Signer::Ecdsa(key, alg) => {
                let point = key.public_key().as_ref();
                let half = (point.len() - 1) / 2;
                json!({
                    "kty": "EC", "kid": self.kid, "alg": alg,
                    "crv": if *alg == "ES256" { "P-256" } else { "P-384" },
                    "x": b64(&point[1..1 + half]), "y": b64(&point[1 + half..]),
                })
            }
            Signer::P521(key) => {
                let point = p521::ecdsa::VerifyingKey::from(key).to_encoded_point(false);
                json!({
                    "kty": "EC", "kid": self.kid, "alg": "ES512", "crv": "P-521",
                    "x": b64(point.x().unwrap()), "y": b64(point.y().unwrap()),
                })
            }
            Signer::Ed25519(key) => json!({
                "kty": "OKP", "kid": self.kid, "alg": "EdDSA", "crv": "Ed25519",
                "x": b64(key.public_key().as_ref()),
            }),
        })
    }

    /// The signature of `input` in JWS form.
    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Hmac(key, _) => ring::hmac::sign(key, input).as_ref().to_vec(),
            Signer::Rsa(key, alg) => {
                let padding: &dyn signature::RsaEncoding = match *alg {
                    "RS256" => &signature::RSA_PKCS1_SHA256,
                    "RS384" => &signature::RSA_PKCS1_SHA384,
                    "RS512" => &signature::RSA_PKCS1_SHA512,
                    "PS256" => &signature::RSA_PSS_SHA256,
                    "PS384" => &signature::RSA_PSS_SHA384,
                    _ => &signature::RSA_PSS_SHA512,
                };
                let mut sig = vec![0; key.public().modulus_len()];
                key.sign(padding, &rng, input, &mut sig).unwrap();
                sig
            }
            Signer::Ecdsa(key, _) => key.sign(&rng, input).unwrap().as_ref().to_vec(),
            Signer::P521(key) => {
                let sig: p521::ecdsa::Signature = p521::ecdsa::signature::Signer::sign(key, input);
                sig.to_vec()
            }
            Signer::Ed25519(key) => key.sign(input).as_ref().to_vec(),
        }
    }

    /// A token with `claims`, this key's `alg` and `kid` in the header (plus `extra` header
    /// entries).
    pub fn token(&self, claims: &Value, extra: &Value) -> String {
        let mut header = json!({ "alg": self.alg(), "typ": "JWT", "kid": self.kid });
        if let (Some(h), Some(e)) = (header.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                h.insert(k.clone(), v.clone());
            }
        }
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self.sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }
}

impl TestKey {
    /// The signing key of a private JWK (RSA for `alg` RS*/PS*, EC P-521, or oct for HS256),
    /// such as the published keys of RFC 7520 §3; `kid` is the JWK's.
    pub fn from_private_jwk(jwk: &Value, alg: &'static str) -> Self {
        let part = |name: &str| URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap();
        let signer = match jwk["kty"].as_str().unwrap() {
            "RSA" => {
                let components = ring::rsa::KeyPairComponents {
                    public_key: ring::rsa::PublicKeyComponents {
                        n: part("n"),
                        e: part("e"),
                    },
                    d: part("d"),
                    p: part("p"),
                    q: part("q"),
                    dP: part("dp"),
                    dQ: part("dq"),
                    qInv: part("qi"),
                };
                Signer::Rsa(signature::RsaKeyPair::from_components(&components).unwrap(), alg)
            }
            "EC" => Signer::P521(p521::ecdsa::SigningKey::from_slice(&part("d")).unwrap()),
            "oct" => Signer::Hmac(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &part("k")), alg),
            other => panic!("no signer for a {other} JWK"),
        };
        TestKey {
            kid: jwk["kid"].as_str().unwrap().to_string(),
            signer,
        }
    }
}

/// The HMAC secret of key `kid` in these tests (48 bytes).
pub fn hmac_secret(kid: &str) -> Vec<u8> {
    format!("{kid}-hmac-secret-for-the-e2e-tests-0123456789abcdef").into_bytes()[..48].to_vec()
}

/// Seconds since the epoch.
pub fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A JWKS endpoint the test controls: what it answers, and how often it was asked.
pub struct JwksServer {
    /// Where it listens; the document is at `/jwks`.
    pub addr: SocketAddr,
    answer: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicU64>,
}

impl JwksServer {
    /// Serves `{"keys": keys}`.
    pub async fn start(keys: Vec<Value>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let answer = Arc::new(Mutex::new((200, json!({ "keys": keys }).to_string())));
        let fetches = Arc::new(AtomicU64::new(0));
        let (state, count) = (answer.clone(), fetches.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, count) = (state.clone(), count.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_req| {
                        count.fetch_add(1, Ordering::SeqCst);
                        let (status, body) = state.lock().clone();
                        async move {
                            let mut resp = hyper::Response::new(Full::new(bytes::Bytes::from(body)));
                            *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        JwksServer { addr, answer, fetches }
    }

    /// Serves `status` with `body` from now on.
    pub fn answer(&self, status: u16, body: String) {
        *self.answer.lock() = (status, body);
    }

    /// Serves `{"keys": keys}` from now on.
    pub fn keys(&self, keys: Vec<Value>) {
        self.answer(200, json!({ "keys": keys }).to_string());
    }

    /// Requests received.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }
}
