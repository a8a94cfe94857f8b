//! WebSocket through the gateway: the handshake runs the route's request chain (auth and
//! rate limit decide; cache and dedup never answer or join it), the upstream's 101 joins the
//! two connections, and the tunnel is counted, timed out, kept across a reload and closed by
//! the drain. Also over HTTP/2 (extended CONNECT, RFC 8441) to an HTTP/1.1 origin.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Empty;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::sinks::{metric, metrics};
use sluice_e2e::websocket::{WsOrigin, close, connect, echo, next_data};
use sluice_e2e::{DEMO_AUTH, DEMO_KEY};
use sluice_e2e::{Gateway, get, start_gateway};

/// The demo key of the embedded config and its static entry (as bench/lib.sh uses them).
const LIMIT: &str = "{ plugin = \"ratelimit\", config = { limits = [{ name = \"per-key\", key = \"api_key\", limit = 1000, period = \"60s\" }] } }";

/// A route `ws` with auth, rate limit, cache, dedup and compression in front of `origin`;
/// `upgrades` is the route's upgrades table, `server` extra `[server]` lines.
fn config(origin: &WsOrigin, upgrades: &str, server: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n{server}\n\
         [upstreams.ws]\ntargets = [\"{}\"]\n\
         [plugins.auth]\nmodule = \"builtin:auth\"\ngrants = {{ kv = true, audit = true }}\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ rate_limit = true }}\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [plugins.dedup]\nmodule = \"builtin:dedup\"\n\
         [plugins.compress]\nmodule = \"builtin:compress\"\n\
         [[routes]]\nname = \"ws\"\nupstream = \"ws\"\n\
         plugins = [{DEMO_AUTH}, {LIMIT}, {{ plugin = \"cache\" }}, {{ plugin = \"dedup\" }}, {{ plugin = \"compress\" }}]\n\
         upgrades = {{ {upgrades} }}\n",
        origin.addr
    )
}

/// A WebSocket opened over HTTP/2 with an extended CONNECT (RFC 8441) to `path`, with the
/// key; the gateway's answer, whose upgrade carries the tunnel on a 200.
async fn extended_connect(gw: &Gateway, path: &str) -> hyper::Response<hyper::body::Incoming> {
    let stream = tokio::net::TcpStream::connect(gw.running.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::connect(format!("http://{}{path}", gw.running.addr))
        .header("x-api-key", DEMO_KEY)
        .header("sec-websocket-version", "13")
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut()
        .insert(hyper::ext::Protocol::from_static("websocket"));
    sender.send_request(req).await.unwrap()
}

fn ws_url(gw: &Gateway, path: &str) -> String {
    format!("ws://{}{path}", gw.running.addr)
}

/// Waits until the metrics page shows `series` at `want` (the close is counted as the tunnel's
/// task ends, a moment after the client saw it).
async fn eventually(gw: &Gateway, series: &str, want: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = metric(&metrics(gw).await, series);
        if value == want {
            return;
        }
        assert!(Instant::now() < deadline, "{series} is {value}, not {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_cross_the_tunnel_and_the_cache_and_dedup_stay_out_of_it() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "", "")).await;
    // A plain GET of the same target is stored by the cache plugin.
    let plain = sluice_e2e::send(
        Request::get(gw.url("/chat"))
            .header("x-api-key", DEMO_KEY)
            .body(sluice_e2e::full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, "plain /chat upgrade=None");

    // Two handshakes at once for the same target: dedup must not join them, nor the cache
    // answer them with the stored 200.
    let headers = [("x-api-key", DEMO_KEY), ("sec-websocket-protocol", "chat")];
    let url = ws_url(&gw, "/chat");
    let (first, second) = tokio::join!(connect(&url, &headers), connect(&url, &headers));
    let (mut first, mut second) = (first.unwrap(), second.unwrap());
    assert_eq!(echo(&mut first, Message::text("one")).await, Message::text("one"));
    assert_eq!(echo(&mut second, Message::text("two")).await, Message::text("two"));
    let big = Message::binary(vec![7u8; 64 * 1024]);
    assert_eq!(echo(&mut first, big.clone()).await, big);

    let seen = origin.handshakes();
    assert_eq!(seen.len(), 2, "each handshake reached the origin");
    assert_eq!(seen[0]["x-forwarded-for"], "127.0.0.1");
    assert!(seen[0].contains_key("x-request-id"));
    assert_eq!(origin.plain_requests(), 1, "the plain GET went upstream once");
    eventually(&gw, "sluice_tunnels_open ", 2).await;

    tokio::join!(close(first), close(second));
    eventually(&gw, "sluice_tunnels_open ", 0).await;
    let page = metrics(&gw).await;
    assert_eq!(metric(&page, "sluice_tunnels_opened_total{route=\"ws\"}"), 2);
    // The client began the closing handshake; the origin, as RFC 6455 §7.1.1 has servers
    // do, closed its TCP side first.
    assert_eq!(
        metric(
            &page,
            "sluice_tunnels_closed_total{reason=\"upstream_closed\",route=\"ws\"}"
        ),
        2,
        "{page}"
    );
    assert!(metric(&page, "sluice_tunnel_bytes_total{direction=\"upstream\",route=\"ws\"}") > 64 * 1024);
    assert!(
        metric(
            &page,
            "sluice_tunnel_bytes_total{direction=\"downstream\",route=\"ws\"}"
        ) > 64 * 1024
    );
    assert_eq!(metric(&page, "sluice_requests_total{route=\"ws\",status=\"1xx\"}"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_or_refused_handshake_gets_no_tunnel() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "", "")).await;
    let denied = connect(&ws_url(&gw, "/chat"), &[]).await.err();
    assert_eq!(denied.as_deref(), Some("status 401"), "auth answers before any switch");
    assert!(
        origin.handshakes().is_empty(),
        "a denied handshake never reaches the origin"
    );

    let refused = connect(&ws_url(&gw, "/refuse"), &[("x-api-key", DEMO_KEY)]).await.err();
    assert_eq!(
        refused.as_deref(),
        Some("status 403"),
        "the origin's refusal is passed on"
    );
    let other = connect(&ws_url(&gw, "/other"), &[("x-api-key", DEMO_KEY)]).await.err();
    assert_eq!(
        other.as_deref(),
        Some("status 502"),
        "a switch to another protocol is refused"
    );
    let page = metrics(&gw).await;
    assert_eq!(metric(&page, "sluice_tunnels_opened_total{route=\"ws\"}"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_the_route_does_not_tunnel_is_an_ordinary_request() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "protocols = []", "")).await;
    let handshake = Request::get(gw.url("/chat"))
        .header("x-api-key", DEMO_KEY)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(sluice_e2e::full(""))
        .unwrap();
    let answered = sluice_e2e::send(handshake).await;
    assert_eq!(answered.status, 200);
    assert_eq!(
        answered.body, "plain /chat upgrade=None",
        "sent on without its Upgrade field"
    );
    assert!(origin.handshakes().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_tunnel_idles_out_and_a_reload_leaves_an_open_one_alone() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "idle_timeout_ms = 1000", "")).await;
    let mut ws = connect(&ws_url(&gw, "/chat"), &[("x-api-key", DEMO_KEY)])
        .await
        .unwrap();
    assert_eq!(echo(&mut ws, Message::text("a")).await, Message::text("a"));
    // Traffic keeps it open past the idle timeout; a reload does not touch it.
    for i in 0..4 {
        tokio::time::sleep(Duration::from_millis(350)).await;
        let text = format!("keep {i}");
        assert_eq!(echo(&mut ws, Message::text(text.clone())).await, Message::text(text));
    }
    let reloaded = gw.reload_with(&config(&origin, "idle_timeout_ms = 1000", "")).await;
    assert_eq!(reloaded.status, 200, "{:?}", reloaded.body);
    assert_eq!(echo(&mut ws, Message::text("after")).await, Message::text("after"));
    // Then silence: the gateway closes it.
    let started = Instant::now();
    assert_eq!(next_data(&mut ws).await, None);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    eventually(&gw, "sluice_tunnels_closed_total{reason=\"idle\",route=\"ws\"}", 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_keeps_a_tunnel_until_its_deadline() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "", "shutdown_grace_ms = 1500")).await;
    let mut ws = connect(&ws_url(&gw, "/chat"), &[("x-api-key", DEMO_KEY)])
        .await
        .unwrap();
    let state = gw.running.state.clone();
    let started = Instant::now();
    let stopping = tokio::spawn(gw.running.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        echo(&mut ws, Message::text("draining")).await,
        Message::text("draining"),
        "an open tunnel still carries during the drain"
    );
    assert_eq!(next_data(&mut ws).await, None, "closed at the deadline");
    stopping.await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1400),
        "shutdown waited for the tunnel: {took:?}"
    );
    let page = state.metrics().render_prometheus();
    assert_eq!(
        metric(&page, "sluice_tunnels_closed_total{reason=\"drain\",route=\"ws\"}"),
        1
    );
    assert_eq!(state.tunnels().open_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_over_http2_reaches_an_http1_origin() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "", "")).await;
    let mut resp = extended_connect(&gw, "/chat").await;
    assert_eq!(resp.status(), 200, "RFC 8441: 200 opens the stream");
    assert!(!resp.headers().contains_key("sec-websocket-accept"));
    let upgraded = hyper::upgrade::on(&mut resp).await.unwrap();
    let mut ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Client, None).await;
    assert_eq!(echo(&mut ws, Message::text("over h2")).await, Message::text("over h2"));
    let seen = origin.handshakes();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["upgrade"], "websocket", "the origin got an HTTP/1.1 upgrade");
    assert!(seen[0].contains_key("sec-websocket-key"));
    close(ws).await;
    eventually(&gw, "sluice_tunnels_open ", 0).await;
    let page = get(&gw.admin_url("/admin/stats")).await.json();
    assert_eq!(page["tunnels"]["open"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_response_never_answers_a_handshake_even_on_the_direct_hit_path() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.ws]\ntargets = [\"{}\"]\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [[routes]]\nname = \"cached\"\nupstream = \"ws\"\nplugins = [{{ plugin = \"cache\" }}]\n",
        origin.addr
    ))
    .await;
    for _ in 0..2 {
        let plain = get(&gw.url("/feed")).await;
        assert_eq!(plain.body, "plain /feed upgrade=None");
    }
    assert_eq!(origin.plain_requests(), 1, "the second GET was a hit");
    let ws = connect(&ws_url(&gw, "/feed"), &[]).await;
    assert!(
        ws.is_ok(),
        "{:?}: origin saw {} plain requests",
        ws.err(),
        origin.plain_requests()
    );
    let mut ws = ws.unwrap();
    assert_eq!(echo(&mut ws, Message::text("live")).await, Message::text("live"));
    assert_eq!(origin.handshakes().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_client_never_takes_an_unswitched_answer_for_a_tunnel() {
    let origin = WsOrigin::start().await;
    let gw = start_gateway(&config(&origin, "", "")).await;
    let resp = extended_connect(&gw, "/ignore").await;
    assert_eq!(resp.status(), 502, "the origin's 200 is not a switch");
}
