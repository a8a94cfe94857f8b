//! The auth plugin with JWTs: every supported algorithm, the attacks and malformations the
//! issue names, claim checks at the skew boundaries, and keys fetched from a JWKS endpoint
//! that rotates, fails and serves garbage.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_artifacts as wasm;
use sluice_e2e::jwt::{JwksServer, TestKey, b64, hmac_secret, now_s};
use sluice_e2e::{Answer, Gateway, Upstream, full, send, start_gateway};

const ISSUER: &str = "https://issuer.test";

/// `jwk` as a TOML inline table.
pub(super) fn toml_table(jwk: &Value) -> String {
    let fields: Vec<String> = jwk
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    format!("{{ {} }}", fields.join(", "))
}

/// A gateway whose `/api` route takes JWTs verified with `jwt` (a TOML inline table's
/// contents) and requires scope `read`.
pub(super) async fn gateway(upstream: &Upstream, jwt: &str, grants: &str) -> Gateway {
    start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.auth]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\ngrants = {{ kv = true, audit = true{grants} }}\n\
         [[routes]]\nname = \"api\"\nmatch = {{ path_prefix = \"/api\" }}\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"auth\", config = {{ secret = \"jwt-tests-api-key-secret\", lookup_statement = \"\", \
         touch_statement = \"\", required_scopes = [\"read\"], jwt = {{ {jwt} }} }} }}]\n",
        upstream.addr,
        wasm::AUTH
    ))
    .await
}

pub(super) async fn bearer(gw: &Gateway, token: &str) -> Answer {
    send(
        hyper::Request::get(gw.url("/api/x"))
            .header("authorization", format!("Bearer {token}"))
            // Spoofed identity headers: replaced or removed before the upstream sees them.
            .header("x-auth-key-id", "7")
            .header("x-auth-subject", "evil")
            .body(full(""))
            .unwrap(),
    )
    .await
}

pub(super) fn claims() -> Value {
    let now = now_s();
    json!({ "sub": "user-1", "iss": ISSUER, "aud": "api", "exp": now + 600, "iat": now, "scope": "read write", "tier": "pro" })
}

pub(super) fn with(mut base: Value, changes: Value) -> Value {
    for (k, v) in changes.as_object().unwrap() {
        if v.is_null() {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

pub(super) const ALGS: [&str; 13] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
];

/// Keys for every algorithm, and the `jwt` config holding them: the HMAC secrets each a
/// different way (HS256 as text, HS384 as base64url, HS512 as an `oct` JWK), then the JWKs.
pub(super) fn all_keys() -> (Vec<TestKey>, String) {
    let keys: Vec<TestKey> = ALGS.iter().map(|alg| TestKey::new(alg, &alg.to_lowercase())).collect();
    let hmac_keys = keys.iter().filter(|k| k.jwk().is_none());
    let hmac: Vec<String> = hmac_keys
        .clone()
        .filter(|k| k.alg() != "HS512")
        .map(|k| {
            let secret = hmac_secret(&k.kid);
            let given = if k.alg() == "HS256" {
                format!("secret = {:?}", String::from_utf8(secret).unwrap())
            } else {
                format!("secret_b64 = {:?}", b64(&secret))
            };
            format!("{{ kid = \"{}\", alg = \"{}\", {given} }}", k.kid, k.alg())
        })
        .collect();
    let oct = hmac_keys.filter(|k| k.alg() == "HS512").map(|k| {
        format!(
            "{{ kty = \"oct\", kid = \"{}\", alg = \"HS512\", k = {:?} }}",
            k.kid,
            b64(&hmac_secret(&k.kid))
        )
    });
    let jwks: Vec<String> = oct
        .chain(keys.iter().filter_map(TestKey::jwk).map(|jwk| toml_table(&jwk)))
        .collect();
    let config = format!(
        "hmac_keys = [{}], keys = [{}], issuers = [\"{ISSUER}\"], audiences = [\"api\"]",
        hmac.join(", "),
        jwks.join(", ")
    );
    (keys, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_algorithm_verifies_and_the_identity_goes_on() {
    let upstream = Upstream::start().await;
    let (keys, config) = all_keys();
    let gw = gateway(&upstream, &config, "").await;
    for key in &keys {
        let answer = bearer(&gw, &key.token(&claims(), &json!({}))).await;
        assert_eq!(answer.status, 200, "{}: {:?}", key.alg(), answer.body);
        let seen = &answer.json()["headers"];
        assert_eq!(seen["x-auth-subject"], "user-1", "{}", key.alg());
        assert_eq!(seen["x-auth-scopes"], "read write");
        assert_eq!(seen["x-auth-tier"], "pro");
        assert!(seen.get("authorization").is_none(), "the token stays at the gateway");
        assert!(
            seen.get("x-auth-key-id").is_none(),
            "a JWT has no key id: the client's is removed"
        );
    }
    // Scopes: a token without `read` may not use the route.
    let es256 = keys.iter().find(|k| k.alg() == "ES256").unwrap();
    let token = es256.token(&with(claims(), json!({ "scope": "write" })), &json!({}));
    let answer = bearer(&gw, &token).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.json()["code"], "insufficient_scope");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_malformed_and_out_of_date_tokens_are_refused() {
    let upstream = Upstream::start().await;
    let (keys, config) = all_keys();
    let gw = gateway(&upstream, &config, "").await;
    let key = |alg: &str| keys.iter().find(|k| k.alg() == alg).unwrap();
    let es256 = key("ES256");
    let good = es256.token(&claims(), &json!({}));
    let now = now_s();
    let part = |token: &str, i: usize| token.split('.').nth(i).unwrap().to_string();

    // alg none, with and without a signature.
    let none_header = b64(json!({ "alg": "none", "typ": "JWT" }).to_string().as_bytes());
    let none = format!("{none_header}.{}.", part(&good, 1));
    // Algorithm confusion: an HS256 token keyed with the RS256 key's public JWK bytes, naming
    // that key.
    let rsa_public = key("RS256").jwk().unwrap().to_string();
    let confused = {
        let header = b64(json!({ "alg": "HS256", "kid": "rs256" }).to_string().as_bytes());
        let input = format!("{header}.{}", part(&good, 1));
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, rsa_public.as_bytes()),
            input.as_bytes(),
        );
        format!("{input}.{}", b64(mac.as_ref()))
    };
    // An ECDSA signature in DER instead of raw r||s, and one of all zeros.
    let der = {
        let raw = es256.sign(format!("{}.{}", part(&good, 0), part(&good, 1)).as_bytes());
        // The same r and s, DER-encoded (both < 2^255 here or padded with a zero byte).
        let int = |b: &[u8]| {
            let mut v = b.to_vec();
            while v.len() > 1 && v[0] == 0 {
                v.remove(0);
            }
            if v[0] & 0x80 != 0 {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        };
        let (r, s) = (int(&raw[..32]), int(&raw[32..]));
        let mut seq = vec![0x30, (r.len() + s.len()) as u8];
        seq.extend(r);
        seq.extend(s);
        format!("{}.{}.{}", part(&good, 0), part(&good, 1), b64(&seq))
    };
    let zeros = format!("{}.{}.{}", part(&good, 0), part(&good, 1), b64(&[0u8; 64]));
    let mut flipped_sig = es256.sign(b"something else");
    flipped_sig[5] ^= 1;
    let wrong_sig = format!("{}.{}.{}", part(&good, 0), part(&good, 1), b64(&flipped_sig));
    let embedded_jwk = es256.token(&claims(), &json!({ "jwk": es256.jwk().unwrap() }));
    let jku = es256.token(&claims(), &json!({ "jku": "https://evil.test/jwks" }));
    let unknown_kid = es256.token(&claims(), &json!({ "kid": "nobody" }));
    let huge = es256.token(&with(claims(), json!({ "pad": "x".repeat(9000) })), &json!({}));

    let refused = [
        ("alg none", none.clone()),
        ("alg none signed", format!("{none}{}", part(&good, 2))),
        ("HMAC with an RSA public key", confused),
        ("DER signature", der),
        ("all-zero r and s", zeros),
        ("wrong signature", wrong_sig),
        ("embedded jwk", embedded_jwk),
        ("jku header", jku),
        ("unknown kid", unknown_kid),
        ("truncated", format!("{}.{}", part(&good, 0), part(&good, 1))),
        ("cut short", good[..good.len() - 10].to_string()),
        ("not base64", format!("{}.{}.***", part(&good, 0), part(&good, 1))),
        ("oversized", huge),
        (
            "expired beyond the skew",
            es256.token(&with(claims(), json!({ "exp": now - 61 })), &json!({})),
        ),
        (
            "not yet valid beyond the skew",
            es256.token(&with(claims(), json!({ "nbf": now + 90 })), &json!({})),
        ),
        (
            "issued in the future",
            es256.token(&with(claims(), json!({ "iat": now + 90 })), &json!({})),
        ),
        (
            "wrong issuer",
            es256.token(&with(claims(), json!({ "iss": "https://other.test" })), &json!({})),
        ),
        (
            "wrong audience",
            es256.token(&with(claims(), json!({ "aud": ["web"] })), &json!({})),
        ),
        (
            "no exp",
            es256.token(&with(claims(), json!({ "exp": null })), &json!({})),
        ),
        (
            "exp not a number",
            es256.token(&with(claims(), json!({ "exp": "tomorrow" })), &json!({})),
        ),
    ];
    for (what, token) in &refused {
        let answer = bearer(&gw, token).await;
        assert_eq!(answer.status, 401, "{what}: {:?}", answer.body);
        assert_eq!(answer.json()["code"], "invalid_credentials", "{what}");
        assert_eq!(
            answer.header("www-authenticate"),
            Some("Bearer realm=\"sluice\", error=\"invalid_token\""),
            "{what}"
        );
    }
    // Inside the skew both ways; an audience list naming ours.
    let accepted = [
        ("expired within the skew", with(claims(), json!({ "exp": now - 30 }))),
        (
            "not yet valid within the skew",
            with(claims(), json!({ "nbf": now + 30 })),
        ),
        ("audience list", with(claims(), json!({ "aud": ["web", "api"] }))),
    ];
    for (what, c) in &accepted {
        let answer = bearer(&gw, &es256.token(c, &json!({}))).await;
        assert_eq!(answer.status, 200, "{what}: {:?}", answer.body);
    }
    assert_eq!(bearer(&gw, &good).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_keys_are_fetched_once_refetched_for_new_kids_and_kept_when_the_endpoint_fails() {
    let upstream = Upstream::start().await;
    let (k1, k2, k3) = (
        TestKey::new("ES256", "k1"),
        TestKey::new("RS256", "k2"),
        TestKey::new("EdDSA", "k3"),
    );
    let jwks = JwksServer::start(vec![k1.jwk().unwrap()]).await;
    let config = format!(
        "jwks_urls = [\"http://{}/jwks\"], jwks_refetch_min_s = 1, issuers = [\"{ISSUER}\"]",
        jwks.addr
    );
    let gw = gateway(&upstream, &config, ", http = { hosts = [\"127.0.0.1\"] }").await;

    assert_eq!(bearer(&gw, &k1.token(&claims(), &json!({}))).await.status, 200);
    // The start-up tick and a cold request may both have fetched; after that, none does.
    let warm = jwks.fetches();
    assert!((1..=2).contains(&warm), "{warm}");
    for n in 0..5 {
        let token = k1.token(&with(claims(), json!({ "jti": n })), &json!({}));
        assert_eq!(bearer(&gw, &token).await.status, 200);
    }
    assert_eq!(jwks.fetches(), warm, "one fetch serves every request");

    // The issuer rotates in a new key: a token naming it makes the gateway fetch again
    // (once the rate limit allows).
    jwks.keys(vec![k1.jwk().unwrap(), k2.jwk().unwrap()]);
    let new_kid = k2.token(&claims(), &json!({}));
    let mut status = 0;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        status = bearer(&gw, &new_kid).await.status;
        if status == 200 {
            break;
        }
    }
    assert_eq!(status, 200, "the new kid was fetched once the rate limit allowed");
    let after = jwks.fetches();
    assert!(after > warm && after <= warm + 2, "{warm} then {after}");
    // Unknown kids right after are refused without hammering the endpoint: at most one fetch
    // per `jwks_refetch_min_s` (1 s) while they last (a loaded machine may take seconds).
    let unknown_since = std::time::Instant::now();
    for _ in 0..5 {
        assert_eq!(bearer(&gw, &k3.token(&claims(), &json!({}))).await.status, 401);
    }
    let allowed = after + 1 + unknown_since.elapsed().as_secs();
    assert!(
        jwks.fetches() <= allowed,
        "rate-limited: {after} then {} (at most {allowed})",
        jwks.fetches()
    );

    // The endpoint serves garbage, then fails: the last good key set stays in use.
    jwks.answer(200, "<html>not json</html>".into());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = k2.token(&with(claims(), json!({ "jti": "after-garbage" })), &json!({}));
    assert_eq!(bearer(&gw, &k3.token(&claims(), &json!({}))).await.status, 401);
    assert_eq!(bearer(&gw, &again).await.status, 200);
    jwks.answer(500, "down".into());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(bearer(&gw, &k3.token(&claims(), &json!({}))).await.status, 401);
    let later = k1.token(&with(claims(), json!({ "jti": "after-failure" })), &json!({}));
    assert_eq!(bearer(&gw, &later).await.status, 200);

    // A gateway that never got a key set cannot verify: 503, not 401.
    let dead = JwksServer::start(vec![]).await;
    dead.answer(503, "down".into());
    let config = format!("jwks_urls = [\"http://{}/jwks\"]", dead.addr);
    let cold = gateway(&upstream, &config, ", http = { hosts = [\"127.0.0.1\"] }").await;
    let answer = bearer(&cold, &k1.token(&claims(), &json!({}))).await;
    assert_eq!(answer.status, 503, "{:?}", answer.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_is_refreshed_in_the_background_before_it_goes_stale() {
    let upstream = Upstream::start().await;
    let k1 = TestKey::new("ES256", "k1");
    let jwks = JwksServer::start(vec![k1.jwk().unwrap()]).await;
    let config = format!(
        "jwks_urls = [\"http://{}/jwks\"], jwks_refresh_s = 2, jwks_refetch_min_s = 1",
        jwks.addr
    );
    let gw = gateway(&upstream, &config, ", http = { hosts = [\"127.0.0.1\"] }").await;
    // The first tick (or request) fetches; then, with no request at all, ticks fetch again
    // before the set is 2 s old.
    assert_eq!(bearer(&gw, &k1.token(&claims(), &json!({}))).await.status, 200);
    let first = jwks.fetches();
    assert!(first >= 1);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        jwks.fetches() > first,
        "fetched in the background: {} then {}",
        first,
        jwks.fetches()
    );
    // A request now finds a fresh set: it does not fetch.
    let before = jwks.fetches();
    let token = k1.token(&with(claims(), json!({ "jti": "fresh" })), &json!({}));
    assert_eq!(bearer(&gw, &token).await.status, 200);
    assert_eq!(jwks.fetches(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_cached_for_one_route_never_serves_a_route_with_other_audiences() {
    let upstream = Upstream::start().await;
    let key = TestKey::new("ES256", "k1");
    let jwk = toml_table(&key.jwk().unwrap());
    let route = |name: &str, audience: &str| {
        format!(
            "[[routes]]\nname = \"{name}\"\nmatch = {{ path_prefix = \"/{name}\" }}\nupstream = \"app\"\n\
             plugins = [{{ plugin = \"auth\", config = {{ secret = \"jwt-tests-api-key-secret\", lookup_statement = \"\", \
             touch_statement = \"\", jwt = {{ keys = [{jwk}], audiences = [\"{audience}\"] }} }} }}]\n"
        )
    };
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n[plugins.auth]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         grants = {{ kv = true }}\n{}{}",
        upstream.addr,
        wasm::AUTH,
        route("api", "api"),
        route("web", "web")
    ))
    .await;
    let token = key.token(&claims(), &json!({}));
    let on = |path: &'static str| {
        send(
            hyper::Request::get(gw.url(path))
                .header("authorization", format!("Bearer {token}"))
                .body(full(""))
                .unwrap(),
        )
    };
    assert_eq!(on("/api/x").await.status, 200);
    assert_eq!(on("/api/x").await.status, 200, "now from the cache");
    assert_eq!(on("/web/x").await.status, 401, "the web route checks its own audience");
}
