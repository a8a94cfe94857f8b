//! The embedded default config (`config/sluice.toml`) as the README presents it: the demo
//! upstream proxied (and compressed by the built-in compress plugin), and `/private` behind the
//! built-in auth plugin with the demo key.

use sluice_e2e::DEMO_KEY;
use sluice_e2e::{full, get, send};

/// The demo key the README prints; its hash is in the default config.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_config_serves_the_demo_and_guards_private() {
    let demo_port = sluice_e2e::free_port();
    // The shipped file, on free ports.
    let text = include_str!("../../../config/sluice.toml")
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:9901", "127.0.0.1:0")
        .replace("127.0.0.1:8081", &format!("127.0.0.1:{demo_port}"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, text).unwrap();
    let gw = sluice_gateway::app::RunningGateway::start(sluice_gateway::state::ConfigSource::File(path))
        .await
        .unwrap();
    let url = |p: &str| format!("http://{}{p}", gw.addr);

    let hello = get(&url("/hello")).await;
    assert_eq!(hello.status, 200);
    assert_eq!(hello.header("ratelimit-policy"), Some("\"per-ip\";q=100;w=1"));
    let refused = get(&url("/private/echo")).await;
    assert_eq!(refused.status, 401);
    let answer = send(
        hyper::Request::get(url("/private/echo"))
            .header("x-api-key", DEMO_KEY)
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.json()["headers"]["x-auth-subject"], "demo");
    assert_eq!(
        answer.header("ratelimit-policy"),
        Some("\"per-key\";q=60;w=60"),
        "the free tier"
    );
    // The README's `curl --compressed`: /events compressed as it streams.
    let events = send(
        hyper::Request::get(url("/events"))
            .header("accept-encoding", "deflate, gzip, br, zstd")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(events.header("content-encoding"), Some("br"));
    let mut text = String::new();
    std::io::Read::read_to_string(&mut brotli::Decompressor::new(&events.body[..], 4096), &mut text).unwrap();
    assert!(text.starts_with("id: 1\n") && text.contains("id: 3\n"), "{text}");
    gw.shutdown().await;
}
