//! HTTP/3: the QUIC listener serves the same routes and plugins as the TCP listeners, with
//! the same certificate, and HTTPS answers over TCP advertise it in `Alt-Svc`.

use sluice_artifacts as wasm;
use sluice_e2e::http3::H3Client;
use sluice_e2e::{Gateway, Upstream, start_gateway};

/// A gateway with TLS from `dir`, HTTP/3 on a free UDP port, and one route through the `good`
/// plugin (it tags the request and the response) to `upstream`.
async fn gateway(dir: &std::path::Path, upstream: &Upstream) -> Gateway {
    start_gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nhttp3_listen = \"127.0.0.1:0\"\n\
         tls = {{ cert = {:?}, key = {:?} }}\n\
         [upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\", config = {{ tag = \"h3\" }} }}]\n",
        dir.join("cert.pem"),
        dir.join("key.pem"),
        upstream.addr,
        wasm::GOOD
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_http3_take_the_same_route_and_plugins() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let der = super::tls::certificate(dir.path());
    let gw = gateway(dir.path(), &upstream).await;
    let h3_addr = gw.running.http3_addr.expect("HTTP/3 is listening");
    let mut client = H3Client::connect(h3_addr, der.clone()).await;

    let get = hyper::Request::get("https://localhost/echo?over=h3").body(()).unwrap();
    let answer = client.send(get, b"").await;
    assert_eq!(answer.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(seen["uri"], "/echo?over=h3");
    assert_eq!(seen["headers"]["x-forwarded-proto"], "https");
    assert_eq!(seen["headers"]["x-chain"], "h3", "the request hook ran");
    assert_eq!(answer.headers["x-resp-chain"], "h3", "the response hook ran");
    assert!(answer.headers.contains_key("x-request-id"));

    let post = hyper::Request::post("https://localhost/echo").body(()).unwrap();
    let answer = client.send(post, b"a body sent over QUIC").await;
    assert_eq!(answer.status, 200);
    let seen: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["body_len"], 21);

    // Another request on the same connection, to a plugin's own answer.
    let local = client
        .send(hyper::Request::get("https://localhost/respond").body(()).unwrap(), b"")
        .await;
    assert_eq!(local.status, 418);
    assert_eq!(upstream.hits(), 2, "a plugin's answer never reaches the upstream");

    // HTTPS over TCP advertises the QUIC listener.
    let tcp = tokio::net::TcpStream::connect(gw.running.addr).await.unwrap();
    let tls = super::tls::connector(der, &[b"h2"])
        .connect(rustls_pki_types::ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let resp = send
        .send_request(
            hyper::Request::get("https://localhost/echo")
                .body(sluice_e2e::full(""))
                .unwrap(),
        )
        .await
        .unwrap();
    let alt_svc = resp.headers()["alt-svc"].to_str().unwrap();
    assert_eq!(alt_svc, format!("h3=\":{}\"; ma=86400", h3_addr.port()));

    tokio::time::timeout(std::time::Duration::from_secs(10), gw.running.shutdown())
        .await
        .expect("the HTTP/3 listener drains and stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpc_call_over_http3_keeps_its_trailers() {
    let origin = sluice_e2e::grpc::GrpcOrigin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let der = super::tls::certificate(dir.path());
    let gw = start_gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nhttp3_listen = \"127.0.0.1:0\"\n\
         tls = {{ cert = {:?}, key = {:?} }}\n\
         [upstreams.grpc]\ntargets = [\"{}\"]\nhttp2 = true\n\
         [[routes]]\nname = \"grpc\"\nupstream = \"grpc\"\n",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        origin.addr
    ))
    .await;
    let mut client = H3Client::connect(gw.running.http3_addr.unwrap(), der).await;
    let call = hyper::Request::post("https://localhost/grpc.health.v1.Health/Check")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .unwrap();
    // An empty HealthCheckRequest: a 5-byte frame header and no message bytes.
    let answer = client.send(call, &[0, 0, 0, 0, 0]).await;
    assert_eq!(answer.status, 200);
    assert!(answer.body.len() > 5, "the HealthCheckResponse frame");
    let trailers = answer.trailers.expect("the call's trailers");
    assert_eq!(trailers["grpc-status"], "0");
}
