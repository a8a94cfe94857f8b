//! gRPC through the gateway, with a real tonic server and client over h2c: unary, server
//! streaming and bidirectional calls with their trailers through auth, rate limiting,
//! compression and the cache; the gateway's and plugins' errors as gRPC statuses; and
//! `grpc-timeout` as the call's deadline.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::Code;
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as Reported;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use sluice_e2e::grpc::{GrpcOrigin, HEALTH, channel, request};
use sluice_e2e::{DEMO_AUTH, DEMO_KEY};
use sluice_e2e::{Gateway, closed_port, start_gateway};

/// A gRPC route to `target` (h2c) for the calls under `prefix`, behind auth, a rate limit of
/// `limit` calls a minute, compression of every `application/*` answer, and the cache.
fn config(target: &str, limit: u32, prefix: &str) -> String {
    format!(
        "[upstreams.grpc]\ntargets = [\"{target}\"]\nhttp2 = true\n\
         [plugins.auth]\nmodule = \"builtin:auth\"\ngrants = {{ kv = true, audit = true }}\n\
         [plugins.ratelimit]\nmodule = \"builtin:ratelimit\"\ngrants = {{ rate_limit = true }}\n\
         [plugins.compress]\nmodule = \"builtin:compress\"\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [[routes]]\nname = \"grpc\"\nmatch = {{ path_prefix = \"{prefix}\" }}\nupstream = \"grpc\"\n\
         plugins = [{DEMO_AUTH}, {{ plugin = \"ratelimit\", config = {{ limits = [{{ name = \"calls\", key = \"api_key\", limit = {limit}, period = \"60s\" }}] }} }}, \
         {{ plugin = \"compress\", config = {{ min_size = 0, content_types = [\"application/*\"] }} }}, {{ plugin = \"cache\" }}]\n"
    )
}

async fn health(gw: &Gateway) -> HealthClient<tonic::transport::Channel> {
    HealthClient::new(channel(gw.running.addr).await)
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_and_streaming_calls_cross_with_their_trailers() {
    let origin = GrpcOrigin::start().await;
    let gw = start_gateway(&config(&origin.addr.to_string(), 1000, "/")).await;
    let mut client = health(&gw).await;

    let serving = client.check(request(check(""), Some(DEMO_KEY))).await.unwrap();
    assert_eq!(serving.get_ref().status, Reported::Serving as i32);
    // The server's own error status crosses the gateway untouched.
    let unknown = client
        .check(request(check("no.such.Service"), Some(DEMO_KEY)))
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");

    // Server streaming: each change arrives as it happens.
    origin.reporter.set_service_status(HEALTH, ServingStatus::Serving).await;
    let mut watch = client
        .watch(request(check(HEALTH), Some(DEMO_KEY)))
        .await
        .unwrap()
        .into_inner();
    let first: HealthCheckResponse = watch.next().await.unwrap().unwrap();
    assert_eq!(first.status, Reported::Serving as i32);
    origin
        .reporter
        .set_service_status(HEALTH, ServingStatus::NotServing)
        .await;
    let second = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    assert_eq!(second.unwrap().unwrap().status, Reported::NotServing as i32);
    drop(watch);

    // Both ways: three requests on one stream, three answers, then the stream's status.
    let mut reflection = ServerReflectionClient::new(channel(gw.running.addr).await);
    let asks = futures_util::stream::iter((0..3).map(|_| ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }));
    let mut answers = reflection
        .server_reflection_info(request(asks, Some(DEMO_KEY)))
        .await
        .unwrap()
        .into_inner();
    let mut seen = 0;
    while let Some(answer) = answers.next().await {
        let Some(MessageResponse::ListServicesResponse(list)) = answer.unwrap().message_response else {
            panic!("not a list of services");
        };
        assert!(list.service.iter().any(|s| s.name == HEALTH), "{list:?}");
        seen += 1;
    }
    assert_eq!(seen, 3, "every answer came back and the stream ended with OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_refusals_are_grpc_statuses() {
    let origin = GrpcOrigin::start().await;
    let gw = start_gateway(&config(&origin.addr.to_string(), 2, "/grpc.health.v1.Health")).await;
    let mut client = health(&gw).await;

    let denied = client.check(request(check(""), None)).await.unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated, "{denied:?}");
    assert!(denied.metadata().get("x-request-id").is_some());

    for _ in 0..2 {
        client.check(request(check(""), Some(DEMO_KEY))).await.unwrap();
    }
    let limited = client.check(request(check(""), Some(DEMO_KEY))).await.unwrap_err();
    assert_eq!(limited.code(), Code::ResourceExhausted, "{limited:?}");

    // No route for the reflection service on this gateway: 404 is UNIMPLEMENTED.
    let mut reflection = ServerReflectionClient::new(channel(gw.running.addr).await);
    let asks = futures_util::stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    }]);
    let unrouted = reflection
        .server_reflection_info(request(asks, Some(DEMO_KEY)))
        .await
        .unwrap_err();
    assert_eq!(unrouted.code(), Code::Unimplemented, "{unrouted:?}");

    let down = start_gateway(&config(&format!("127.0.0.1:{}", closed_port()), 10, "/")).await;
    let unavailable = health(&down)
        .await
        .check(request(check(""), Some(DEMO_KEY)))
        .await
        .unwrap_err();
    assert_eq!(unavailable.code(), Code::Unavailable, "{unavailable:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_is_the_calls_deadline_at_the_gateway() {
    let origin = GrpcOrigin::start().await;
    let gw = start_gateway(&config(&origin.addr.to_string(), 1000, "/")).await;
    let mut client = health(&gw).await;
    // A stream that outlives its deadline is ended by the gateway with DEADLINE_EXCEEDED.
    let mut call = request(check(""), Some(DEMO_KEY));
    call.set_timeout(Duration::from_millis(400));
    let started = Instant::now();
    let mut watch = client.watch(call).await.unwrap().into_inner();
    assert_eq!(watch.next().await.unwrap().unwrap().status, Reported::Serving as i32);
    let ended = tokio::time::timeout(Duration::from_secs(5), watch.next())
        .await
        .unwrap();
    let status = ended.unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().contains("at the gateway"), "{status:?}");
    assert!(started.elapsed() >= Duration::from_millis(350));

    // An upstream that never answers: the response head's wait is the call's deadline. (A
    // plain HTTP/2 client: tonic's would give up at the same moment by itself.)
    let stalled = sluice_e2e::grpc::stalled_origin().await;
    let slow = start_gateway(&config(&stalled.to_string(), 1000, "/")).await;
    let stream = tokio::net::TcpStream::connect(slow.running.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let call = hyper::Request::post(format!("http://{}/grpc.health.v1.Health/Check", slow.running.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "300m")
        .header("x-api-key", DEMO_KEY)
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let started = Instant::now();
    let answer = sender.send_request(call).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not the upstream's 30 s timeout"
    );
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["grpc-status"], "4", "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_over_tls_picks_http2_by_alpn() {
    let origin = GrpcOrigin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let der = super::tls::certificate(dir.path());
    let gw = start_gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = {:?}, key = {:?} }}\n{}",
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        config(&origin.addr.to_string(), 1000, "/")
    ))
    .await;
    let addr = gw.running.addr;
    let tls = super::tls::connector(der, &[b"h2"]);
    let connect = tower::service_fn(move |_: hyper::Uri| {
        let tls = tls.clone();
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            let stream = tls.connect(name, tcp).await?;
            assert_eq!(stream.get_ref().1.alpn_protocol(), Some(b"h2".as_slice()));
            Ok::<_, std::io::Error>(TokioIo::new(stream))
        }
    });
    let channel = tonic::transport::Endpoint::from_static("https://localhost")
        .connect_with_connector(connect)
        .await
        .unwrap();
    let serving = HealthClient::new(channel)
        .check(request(check(""), Some(DEMO_KEY)))
        .await
        .unwrap();
    assert_eq!(serving.get_ref().status, Reported::Serving as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trailers_only_answer_ends_its_stream_even_under_a_deadline() {
    let origin = GrpcOrigin::start().await;
    let gw = start_gateway(&config(&origin.addr.to_string(), 1000, "/")).await;
    let stream = tokio::net::TcpStream::connect(gw.running.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    // HealthCheckRequest { service: "no.such" }: field 1, length 7.
    let mut frame = vec![0, 0, 0, 0, 9, 0x0a, 7];
    frame.extend_from_slice(b"no.such");
    let call = hyper::Request::post(format!("http://{}/grpc.health.v1.Health/Check", gw.running.addr))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "5S")
        .header("x-api-key", DEMO_KEY)
        .body(Full::new(Bytes::from(frame)))
        .unwrap();
    let answer = sender.send_request(call).await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["grpc-status"], "5", "NOT_FOUND, in the head");
    assert!(
        hyper::body::Body::is_end_stream(answer.body()),
        "END_STREAM on the HEADERS frame, as grpc-go requires of a Trailers-Only answer"
    );
}
