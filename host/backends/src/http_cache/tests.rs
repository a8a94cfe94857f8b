use http_body_util::BodyExt;

use bytes::Bytes;

use super::*;
use sluice_core::body::full;

fn settings() -> HttpCacheSettings {
    HttpCacheSettings {
        memory_bytes: 4 << 20,
        max_object_bytes: 1 << 20,
        memory_object_share: 0.125,
    }
}

fn cache() -> Arc<HttpCache> {
    HttpCache::new(&settings(), Arc::new(Registry::new()), None)
}

fn entry(target: &str, body: &str, tags: &[&str]) -> StoredEntry {
    StoredEntry {
        status: 200,
        headers: vec![("content-type".into(), b"text/plain".to_vec())],
        body: Bytes::from(body.to_string()),
        request_time_ms: unix_ms(),
        response_time_ms: unix_ms(),
        keep_until_ms: unix_ms() + 60_000,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        target: target.into(),
        direct: None,
        built: Default::default(),
    }
}

fn req(fields: &[(&str, &str)]) -> Fields {
    fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[tokio::test]
async fn a_stored_response_is_found_under_its_key_only() {
    let c = cache();
    c.insert("k", &[], &req(&[]), entry("/a", "hello", &[]), None).unwrap();
    assert_eq!(c.lookup("k", &req(&[])).await.unwrap().body, "hello");
    assert!(c.lookup("other", &req(&[])).await.is_none());
}

#[tokio::test]
async fn vary_selects_the_variant_by_the_request_headers() {
    let c = cache();
    let vary = ["Accept-Language".to_string()];
    c.insert(
        "k",
        &vary,
        &req(&[("accept-language", "fr")]),
        entry("/a", "bonjour", &[]),
        None,
    )
    .unwrap();
    c.insert(
        "k",
        &vary,
        &req(&[("accept-language", "en")]),
        entry("/a", "hello", &[]),
        None,
    )
    .unwrap();
    assert_eq!(
        c.lookup("k", &req(&[("Accept-Language", "fr")])).await.unwrap().body,
        "bonjour"
    );
    assert_eq!(
        c.lookup("k", &req(&[("accept-language", "en")])).await.unwrap().body,
        "hello"
    );
    assert!(c.lookup("k", &req(&[("accept-language", "de")])).await.is_none());
    assert!(c.lookup("k", &req(&[])).await.is_none(), "no header is its own variant");
}

#[tokio::test]
async fn a_response_over_the_object_limit_is_refused_and_a_large_one_skips_memory() {
    let c = cache();
    let huge = "x".repeat((1 << 20) + 1);
    assert_eq!(
        c.insert("k", &[], &req(&[]), entry("/a", &huge, &[]), None),
        Err(StoreError::TooLarge {
            size: (1 << 20) + 1,
            limit: 1 << 20
        })
    );
    // Over 1/8 of the 4 MiB memory: accepted, but not kept in memory.
    let large = "x".repeat(600 << 10);
    c.insert("k", &[], &req(&[]), entry("/a", &large, &[]), None).unwrap();
    assert!(c.lookup("k", &req(&[])).await.is_none());
}

#[tokio::test]
async fn invalidation_by_target_prefix_and_tag_drops_exactly_those() {
    let c = cache();
    c.insert("1", &[], &req(&[]), entry("/items?page=1", "1", &["items"]), None)
        .unwrap();
    c.insert("2", &[], &req(&[]), entry("/items?page=2", "2", &["items"]), None)
        .unwrap();
    c.insert("3", &[], &req(&[]), entry("/users/7", "3", &["user:7"]), None)
        .unwrap();
    c.insert("4", &[], &req(&[]), entry("/users/8", "4", &[]), None)
        .unwrap();
    assert_eq!(c.invalidate_target("/items?page=1").await, 1);
    assert!(c.lookup("1", &req(&[])).await.is_none());
    assert!(c.lookup("2", &req(&[])).await.is_some());
    assert_eq!(c.invalidate_tag("user:7").await, 1);
    assert!(c.lookup("3", &req(&[])).await.is_none());
    assert_eq!(c.invalidate_prefix("/items").await, 1);
    assert!(c.lookup("2", &req(&[])).await.is_none());
    assert_eq!(c.invalidate_prefix("/items").await, 0, "nothing left to drop");
    assert!(c.lookup("4", &req(&[])).await.is_some());
}

#[tokio::test]
async fn refresh_replaces_the_head_and_keeps_the_body() {
    let c = cache();
    c.insert("k", &[], &req(&[]), entry("/a", "body", &["t"]), None)
        .unwrap();
    let headers = vec![("etag".to_string(), b"\"v2\"".to_vec())];
    let refreshed = c
        .refresh("k", &req(&[]), headers.clone(), (5, 6), 60_000)
        .await
        .unwrap();
    assert_eq!(refreshed.body, "body");
    assert_eq!(refreshed.headers, headers);
    assert_eq!((refreshed.request_time_ms, refreshed.response_time_ms), (5, 6));
    assert_eq!(c.lookup("k", &req(&[])).await.unwrap().headers, headers);
    assert!(c.refresh("gone", &req(&[]), Vec::new(), (0, 0), 1).await.is_none());
    assert_eq!(c.invalidate_tag("t").await, 1, "a refreshed entry keeps its tags");
}

#[tokio::test]
async fn an_entry_past_its_keep_time_is_not_found() {
    let c = cache();
    let mut e = entry("/a", "old", &[]);
    e.keep_until_ms = unix_ms() - 1;
    c.insert("k", &[], &req(&[]), e, None).unwrap();
    assert!(c.lookup("k", &req(&[])).await.is_none());
}

#[tokio::test]
async fn one_background_refresh_per_key() {
    let c = cache();
    let guard = c.begin_refresh("k").unwrap();
    assert!(c.begin_refresh("k").is_none());
    assert!(c.begin_refresh("j").is_some());
    drop(guard);
    assert!(c.begin_refresh("k").is_some());
}

fn storing(c: &Arc<HttpCache>) -> Storing {
    Storing {
        cache: c.clone(),
        base: "k".into(),
        vary: Vec::new(),
        request: Vec::new(),
        entry: entry("/a", "", &[]),
        fill: None,
        generation: c.generation(),
    }
}

#[tokio::test]
async fn a_body_that_streamed_to_its_end_is_stored() {
    let c = cache();
    let body = store_body(full("streamed"), storing(&c), 1 << 20);
    let sent = body.collect().await.unwrap().to_bytes();
    assert_eq!(sent, "streamed");
    assert_eq!(c.lookup("k", &[]).await.unwrap().body, "streamed");
}

#[tokio::test]
async fn a_body_over_the_limit_or_dropped_early_is_not_stored() {
    let c = cache();
    let body = store_body(full("twelve bytes"), storing(&c), 4);
    assert_eq!(
        body.collect().await.unwrap().to_bytes(),
        "twelve bytes",
        "still sent whole"
    );
    assert!(c.lookup("k", &[]).await.is_none());

    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, BoxErr>>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    let inner = http_body_util::StreamBody::new(stream).boxed();
    let mut body = store_body(inner, storing(&c), 1 << 20);
    tx.send(Ok(hyper::body::Frame::data(Bytes::from("part"))))
        .await
        .unwrap();
    let frame = body.frame().await.unwrap().unwrap();
    assert_eq!(frame.into_data().unwrap(), "part");
    drop(body);
    assert!(
        c.lookup("k", &[]).await.is_none(),
        "a client that left mid-body stores nothing"
    );
}

type BoxErr = sluice_core::body::BoxError;

#[tokio::test]
async fn one_request_leads_a_fill_and_the_next_waits_for_what_it_stores() {
    let c = cache();
    let Fill::Lead(lead) = c.claim_fill("k", &[], 5_000, 0).await else {
        panic!("the first claim leads")
    };
    assert!(matches!(c.claim_fill("k", &[], 5_000, 0).await, Fill::GaveUp));
    let waiter = {
        let c = c.clone();
        tokio::spawn(async move { c.claim_fill("k", &[], 5_000, 5_000).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    c.insert("k", &[], &[], entry("/a", "filled", &[]), Some(lead)).unwrap();
    match waiter.await.unwrap() {
        Fill::Stored(e) => assert_eq!(e.body, "filled"),
        other => panic!("the waiter got {other:?}"),
    }
    // Stored: the claim ended, the next miss (after an invalidation) leads again.
    assert_eq!(c.invalidate_target("/a").await, 1);
    assert!(matches!(c.claim_fill("k", &[], 5_000, 0).await, Fill::Lead(_)));
}

#[tokio::test]
async fn a_fill_that_stored_nothing_sends_the_others_upstream_at_once_for_the_hold_time() {
    let c = cache();
    let Fill::Lead(lead) = c.claim_fill("k", &[], 50, 0).await else {
        panic!("the first claim leads")
    };
    drop(lead);
    let started = std::time::Instant::now();
    assert!(matches!(c.claim_fill("k", &[], 50, 5_000).await, Fill::GaveUp));
    assert!(
        started.elapsed() < Duration::from_millis(40),
        "no waiting on a fill that stored nothing"
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(
        matches!(c.claim_fill("k", &[], 50, 0).await, Fill::Lead(_)),
        "the mark lasts the hold time"
    );
}

#[tokio::test]
async fn a_body_with_all_its_declared_bytes_is_stored_even_if_never_polled_to_its_end() {
    let c = cache();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<hyper::body::Frame<Bytes>, BoxErr>>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    // A stream that declares 5 bytes (as a shared coalesced body does) but never says it ended.
    let inner = Declared {
        inner: http_body_util::StreamBody::new(stream).boxed(),
        len: 5,
    }
    .boxed();
    let mut body = store_body(inner, storing(&c), 1 << 20);
    tx.send(Ok(hyper::body::Frame::data(Bytes::from("whole"))))
        .await
        .unwrap();
    body.frame().await.unwrap().unwrap();
    drop(body);
    assert_eq!(c.lookup("k", &[]).await.unwrap().body, "whole");
}

/// A body with an exact length hint that never reports its end.
struct Declared {
    inner: sluice_core::body::ProxyBody,
    len: u64,
}

impl hyper::body::Body for Declared {
    type Data = Bytes;
    type Error = BoxErr;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, BoxErr>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.len)
    }
}

fn head(path: &str, headers: &[(&str, &str)]) -> sluice_bindings::RequestHead {
    sluice_bindings::RequestHead {
        method: "GET".into(),
        scheme: "http".into(),
        authority: "example.com".into(),
        path: path.into(),
        headers: req(headers),
        client_ip: "127.0.0.1".into(),
        request_id: "r".into(),
        route: "r".into(),
        context: Vec::new(),
    }
}

#[tokio::test]
async fn a_promised_fresh_response_is_served_directly_to_simple_requests_only() {
    let c = cache();
    let mut e = entry("/a?x=1", "direct", &[]);
    e.direct = Some(Direct {
        until_ms: unix_ms() + 60_000,
        age_s: 3,
        stored_ms: unix_ms(),
        parts: ("r".into(), "cache".into(), "example.com".into(), "/a?x=1".into()),
    });
    c.insert("base", &[], &[], e, None).unwrap();
    let served = c
        .direct_serve("r", "cache", &head("/a?x=1", &[("accept", "*/*")]))
        .unwrap();
    assert_eq!(served.entry.body, "direct");
    assert!(served.edits.set.iter().any(|(n, v)| n == "age" && v == b"3"));
    for (path, headers) in [
        ("/a?x=2", vec![]),
        ("/a?x=1", vec![("cache-control", "no-cache")]),
        ("/a?x=1", vec![("authorization", "Bearer t")]),
        ("/a?x=1", vec![("If-None-Match", "\"v\"")]),
        ("/a?x=1", vec![("upgrade", "websocket")]),
    ] {
        assert!(
            c.direct_serve("r", "cache", &head(path, &headers)).is_none(),
            "{path} {headers:?}"
        );
    }
    assert!(
        c.direct_serve("other", "cache", &head("/a?x=1", &[])).is_none(),
        "another route"
    );
    // The host cuts ranges itself: a Range request is a direct hit too.
    assert!(
        c.direct_serve("r", "cache", &head("/a?x=1", &[("range", "bytes=0-1")]))
            .is_some()
    );
    // The same hit for the request as hyper has it, before a head is built for plugins.
    let mut map = http::HeaderMap::new();
    map.insert("accept", http::HeaderValue::from_static("*/*"));
    let served = c.direct_serve_request("r", "cache", "GET", "example.com", "/a?x=1", &map);
    assert_eq!(served.unwrap().entry.body, "direct");
    map.insert("upgrade", http::HeaderValue::from_static("websocket"));
    assert!(
        c.direct_serve_request("r", "cache", "GET", "example.com", "/a?x=1", &map)
            .is_none(),
        "a protocol switch is never a hit"
    );
    map.remove("upgrade");
    map.insert("authorization", http::HeaderValue::from_static("Bearer t"));
    assert!(
        c.direct_serve_request("r", "cache", "GET", "example.com", "/a?x=1", &map)
            .is_none()
    );
    assert!(
        c.direct_serve_request("r", "cache", "POST", "example.com", "/a?x=1", &http::HeaderMap::new())
            .is_none()
    );
    assert_eq!(c.invalidate_target("/a?x=1").await, 1);
    assert!(
        c.direct_serve("r", "cache", &head("/a?x=1", &[])).is_none(),
        "gone with the entry"
    );
}
