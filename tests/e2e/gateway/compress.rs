//! The compress plugin and the host's streaming compression, end to end: negotiation, skip
//! rules, header hygiene, event streams flushed per event, local responses, and request-body
//! decompression with its bounds.

use std::io::{Read, Write};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Request;
use sluice_e2e::{Answer, Upstream, full, send};

use super::compress_upstream::{gateway, payload, upstream};

/// Decodes `body` by the answer's `Content-Encoding`.
fn decoded(answer: &Answer) -> Vec<u8> {
    decode(answer.header("content-encoding").unwrap_or("identity"), &answer.body)
}

fn decode(encoding: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => drop(flate2::read::GzDecoder::new(body).read_to_end(&mut out).unwrap()),
        "br" => drop(brotli::Decompressor::new(body, 4096).read_to_end(&mut out).unwrap()),
        "zstd" => out = zstd::decode_all(body).unwrap(),
        "identity" => out = body.to_vec(),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

async fn get_with(url: &str, method: &str, accept: Option<&str>) -> Answer {
    let mut req = Request::builder().method(method).uri(url);
    if let Some(accept) = accept {
        req = req.header("accept-encoding", accept);
    }
    send(req.body(full("")).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_encoding_is_negotiated_and_decodes_to_the_original() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, "{}").await;
    let url = gw.url("/payload");
    for (accept, expected) in [
        ("gzip", "gzip"),
        ("br", "br"),
        ("zstd", "zstd"),
        ("gzip, deflate, br, zstd", "br"),
        ("gzip;q=0, br;q=0.5", "br"),
        ("br;q=0.2, zstd;q=0.9, gzip;q=0.5", "zstd"),
        ("*", "br"),
        ("x-gzip", "gzip"),
    ] {
        let answer = get_with(&url, "GET", Some(accept)).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding"), Some(expected), "{accept}");
        assert!(answer.header("content-length").is_none(), "{accept}");
        assert!(
            answer.body.len() < payload().len() / 3,
            "{accept}: {} bytes",
            answer.body.len()
        );
        assert_eq!(decoded(&answer), payload(), "{accept}");
        assert_eq!(answer.header("vary"), Some("Origin, Accept-Encoding"));
        assert_eq!(answer.header("etag"), Some("W/\"v1\""));
        assert_eq!(answer.header("accept-ranges"), None);
    }
    let levels = gateway(upstream().await, events.addr, "{ levels = { gzip = 1, zstd = 19 } }").await;
    for accept in ["gzip", "zstd"] {
        let answer = get_with(&levels.url("/payload"), "GET", Some(accept)).await;
        assert_eq!(answer.header("content-encoding"), Some(accept));
        assert_eq!(decoded(&answer), payload(), "{accept} at a configured level");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_accept_encoding_values_never_fail_the_request() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, "{}").await;
    let huge = "x-made-up;q=0.5, ".repeat(300) + "gzip";
    for accept in [
        ";;;",
        "gzip;q=abc",
        "gzip;q=2",
        "identity",
        "",
        "br;q=0, gzip;q=0, zstd;q=0",
        "*;q=0",
        huge.as_str(),
    ] {
        let answer = get_with(&gw.url("/payload"), "GET", Some(accept)).await;
        assert_eq!(answer.status, 200, "{accept}");
        assert_eq!(answer.header("content-encoding"), None, "{accept}");
        assert_eq!(answer.body.to_vec(), payload(), "{accept}");
    }
    let answer = get_with(&gw.url("/payload"), "GET", Some("gzip;q=abc, zstd")).await;
    assert_eq!(
        answer.header("content-encoding"),
        Some("zstd"),
        "the valid element still counts"
    );
    let none = get_with(&gw.url("/payload"), "GET", None).await;
    assert_eq!(
        none.header("content-encoding"),
        None,
        "no Accept-Encoding: no compression"
    );
    assert_eq!(none.header("vary"), Some("Origin"));
    assert_eq!(
        none.header("etag"),
        Some("\"v1\""),
        "the strong ETag stays when nothing changes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_that_must_not_be_compressed_pass_unchanged() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, "{}").await;
    let accept = Some("gzip, br, zstd");
    let encoded = get_with(&gw.url("/encoded"), "GET", accept).await;
    assert_eq!(encoded.header("content-encoding"), Some("gzip"), "not encoded twice");
    assert_eq!(decode("gzip", &encoded.body), payload());
    for path in ["/no-transform", "/partial", "/small", "/png"] {
        let answer = get_with(&gw.url(path), "GET", accept).await;
        assert_eq!(answer.header("content-encoding"), None, "{path}");
        assert!(answer.header("content-length").is_some(), "{path}");
        assert_eq!(answer.header("vary"), None, "{path}");
    }
    for (path, status) in [("/status/204", 204), ("/status/304", 304)] {
        let answer = get_with(&gw.url(path), "GET", accept).await;
        assert_eq!(answer.status, status);
        assert_eq!(answer.header("content-encoding"), None, "{path}");
        assert!(answer.body.is_empty());
    }
    let head = get_with(&gw.url("/payload"), "HEAD", accept).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-encoding"), None, "HEAD");
    assert_eq!(head.header("vary"), Some("Origin"), "HEAD");
    let small_but_allowed = gateway(upstream().await, events.addr, "{ min_size = 0 }").await;
    let small = get_with(&small_but_allowed.url("/small"), "GET", accept).await;
    assert_eq!(
        small.header("content-encoding"),
        Some("br"),
        "min_size = 0 compresses all"
    );
    assert_eq!(decoded(&small), b"{\"ok\":true}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_response_is_compressed_too() {
    let events = Upstream::start().await;
    let gw = gateway(
        upstream().await,
        events.addr,
        "{ encodings = [\"gzip\"], min_size = 10 }",
    )
    .await;
    let answer = get_with(&gw.url("/respond"), "GET", Some("br, gzip")).await;
    assert_eq!(answer.status, 418);
    assert_eq!(answer.header("content-encoding"), Some("gzip"));
    assert_eq!(answer.header("content-length"), None);
    assert_eq!(decoded(&answer), b"{\"tag\":\"good\"}");
    // The plugin sees the local body's length: below the default minimum, it stays as it is.
    let small = gateway(upstream().await, events.addr, "{}").await;
    let answer = get_with(&small.url("/respond"), "GET", Some("gzip")).await;
    assert_eq!(answer.status, 418);
    assert_eq!(answer.header("content-encoding"), None);
    assert_eq!(answer.header("content-length"), Some("14"));
    assert_eq!(&answer.body[..], b"{\"tag\":\"good\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_reaches_the_client_decoded_before_the_next_is_sent() {
    let events = Upstream::start().await;
    let gw = gateway(upstream().await, events.addr, "{}").await;
    for accept in ["gzip", "br", "zstd"] {
        let req = Request::get(gw.url("/gated"))
            .header("accept-encoding", accept)
            .body(full(""))
            .unwrap();
        let resp = sluice_e2e::client().request(req).await.unwrap();
        assert_eq!(resp.headers()["content-encoding"], accept);
        let mut body = resp.into_body();
        let mut received = Vec::new();
        // The upstream holds the second event until released: whatever arrives now must
        // decode to the whole first event.
        let first = loop {
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("the first event must arrive while the upstream holds the second")
                .unwrap()
                .unwrap();
            received.extend_from_slice(&frame.into_data().unwrap());
            let so_far = decode_prefix(accept, &received);
            if so_far.len() >= b"data: event 1\n\n".len() {
                break so_far;
            }
        };
        assert_eq!(first, b"data: event 1\n\n", "{accept}");
        events.release();
        received.extend_from_slice(&body.collect().await.unwrap().to_bytes());
        assert_eq!(
            decode(accept, &received),
            b"data: event 1\n\ndata: event 2\n\ndata: event 3\n\n",
            "{accept}"
        );
    }
}

/// Decodes a flushed prefix of a stream (the end has not arrived yet).
fn decode_prefix(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut sink: Box<dyn Write> = match encoding {
        "gzip" => Box::new(flate2::write::GzDecoder::new(&mut out)),
        "br" => Box::new(brotli::DecompressorWriter::new(&mut out, 4096)),
        _ => Box::new(zstd::stream::write::Decoder::new(&mut out).unwrap()),
    };
    sink.write_all(bytes).unwrap();
    sink.flush().unwrap();
    drop(sink);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_that_makes_no_sense_does_not_load() {
    for (config, says) in [
        ("{ levels = { gzip = 12 } }", "levels.gzip: 12 is out of range (1..=9)"),
        ("{ encodings = [\"lz4\"] }", "unknown encoding 'lz4'"),
        ("{ min_size = -1 }", "min_size: -1 is negative"),
        (
            "{ decompress_requests = { max_ratio = 0 } }",
            "max_ratio: 0 is out of range",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        let toml = format!(
            "[upstreams.app]\ntargets = [\"127.0.0.1:9\"]\n\
             [plugins.compress]\nmodule = \"builtin:compress\"\n\
             [[routes]]\nname = \"app\"\nupstream = \"app\"\nplugins = [{{ plugin = \"compress\", config = {config} }}]\n"
        );
        std::fs::write(&path, sluice_e2e::config_text(&toml)).unwrap();
        let started = sluice_gateway::app::RunningGateway::start(sluice_gateway::state::ConfigSource::File(path)).await;
        let error = match started {
            Ok(_) => panic!("{config} loaded"),
            Err(error) => error,
        };
        assert!(error.contains(says), "{config}: {error}");
    }
}
