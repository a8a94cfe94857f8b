//! Request-body decompression through the gateway: the compress plugin's
//! `decompress_requests` asks the host (`body.decompress-request`) to decode the body on its
//! way upstream, within a size bound and a ratio bound.

use sluice_e2e::{Answer, Upstream, full, send};

use super::compress_upstream::{gateway, payload, upstream};

const BOUNDED: &str = "{ decompress_requests = { max_bytes = 100000, max_ratio = 50 } }";

/// `data` in `encoding`; an unknown token sends the bytes as they are.
fn encode(encoding: &str, data: &[u8]) -> Vec<u8> {
    sluice_core::compress::encode_all(encoding, data).unwrap_or_else(|| data.to_vec())
}

async fn post(gw: &sluice_e2e::Gateway, encoding: &str, body: Vec<u8>) -> Answer {
    let req = hyper::Request::post(gw.url("/receive"))
        .header("content-encoding", encoding)
        .body(full(body))
        .unwrap();
    send(req).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_request_bodies_reach_the_upstream_decoded() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, BOUNDED).await;
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        let answer = post(&gw, encoding, encode(encoding, &payload())).await;
        assert_eq!(answer.status, 200, "{encoding}: {:?}", answer.body);
        assert_eq!(answer.body.to_vec(), payload(), "{encoding}");
        assert_eq!(answer.header("x-received-encoding"), Some("none"), "{encoding}");
        assert_eq!(
            answer.header("x-received-length"),
            Some("none"),
            "{encoding}: the compressed length is not passed on"
        );
    }
    let plain = post(&gw, "identity", b"as it is".to_vec()).await;
    assert_eq!(plain.body.to_vec(), b"as it is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decompression_bomb_is_answered_413() {
    let events = Upstream::start().await;
    let bytes_only = "{ decompress_requests = { max_bytes = 100000, max_ratio = 4000000000 } }";
    let gw = gateway(upstream().await, events.addr, bytes_only).await;
    // 10 MB of zeros in about 10 KB: the byte bound (100 000) stops it.
    let bomb = encode("gzip", &vec![0u8; 10 << 20]);
    let answer = post(&gw, "gzip", bomb).await;
    assert_eq!(answer.status, 413);
    let error = answer.json();
    assert_eq!(error["error"], "body_too_large");
    assert!(error["message"].as_str().unwrap().contains("100000 bytes"), "{error}");
    assert!(error["request_id"].is_string());
    // 60 KB of zeros in a few bytes: under the byte bound, over the ratio bound (50).
    let gw = gateway(upstream().await, events.addr, BOUNDED).await;
    let dense = encode("zstd", &vec![0u8; 60_000]);
    let answer = post(&gw, "zstd", dense).await;
    assert_eq!(answer.status, 413);
    assert!(answer.json()["message"].as_str().unwrap().contains("50 times"));
    assert_eq!(
        post(&gw, "gzip", encode("gzip", b"ok")).await.status,
        200,
        "the gateway serves on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_or_broken_request_encodings_are_refused() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, BOUNDED).await;
    for encoding in ["lz4", "gzip, br", "compress"] {
        let answer = post(&gw, encoding, b"whatever".to_vec()).await;
        assert_eq!(answer.status, 415, "{encoding}");
        assert_eq!(answer.json()["error"], "unsupported_encoding");
    }
    let broken = post(&gw, "gzip", b"this is not gzip".to_vec()).await;
    assert_eq!(broken.status, 400);
    assert_eq!(broken.json()["error"], "body_undecodable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_directive_the_body_goes_as_sent() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, "{}").await;
    let body = encode("gzip", &payload());
    let answer = post(&gw, "gzip", body.clone()).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-received-encoding"), Some("gzip"));
    assert_eq!(answer.body.to_vec(), body);
}
