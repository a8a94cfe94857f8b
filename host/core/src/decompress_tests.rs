use http_body_util::BodyExt;

use super::*;
use crate::body::full;

fn encode(encoding: &str, data: &[u8]) -> Vec<u8> {
    crate::compress::encode_all(encoding, data).expect("a known coding")
}

fn directive(max_bytes: u64, max_ratio: u32) -> Option<DecompressRequest> {
    Some(DecompressRequest { max_bytes, max_ratio })
}

fn headers(encoding: &str, len: usize) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_ENCODING, encoding.parse().unwrap());
    h.insert(CONTENT_LENGTH, len.into());
    h
}

/// Decodes `body` sent with `encoding` under the bounds; the decoded bytes or the refusal.
async fn run(encoding: &str, body: Vec<u8>, max_bytes: u64, max_ratio: u32) -> Result<Bytes, Refusal> {
    let mut h = headers(encoding, body.len());
    let (decoded, decoding) = request(directive(max_bytes, max_ratio), &mut h, full(body), u64::MAX, "r")
        .unwrap_or_else(|_| panic!("{encoding} is supported"));
    assert!(h.get(CONTENT_ENCODING).is_none() && h.get(CONTENT_LENGTH).is_none());
    match decoded.collect().await {
        Ok(c) => {
            assert!(decoding.refusal().is_none());
            Ok(c.to_bytes())
        }
        Err(_) => Err(decoding.refusal().cloned().expect("an error comes with its refusal")),
    }
}

fn json() -> Vec<u8> {
    (0..500)
        .map(|i| format!("{{\"n\":{i},\"s\":\"value {i}\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

#[tokio::test]
async fn every_encoding_decodes_to_the_original() {
    for encoding in ["gzip", "x-gzip", "deflate", "br", "zstd"] {
        let scheme = if encoding == "x-gzip" { "gzip" } else { encoding };
        let decoded = run(encoding, encode(scheme, &json()), 1 << 20, 100).await.unwrap();
        assert_eq!(decoded, json(), "{encoding}");
    }
}

#[tokio::test]
async fn a_bomb_is_stopped_at_the_byte_bound() {
    let zeros = vec![0u8; 8 << 20];
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        let bomb = encode(encoding, &zeros);
        match run(encoding, bomb, 64 << 10, u32::MAX).await {
            Err(Refusal::TooLarge(limit)) => assert_eq!(limit, 64 << 10),
            other => panic!("{encoding}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_ratio_bound_stops_a_body_under_the_byte_bound() {
    let zeros = vec![0u8; 256 << 10];
    for encoding in ["gzip", "br", "zstd"] {
        match run(encoding, encode(encoding, &zeros), 1 << 30, 20).await {
            Err(Refusal::Ratio(20)) => {}
            other => panic!("{encoding}: {other:?}"),
        }
    }
    // Ordinary JSON compresses far less than 100:1.
    assert!(run("gzip", encode("gzip", &json()), 1 << 30, 100).await.is_ok());
}

#[tokio::test]
async fn corrupt_or_truncated_bodies_are_undecodable() {
    let mut truncated = encode("gzip", &json());
    truncated.truncate(truncated.len() - 10);
    assert!(matches!(
        run("gzip", truncated, 1 << 20, 100).await,
        Err(Refusal::Undecodable { encoding: "gzip", .. })
    ));
    assert!(matches!(
        run("br", b"not brotli at all".to_vec(), 1 << 20, 100).await,
        Err(Refusal::Undecodable { encoding: "br", .. })
    ));
    let mut cut = encode("br", &json());
    cut.truncate(cut.len() / 2);
    assert!(matches!(
        run("br", cut, 1 << 20, 100).await,
        Err(Refusal::Undecodable { .. })
    ));
    let mut zstd_cut = encode("zstd", &json());
    zstd_cut.truncate(zstd_cut.len() / 2);
    assert!(matches!(
        run("zstd", zstd_cut, 1 << 20, 100).await,
        Err(Refusal::Undecodable { encoding: "zstd", .. })
    ));
    assert!(
        run("zstd", encode("zstd", &json()), 1 << 20, 100).await.is_ok(),
        "a whole frame decodes"
    );
}

#[tokio::test]
async fn no_directive_identity_and_unknown_encodings() {
    let mut h = headers("gzip", 3);
    let (body, _) = request(None, &mut h, full("abc"), 100, "r").unwrap();
    assert_eq!(h[CONTENT_ENCODING], "gzip", "no directive: untouched");
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abc");

    let mut h = headers("identity", 3);
    let (body, _) = request(directive(10, 10), &mut h, full("abc"), 100, "r").unwrap();
    assert_eq!(h[CONTENT_LENGTH], "3", "identity: untouched");
    assert_eq!(&body.collect().await.unwrap().to_bytes()[..], b"abc");

    for unknown in ["compress", "gzip, br", "lz4"] {
        let mut h = headers(unknown, 3);
        let refused = request(directive(10, 10), &mut h, full("abc"), 100, "r").unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE, "{unknown}");
        assert_eq!(h[CONTENT_ENCODING], unknown, "a refused request is left as it was");
    }
}

#[tokio::test]
async fn the_server_body_limit_caps_the_directive() {
    let mut h = headers("zstd", 0);
    let body = full(encode("zstd", &vec![b'a'; 10_000]));
    let (decoded, decoding) = request(directive(1 << 30, u32::MAX), &mut h, body, 1000, "r").unwrap();
    assert!(decoded.collect().await.is_err());
    assert!(matches!(decoding.refusal(), Some(Refusal::TooLarge(1000))));
}
