//! A worker's connections against a real origin on a socket: reuse, a connection the origin
//! closed while idle, the idle timeout and the idle limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Request;
use hyper::http::uri::Authority;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::Connections;
use crate::body::empty;
use crate::pool::{ConnectionStats, CountingConnector};
use crate::telemetry::metrics::Counter;

/// An origin answering every request `200 ok` on keep-alive connections, counting the
/// connections it accepted; with `close_after_answer`, it closes each connection a moment
/// after its first answer, without saying so (as an upstream's keep-alive timeout does).
async fn origin(close_after_answer: bool) -> (Authority, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    head.extend_from_slice(&buf[..n]);
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                        if close_after_answer {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("{addr}").parse().unwrap(), accepted)
}

fn worker_connections(
    authority: &Authority,
    max_idle: usize,
    idle_timeout: Duration,
) -> (Arc<Connections>, Arc<ConnectionStats>) {
    let stats = Arc::new(ConnectionStats::new(Arc::new(Counter::default())));
    let targets = Arc::from(vec![(authority.to_string(), stats.clone())]);
    let connector = CountingConnector::new(HttpConnector::new(), targets);
    let connections = Connections::new(connector, 1, false, max_idle, idle_timeout);
    (Arc::new(connections), stats)
}

/// One GET through `connections`, its body read to the end and its connection given back.
async fn get(connections: &Arc<Connections>, authority: &Authority) -> String {
    let req = Request::get(format!("http://{authority}/")).body(empty()).unwrap();
    let (resp, lent) = connections.send(0, authority, req).await.expect("an answer");
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    if let Some(lent) = lent {
        lent.give_back();
    }
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn a_connection_carries_request_after_request() {
    let (authority, accepted) = origin(false).await;
    let (connections, stats) = worker_connections(&authority, 4, Duration::from_secs(60));
    for _ in 0..5 {
        assert_eq!(get(&connections, &authority).await, "ok");
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 1);
    assert_eq!(stats.opened.get(), 1);
    assert_eq!(stats.open(), 1, "kept open, idle");
}

#[tokio::test]
async fn a_connection_the_origin_closed_while_idle_is_never_seen_by_the_request() {
    let (authority, accepted) = origin(true).await;
    let (connections, _) = worker_connections(&authority, 4, Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(get(&connections, &authority).await, "ok");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 3, "a new connection each time");
}

#[tokio::test]
async fn idle_connections_close_after_the_idle_timeout_and_past_the_idle_limit() {
    let (authority, accepted) = origin(false).await;
    let (connections, stats) = worker_connections(&authority, 4, Duration::from_millis(50));
    assert_eq!(get(&connections, &authority).await, "ok");
    tokio::time::sleep(Duration::from_millis(80)).await;
    connections.close_expired();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(stats.open(), 0, "the expired connection was closed");
    assert_eq!(get(&connections, &authority).await, "ok");
    assert_eq!(accepted.load(Ordering::Relaxed), 2);

    let (authority, accepted) = origin(false).await;
    let (connections, stats) = worker_connections(&authority, 0, Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(get(&connections, &authority).await, "ok");
    }
    assert_eq!(accepted.load(Ordering::Relaxed), 3, "none kept idle");
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(stats.open(), 0);
}
