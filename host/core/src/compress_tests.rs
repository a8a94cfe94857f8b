use std::io::Read;

use http_body_util::{BodyExt, StreamBody};

use hyper::body::Frame;

use super::*;
use crate::body::full;

fn decode(encoding: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        "gzip" => {
            flate2::read::GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        }
        "br" => {
            brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out).unwrap();
        }
        "zstd" => out = zstd::decode_all(bytes).unwrap(),
        other => panic!("unexpected encoding {other}"),
    }
    out
}

fn spec(encoding: Encoding, level: Option<i32>) -> EncodingSpec {
    EncodingSpec { encoding, level }
}

fn payload() -> Vec<u8> {
    (0..2000)
        .map(|i| format!("{{\"id\":{i},\"name\":\"item {i}\",\"tags\":[\"a\",\"b\"]}},"))
        .collect::<String>()
        .into_bytes()
}

fn response(body: ProxyBody, headers: &[(&str, &str)]) -> Response<ProxyBody> {
    let mut resp = Response::new(body);
    for (n, v) in headers {
        resp.headers_mut().append(
            hyper::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

#[tokio::test]
async fn every_encoding_round_trips_and_the_headers_follow() {
    let original = payload();
    for encoding in [Encoding::Gzip, Encoding::Br, Encoding::Zstd] {
        let resp = response(
            full(original.clone()),
            &[
                ("content-length", &original.len().to_string()),
                ("etag", "\"v1\""),
                ("vary", "Origin"),
                ("accept-ranges", "bytes"),
            ],
        );
        let resp = apply(Some(&spec(encoding, None)), "GET", resp);
        let headers = resp.headers().clone();
        assert_eq!(headers[CONTENT_ENCODING], token(encoding));
        assert!(headers.get(CONTENT_LENGTH).is_none());
        assert!(headers.get(ACCEPT_RANGES).is_none());
        assert_eq!(headers[VARY], "Origin, Accept-Encoding");
        assert_eq!(headers[ETAG], "W/\"v1\"");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            body.len() < original.len() / 4,
            "{encoding:?} compressed to {}",
            body.len()
        );
        assert_eq!(decode(token(encoding), &body), original);
    }
}

#[tokio::test]
async fn invalid_levels_are_clamped_into_the_encodings_range() {
    assert_eq!(effective_level(&spec(Encoding::Gzip, Some(42))), 9);
    assert_eq!(effective_level(&spec(Encoding::Gzip, Some(-3))), 1);
    assert_eq!(effective_level(&spec(Encoding::Br, Some(99))), 11);
    assert_eq!(effective_level(&spec(Encoding::Zstd, Some(22))), 19);
    assert_eq!(effective_level(&spec(Encoding::Zstd, None)), 3);
    let resp = apply(
        Some(&spec(Encoding::Zstd, Some(i32::MIN))),
        "GET",
        response(full(payload()), &[]),
    );
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(decode("zstd", &body), payload());
}

#[tokio::test]
async fn responses_that_must_not_be_compressed_pass_through() {
    type Case = (&'static str, u16, &'static [(&'static str, &'static str)]);
    let cases: [Case; 7] = [
        ("POST", 200, &[("content-type", "application/grpc")]),
        ("GET", 200, &[("content-encoding", "gzip")]),
        ("GET", 200, &[("content-encoding", "identity, br")]),
        ("HEAD", 200, &[]),
        ("GET", 204, &[]),
        ("GET", 304, &[]),
        ("GET", 206, &[]),
    ];
    for (method, status, headers) in cases {
        let mut resp = response(full("plain"), headers);
        *resp.status_mut() = StatusCode::from_u16(status).unwrap();
        let before = resp.headers().clone();
        let resp = apply(Some(&spec(Encoding::Gzip, None)), method, resp);
        assert_eq!(resp.headers(), &before, "{method} {status} {headers:?}");
        assert_eq!(&resp.into_body().collect().await.unwrap().to_bytes()[..], b"plain");
    }
    let identity = apply(
        Some(&spec(Encoding::Br, None)),
        "GET",
        response(full("x"), &[("content-encoding", "identity"), ("vary", "*")]),
    );
    assert_eq!(identity.headers()[CONTENT_ENCODING], "br");
    assert_eq!(identity.headers()[VARY], "*", "Vary: * already covers it");
}

#[tokio::test]
async fn event_streams_are_flushed_after_every_frame() {
    for encoding in [Encoding::Gzip, Encoding::Br, Encoding::Zstd] {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(4);
        let stream = tokio_stream_from(rx);
        let resp = response(stream, &[("content-type", "text/event-stream; charset=utf-8")]);
        let mut body = apply(Some(&spec(encoding, None)), "GET", resp).into_body();
        tx.send(Ok(Frame::data(Bytes::from_static(b"data: one\n\n"))))
            .await
            .unwrap();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        // The flushed prefix decodes to the first event without the end of the stream.
        let partial = match encoding {
            Encoding::Gzip => {
                let mut d = flate2::write::GzDecoder::new(Vec::new());
                d.write_all(&first).unwrap();
                d.flush().unwrap();
                d.get_ref().clone()
            }
            Encoding::Br => {
                let mut d = brotli::DecompressorWriter::new(Vec::new(), 4096);
                d.write_all(&first).unwrap();
                d.flush().unwrap();
                d.get_ref().clone()
            }
            Encoding::Zstd => {
                let mut d = zstd::stream::write::Decoder::new(Vec::new()).unwrap();
                d.write_all(&first).unwrap();
                d.flush().unwrap();
                d.get_ref().clone()
            }
        };
        assert_eq!(&partial[..], b"data: one\n\n", "{encoding:?}");
        tx.send(Ok(Frame::data(Bytes::from_static(b"data: two\n\n"))))
            .await
            .unwrap();
        drop(tx);
        let mut all = first.to_vec();
        all.extend_from_slice(&body.collect().await.unwrap().to_bytes());
        assert_eq!(decode(token(encoding), &all), b"data: one\n\ndata: two\n\n");
    }
}

/// A body fed frame by frame from a channel.
fn tokio_stream_from(mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>) -> ProxyBody {
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    StreamBody::new(stream).boxed()
}
