//! Protocol limits and malformed requests: answered by the gateway, never forwarded.

use sluice_e2e::{Upstream, full, raw, send, start_gateway};

fn config(upstream: &Upstream) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_header_bytes = 4096\nmax_headers = 20\nmax_body_bytes = 1000\nheader_read_timeout_ms = 500\n\
         [upstreams.app]\ntargets = [\"{}\"]\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        upstream.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_too_many_headers_get_431() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    let big = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(8000));
    assert!(raw(gw.running.addr, big.as_bytes()).await.starts_with("HTTP/1.1 431"));
    let many: String = (0..30).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    assert!(raw(gw.running.addr, many.as_bytes()).await.starts_with("HTTP/1.1 431"));
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_declared_or_streamed() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    let declared = send(hyper::Request::post(gw.url("/")).body(full(vec![b'x'; 2000])).unwrap()).await;
    assert_eq!(declared.status, 413);
    assert_eq!(declared.json()["error"], "body_too_large");
    assert_eq!(upstream.hits(), 0);

    let chunk = "a".repeat(600);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let answer = raw(gw.running.addr, chunked.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    let small = send(hyper::Request::post(gw.url("/")).body(full(vec![b'x'; 500])).unwrap()).await;
    assert_eq!(small.status, 200);
    assert_eq!(small.json()["body_len"], 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_and_are_never_forwarded() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    let cases: [&[u8]; 9] = [
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
        // RFC 9112 §3.2: no Host in HTTP/1.1, two of them, or one that is not a host.
        b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@a.example\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a.example/admin\r\nConnection: close\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n",
        b"G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 7\r\n\r\nhello",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
    ];
    for case in cases {
        let answer = raw(gw.running.addr, case).await;
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "{:?} -> {answer:?}",
            String::from_utf8_lossy(case)
        );
    }
    assert_eq!(upstream.hits(), 0, "nothing malformed reached the upstream");
    let no_host = raw(gw.running.addr, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(no_host.contains("bad_host"), "{no_host}");
    // HTTP/1.0 may leave Host out.
    let old_client = raw(gw.running.addr, b"GET / HTTP/1.0\r\n\r\n").await;
    assert!(
        old_client.starts_with("HTTP/1.0 200") || old_client.starts_with("HTTP/1.1 200"),
        "{old_client}"
    );
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowloris_client_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    let mut stream = tokio::net::TcpStream::connect(gw.running.addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The head never completes: the 500 ms header-read timeout closes the connection.
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection was not closed");
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_length_with_transfer_encoding_smuggles_nothing() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    // The classic CL.TE smuggling attempt: a front end that trusted Content-Length would
    // forward "GET /smuggled" as the start of the next request.
    let attack = b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let answer = raw(gw.running.addr, attack).await;
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 1, "only one response: {answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    assert!(!answer.contains("/smuggled"), "{answer}");
    assert_eq!(upstream.hits(), 1, "the smuggled request never reached the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_with_dot_segments_or_encoded_slashes_are_refused() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream)).await;
    for path in ["/public/../admin", "/public/%2e%2e/admin", "/public%2Fadmin"] {
        let answer = raw(
            gw.running.addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(answer.contains("path_not_normalized"), "{path}: {answer}");
    }
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_but_quiet_streams_are_not() {
    use http_body_util::BodyExt;
    use std::time::{Duration, Instant};
    use tokio::io::AsyncReadExt;
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream).replace(
        "header_read_timeout_ms = 500",
        "header_read_timeout_ms = 5000\nidle_timeout_ms = 300",
    ))
    .await;
    // A client that connects and never sends a byte (not even the HTTP/2 preface) is closed
    // after the idle timeout, long before the 5 s header-read timeout.
    let mut silent = tokio::net::TcpStream::connect(gw.running.addr).await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(4), silent.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the silent connection was not closed");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    // A stream whose upstream pauses longer than the idle timeout has a request in flight:
    // it is not cut.
    let resp = sluice_e2e::client()
        .request(hyper::Request::get(gw.url("/gated")).body(full("")).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: event 1\n\n");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    upstream.release();
    let rest = body.collect().await.expect("the quiet stream survived").to_bytes();
    assert_eq!(&rest[..], b"data: event 2\n\ndata: event 3\n\n");
}
