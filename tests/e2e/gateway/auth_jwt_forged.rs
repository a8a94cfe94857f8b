//! The auth plugin against published and forged tokens: the keys of RFC 7520 §3 (binary HMAC
//! key, RSA for RS256 and PS384, P-521) verify tokens they sign, and a corpus generated from a
//! good token of every algorithm (algorithm swaps, key confusion, altered signatures, payloads
//! and key ids) is refused to the last token.

use serde_json::{Value, json};
use sluice_e2e::jwt::{TestKey, b64};
use sluice_e2e::{Gateway, Upstream};

use super::auth_jwt::{ALGS, all_keys, bearer, claims, gateway, toml_table, with};

const VECTORS: &str = include_str!("../../vectors/jose-rfc.json");

/// `jwk` without its private members, with `extra` members added.
fn public(jwk: &Value, extra: Value) -> Value {
    let mut jwk = jwk.clone();
    let fields = jwk.as_object_mut().unwrap();
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        fields.remove(private);
    }
    fields.extend(extra.as_object().unwrap().clone());
    jwk
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rfc_7520_keys_verify_tokens_signed_with_them() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let keys = &vectors["keys"];
    let upstream = Upstream::start().await;
    // One RSA key under two algorithms (two entries, each bound to one), the P-521 key under
    // the same kid, and the binary HMAC key as an oct JWK.
    let configured = [
        public(&keys["rsa"], json!({ "alg": "PS384" })),
        public(&keys["rsa"], json!({ "alg": "RS256" })),
        public(&keys["ec"], json!({})),
        keys["oct"].clone(),
    ];
    let config = format!(
        "keys = [{}], issuers = [\"https://issuer.test\"], audiences = [\"api\"]",
        configured.iter().map(toml_table).collect::<Vec<_>>().join(", ")
    );
    let gw = gateway(&upstream, &config, "").await;
    let signers = [
        TestKey::from_private_jwk(&keys["rsa"], "PS384"),
        TestKey::from_private_jwk(&keys["rsa"], "RS256"),
        TestKey::from_private_jwk(&keys["ec"], "ES512"),
        TestKey::from_private_jwk(&keys["oct"], "HS256"),
    ];
    for key in &signers {
        let answer = bearer(&gw, &key.token(&claims(), &json!({}))).await;
        assert_eq!(answer.status, 200, "{} ({}): {:?}", key.alg(), key.kid, answer.body);
        assert_eq!(answer.json()["headers"]["x-auth-subject"], "user-1");
    }
    // The RSA key is not an RS384 key: a token it signs that way names an algorithm no
    // configured key of its kid has.
    let rs384 = TestKey::from_private_jwk(&keys["rsa"], "RS384");
    assert_eq!(bearer(&gw, &rs384.token(&claims(), &json!({}))).await.status, 401);
}

/// The parts of a compact token.
fn parts(token: &str) -> (String, String, Vec<u8>) {
    let mut it = token.split('.');
    let (h, p, s) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    let sig = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, s).unwrap();
    (h.to_string(), p.to_string(), sig)
}

/// `token`'s header with `changes` applied (null removes), re-encoded.
fn header_with(token: &str, changes: Value) -> String {
    let (h, ..) = parts(token);
    let decoded = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, h).unwrap();
    let header: Value = serde_json::from_slice(&decoded).unwrap();
    b64(with(header, changes).to_string().as_bytes())
}

/// Forgeries of `key`'s good token: every other algorithm name (and `none` spellings) on its
/// signature, HMAC tokens keyed with each public key's JWK text or raw bytes, altered, cut,
/// extended, empty and transplanted signatures, an altered payload, another key's kid.
fn forgeries(key: &TestKey, all: &[TestKey]) -> Vec<(String, String)> {
    let good = key.token(&claims(), &json!({}));
    let (h, p, sig) = parts(&good);
    let mut out = Vec::new();
    let names = ALGS
        .iter()
        .copied()
        .chain(["none", "None", "NONE", "nOnE", "hs256", "", "ES256K", "RS1"]);
    for alg in names.filter(|a| *a != key.alg()) {
        let header = header_with(&good, json!({ "alg": alg }));
        out.push((
            format!("alg {alg:?} on its signature"),
            format!("{header}.{p}.{}", b64(&sig)),
        ));
        out.push((format!("alg {alg:?}, no signature"), format!("{header}.{p}.")));
    }
    if let Some(jwk) = key.jwk() {
        let raw = ["n", "x"].iter().find_map(|f| jwk[*f].as_str()).unwrap().to_string();
        for (secret, what) in [(jwk.to_string(), "its JWK text"), (raw, "its raw key")] {
            for (alg, ring_alg) in [
                ("HS256", ring::hmac::HMAC_SHA256),
                ("HS384", ring::hmac::HMAC_SHA384),
                ("HS512", ring::hmac::HMAC_SHA512),
            ] {
                let input = format!("{}.{p}", header_with(&good, json!({ "alg": alg })));
                let mac = ring::hmac::sign(&ring::hmac::Key::new(ring_alg, secret.as_bytes()), input.as_bytes());
                out.push((
                    format!("{alg} keyed with {what}"),
                    format!("{input}.{}", b64(mac.as_ref())),
                ));
            }
        }
    }
    for i in [0, 1, sig.len() / 3, sig.len() / 2, sig.len() - 2, sig.len() - 1] {
        for bit in [0x01, 0x80] {
            let mut bad = sig.clone();
            bad[i] ^= bit;
            out.push((
                format!("signature byte {i} ^ {bit:#x}"),
                format!("{h}.{p}.{}", b64(&bad)),
            ));
        }
    }
    let mut longer = sig.clone();
    longer.push(0);
    for (what, bad) in [
        ("signature cut by a byte", &sig[..sig.len() - 1]),
        ("signature with a byte more", &longer[..]),
        ("empty signature", &[][..]),
        ("all-zero signature", &vec![0u8; sig.len()][..]),
    ] {
        out.push((what.to_string(), format!("{h}.{p}.{}", b64(bad))));
    }
    let other_claims = key.token(&with(claims(), json!({ "sub": "admin" })), &json!({}));
    out.push((
        "a signature of other claims".into(),
        format!("{h}.{}.{}", parts(&other_claims).1, b64(&sig)),
    ));
    let (_, _, other_sig) = parts(&other_claims);
    out.push((
        "the other claims' signature transplanted".into(),
        format!("{h}.{p}.{}", b64(&other_sig)),
    ));
    for other in all.iter().filter(|k| k.kid != key.kid) {
        let header = header_with(&good, json!({ "kid": other.kid }));
        out.push((format!("kid of {}", other.alg()), format!("{header}.{p}.{}", b64(&sig))));
    }
    out.into_iter()
        .map(|(what, t)| (format!("{}: {what}", key.alg()), t))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_corpus_of_forged_tokens_is_refused() {
    let upstream = Upstream::start().await;
    let (keys, config) = all_keys();
    let gw: Gateway = gateway(&upstream, &config, "").await;
    let corpus: Vec<(String, String)> = keys.iter().flat_map(|k| forgeries(k, &keys)).collect();
    assert!(corpus.len() > 13 * 40, "{} forgeries", corpus.len());
    for (what, token) in &corpus {
        let answer = bearer(&gw, token).await;
        assert_eq!(answer.status, 401, "{what}: {token}: {:?}", answer.body);
        assert_eq!(answer.json()["code"], "invalid_credentials", "{what}");
    }
    // The good tokens still pass: refusals leave nothing behind that blocks them.
    for key in &keys {
        let answer = bearer(&gw, &key.token(&claims(), &json!({}))).await;
        assert_eq!(answer.status, 200, "{}: {:?}", key.alg(), answer.body);
    }
}
