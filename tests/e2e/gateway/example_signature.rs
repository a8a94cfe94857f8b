//! The Rust example plugin (`examples/rust-signature`), built here the way its README says and
//! run in the gateway: signed requests reach the upstream without the signature and with the
//! key id; unsigned, tampered, expired and unknown-key ones get 401 and never reach it.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use sluice_e2e::{Answer, Gateway, Upstream, examples, full, send, start_gateway};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn signature(secret: &[u8], t: u64, key: &str, method: &str, path: &str, body: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, body);
    let message = format!("{t}.{method}.{path}.{}", hex(digest.as_ref()));
    let key_bytes = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key_bytes, message.as_bytes());
    format!("t={t},k={key},v1={}", hex(tag.as_ref()))
}

fn now_s() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

async fn post(gw: &Gateway, path: &str, body: &'static [u8], sig: Option<String>) -> Answer {
    let mut req = hyper::Request::post(gw.url(path));
    if let Some(sig) = sig {
        req = req.header("x-signature", sig);
    }
    send(req.body(full(Bytes::from_static(body))).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_verifies_request_signatures() {
    let wasm = examples::build_rust("rust-signature", "request_signature");
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.signature]\nmodule = {wasm:?}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"signature\", config = {{ keys = {{ partner-a = \"s3cret\" }} }} }}]\n",
        upstream.addr
    ))
    .await;
    let body: &[u8] = b"{\"order\": 42}";
    let good = signature(b"s3cret", now_s(), "partner-a", "POST", "/orders?x=1", body);
    let ok = post(&gw, "/orders?x=1", b"{\"order\": 42}", Some(good.clone())).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let seen = ok.json();
    assert_eq!(seen["headers"]["x-signature-key"], "partner-a", "{seen}");
    assert!(
        seen["headers"].get("x-signature").is_none(),
        "the signature is not forwarded: {seen}"
    );
    assert_eq!(upstream.hits(), 1);

    let cases = [
        (None, "signature_missing"),
        (Some("t=1,k=partner-a".to_string()), "signature_malformed"),
        (
            Some(signature(
                b"s3cret",
                now_s() - 3600,
                "partner-a",
                "POST",
                "/orders?x=1",
                body,
            )),
            "signature_expired",
        ),
        (
            Some(signature(b"s3cret", now_s(), "partner-b", "POST", "/orders?x=1", body)),
            "signature_unknown_key",
        ),
        (
            Some(signature(b"wrong", now_s(), "partner-a", "POST", "/orders?x=1", body)),
            "signature_mismatch",
        ),
    ];
    for (sig, code) in cases {
        let refused = post(&gw, "/orders?x=1", b"{\"order\": 42}", sig).await;
        assert_eq!((refused.status, refused.json()["error"].as_str().unwrap()), (401, code));
    }
    // The same signature on a different body is a mismatch.
    let tampered = post(&gw, "/orders?x=1", b"{\"order\": 43}", Some(good)).await;
    assert_eq!(tampered.json()["error"], "signature_mismatch");
    assert_eq!(upstream.hits(), 1, "no refused request reached the upstream");
}
