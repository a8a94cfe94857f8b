//! A real gRPC server and client (tonic) for the gRPC tests, without code generation: the
//! server runs tonic's own services, `grpc.health.v1.Health` (unary `Check`, server-streaming
//! `Watch`) and `grpc.reflection.v1.ServerReflection` (a bidirectional stream); the clients
//! are the ones generated in those crates.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic_health::server::HealthReporter;

/// The health service's full name.
pub const HEALTH: &str = "grpc.health.v1.Health";

/// A gRPC server on a real socket.
pub struct GrpcOrigin {
    /// Where it listens (h2c).
    pub addr: SocketAddr,
    /// Sets what `Health` reports (`Watch` streams each change).
    pub reporter: HealthReporter,
}

impl GrpcOrigin {
    /// Starts the server on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (reporter, health) = tonic_health::server::health_reporter();
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()
            .unwrap();
        let server = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(reflection)
            .serve_with_incoming(TcpIncoming::from(listener));
        tokio::spawn(server);
        GrpcOrigin { addr, reporter }
    }
}

/// A channel to `addr` over h2c (HTTP/2 by prior knowledge), as gRPC clients connect.
pub async fn channel(addr: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap()
}

/// `message` as a request with `x-api-key: key` (when given) and `accept-encoding: gzip` (so a
/// compression plugin on the route would want to compress the answer).
pub fn request<T>(message: T, key: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        request
            .metadata_mut()
            .insert("x-api-key", MetadataValue::try_from(key).unwrap());
    }
    request
        .metadata_mut()
        .insert("accept-encoding", MetadataValue::from_static("gzip"));
    request
}

/// An HTTP/2 server that accepts every call and answers none for 30 s (an upstream that
/// stalls); its address.
pub async fn stalled_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let service = hyper::service::service_fn(|_req| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Empty::<bytes::Bytes>::new()))
            });
            let serve = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::spawn(serve);
        }
    });
    addr
}
