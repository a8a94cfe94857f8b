//! The HTTP cache's later RFC behaviours through the gateway, against a counting origin:
//! targeted fields (RFC 9213), strict HTTP-dates (RFC 9110 §5.6.7), 1xx interim responses,
//! stale answers when the upstream cannot answer at all (RFC 5861, RFC 9111 §4.2.4), byte
//! ranges from stored responses (RFC 9110 §14), HEAD freshening stored GETs (RFC 9111
//! §4.3.5) and 304s to a miss's own conditional (§4.3.2).

use std::time::Duration;

use bytes::Bytes;
use sluice_e2e::origin::{Failure, Origin};
use sluice_e2e::{full, get, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::cache::{cache_gateway, get_with, status_of, text};

#[tokio::test]
async fn rfc9213_cdn_cache_control_decides_for_the_gateway_and_goes_downstream() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let first = get(&gw.url("/cdn/a")).await;
    assert_eq!(text(&first), "/cdn/a answer 1");
    assert_eq!(
        first.header("cdn-cache-control"),
        Some("max-age=60"),
        "passed on unchanged"
    );
    assert!(status_of(&first).contains("stored"), "{}", status_of(&first));
    let second = get(&gw.url("/cdn/a")).await;
    assert_eq!(
        text(&second),
        "/cdn/a answer 1",
        "Cache-Control: no-store was overridden"
    );
    assert_eq!(second.header("cdn-cache-control"), Some("max-age=60"));
    // Turned off: Cache-Control's no-store applies.
    let off = cache_gateway(&origin, "cdn_cache_control = false", "").await;
    get(&off.url("/cdn/b")).await;
    assert_eq!(text(&get(&off.url("/cdn/b")).await), "/cdn/b answer 2");
}

#[tokio::test]
async fn rfc9213_the_gateways_own_target_field_is_followed_and_removed() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, r#"target_field = "Sluice-Cache-Control""#, "").await;
    let first = get(&gw.url("/own/a")).await;
    assert_eq!(first.header("sluice-cache-control"), None, "consumed");
    assert_eq!(first.header("cache-control"), Some("no-store"));
    let second = get(&gw.url("/own/a")).await;
    assert_eq!(text(&second), "/own/a answer 1");
    assert_eq!(second.header("sluice-cache-control"), None, "not on hits either");
    assert!(status_of(&second).contains("hit"), "{}", status_of(&second));
    // Without the setting the field is nobody's: no-store applies and it passes through.
    let plain = cache_gateway(&origin, "", "").await;
    let answer = get(&plain.url("/own/b")).await;
    assert_eq!(answer.header("sluice-cache-control"), Some("max-age=60"));
    assert_eq!(text(&get(&plain.url("/own/b")).await), "/own/b answer 2");
}

#[tokio::test]
async fn rfc9110_5_6_7_an_expires_with_doubled_spaces_is_already_expired() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let first = get(&gw.url("/baddate")).await;
    assert!(status_of(&first).contains("detail=stale"), "{}", status_of(&first));
    assert_eq!(text(&get(&gw.url("/baddate")).await), "/baddate answer 2");
}

/// An origin that sends `103 Early Hints` before each `200` (hyper's server cannot).
async fn early_hints_origin() -> (std::net::SocketAddr, std::sync::Arc<std::sync::atomic::AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        seen.drain(..end + 4);
                        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let answer = "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n\
                                      HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 2\r\n\r\nok";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, requests)
}

#[tokio::test]
async fn rfc9110_15_2_interim_responses_are_never_stored_and_the_final_one_is() {
    let (addr, requests) = early_hints_origin().await;
    let gw = sluice_e2e::start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{addr}\"]\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"cache\" }}]\n"
    ))
    .await;
    for _ in 0..2 {
        let answer = get(&gw.url("/hinted")).await;
        assert_eq!((answer.status, text(&answer).as_str()), (200, "ok"));
    }
    assert_eq!(
        requests.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the 200 was stored"
    );
}

/// A stale `/sie` (stale-if-error=60) answers for an upstream that fails as `failure` says
/// (`None`: the origin stops listening).
async fn stale_if_error_holds_when(failure: Failure, timeout_ms: u64) {
    let origin = Origin::start().await;
    let gw = sluice_e2e::start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\nrequest_timeout_ms = {timeout_ms}\nretries = 0\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"cache\" }}]\n",
        origin.addr
    ))
    .await;
    assert_eq!(text(&get(&gw.url("/sie")).await), "/sie answer 1");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    match failure {
        Failure::None => origin.stop(),
        other => origin.set_failure(other),
    }
    let answer = get(&gw.url("/sie")).await;
    assert_eq!(
        (answer.status, text(&answer).as_str()),
        (200, "/sie answer 1"),
        "{failure:?}"
    );
    let cache_status = status_of(&answer);
    assert!(
        cache_status.contains("fwd=stale") && cache_status.contains("detail=stale-if-error"),
        "{failure:?}: {cache_status}"
    );
    origin.set_failure(Failure::None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc5861_stale_if_error_covers_a_timeout_a_dropped_connection_and_a_refusal() {
    stale_if_error_holds_when(Failure::Hang, 500).await;
    stale_if_error_holds_when(Failure::Close, 5000).await;
    stale_if_error_holds_when(Failure::None, 5000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc9111_4_2_4_must_revalidate_is_never_served_stale_when_the_upstream_is_gone() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    assert_eq!(get(&gw.url("/validate/x")).await.status, 200);
    origin.stop();
    let answer = get(&gw.url("/validate/x")).await;
    assert_eq!(answer.status, 502, "{:?}", answer.body);
    assert!(status_of(&answer).contains("fwd=stale"), "{}", status_of(&answer));
    assert!(!status_of(&answer).contains("stale-if-error"));
}

fn ranged(url: &str, range: &str, if_range: Option<&str>) -> hyper::Request<sluice_e2e::Body> {
    let mut req = hyper::Request::get(url).header("range", range);
    if let Some(v) = if_range {
        req = req.header("if-range", v);
    }
    req.body(full(Bytes::new())).unwrap()
}

#[tokio::test]
async fn rfc9110_14_ranges_are_served_from_a_stored_response() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let url = gw.url("/ranged/a");
    // A miss goes upstream with its Range; the origin's 206 is passed on, not stored.
    let miss = send(ranged(&url, "bytes=0-3", None)).await;
    assert_eq!((miss.status, text(&miss).as_str()), (206, "/ran"));
    assert!(status_of(&miss).contains("fwd-status=206"), "{}", status_of(&miss));
    assert_eq!(text(&get(&url).await), "/ranged/a answer 2", "the 206 was not stored");
    // Now the whole response is stored ("/ranged/a answer 2", 18 bytes): ranges are cut from it.
    let part = send(ranged(&url, "bytes=10-15", None)).await;
    assert_eq!((part.status, text(&part).as_str()), (206, "answer"));
    assert_eq!(part.header("content-range"), Some("bytes 10-15/18"));
    assert_eq!(part.header("content-length"), Some("6"));
    assert!(status_of(&part).contains("hit"), "{}", status_of(&part));
    let suffix = send(ranged(&url, "bytes=-1", None)).await;
    assert_eq!((suffix.status, text(&suffix).as_str()), (206, "2"));
    let beyond = send(ranged(&url, "bytes=18-", None)).await;
    assert_eq!(beyond.status, 416);
    assert_eq!(beyond.header("content-range"), Some("bytes */18"));
    // If-Range: the stored ETag gives the part, another gives the whole response.
    let same = send(ranged(&url, "bytes=0-0", Some("\"r1\""))).await;
    assert_eq!((same.status, text(&same).as_str()), (206, "/"));
    let changed = send(ranged(&url, "bytes=0-0", Some("\"r0\""))).await;
    assert_eq!((changed.status, text(&changed).as_str()), (200, "/ranged/a answer 2"));
    // Several ranges: the whole response.
    let multi = send(ranged(&url, "bytes=0-0,2-2", None)).await;
    assert_eq!(multi.status, 200);
    assert_eq!(origin.hits("/ranged/a"), 2, "every range after the fill was a hit");
}

#[tokio::test]
async fn rfc9111_4_3_2_a_miss_with_a_matching_conditional_gets_304_and_the_body_is_stored() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let url = gw.url("/fresh/c");
    let answer = get_with(&url, &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(answer.status, 304, "{:?}", answer.body);
    assert_eq!(answer.header("etag"), Some("\"v1\""));
    assert!(answer.body.is_empty());
    assert!(
        origin.conditionals().is_empty(),
        "the origin got the request unconditional"
    );
    // The body was stored all the same.
    let mut whole = get(&url).await;
    for _ in 0..20 {
        if status_of(&whole).contains("hit") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        whole = get(&url).await;
    }
    assert_eq!(text(&whole), "/fresh/c answer 1");
    assert!(status_of(&whole).contains("hit"), "{}", status_of(&whole));
    // A conditional that does not match gets the whole new response.
    let other = get_with(&gw.url("/fresh/d"), &[("if-none-match", "\"v0\"")]).await;
    assert_eq!((other.status, text(&other).as_str()), (200, "/fresh/d answer 1"));
}

#[tokio::test]
async fn rfc9111_4_3_5_a_head_response_freshens_the_stored_get() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let url = gw.url("/headfresh/a");
    let first = get(&url).await;
    assert_eq!(first.header("x-hits"), Some("1"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Stale now: a HEAD goes upstream, and its answer (same ETag and length) freshens the GET.
    let head = send(hyper::Request::head(&url).body(full(Bytes::new())).unwrap()).await;
    assert_eq!((head.status, head.header("x-hits")), (200, Some("2")));
    let hit = get(&url).await;
    assert_eq!(text(&hit), "/headfresh/a answer 1", "the stored body");
    assert_eq!(hit.header("x-hits"), Some("2"), "with the HEAD's fields");
    assert!(status_of(&hit).contains("hit"), "{}", status_of(&hit));
    assert_eq!(origin.hits("/headfresh/a"), 2);
}
