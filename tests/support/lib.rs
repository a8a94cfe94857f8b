//! Helpers for the end-to-end tests: a real upstream server, a gateway started from a config
//! file on real sockets, a client, and a Postgres database per test.

pub mod examples;
pub mod grpc;
pub mod hold;
pub mod http3;
pub mod jwt;
pub mod origin;
pub mod postgres;
pub mod redis;
pub mod redis_servers;
pub mod relay;
pub mod tools;
pub mod websocket;

/// The embedded config's demo API key (published in the README).
pub const DEMO_KEY: &str = "sk_test_8I9J0eqU4SxFzleP5BTG3F90vy8gUJRZ0Fjj3G";
/// A route's chain entry for the auth plugin accepting [`DEMO_KEY`] as a static key (its hash
/// under the demo secret, scope `read`, tier `free`), with no Postgres lookup.
pub const DEMO_AUTH: &str = "{ plugin = \"auth\", config = { secret = \"demo-secret-please-change-me\", lookup_statement = \"\", touch_statement = \"\", required_scopes = [\"read\"], static_keys = [{ id = -1, hash = \"45ee5a983ba02465b215b5002f978dec3b8bfba1421974f6caf4f39733a46752\", owner = \"demo\", scopes = [\"read\"], tier = \"free\" }] } }";

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_gateway::app::RunningGateway;
use sluice_gateway::state::ConfigSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The body type of the test client.
pub type Body = BoxBody<Bytes, Infallible>;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type UpstreamBody = BoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

/// Server-sent events: `count` events, `gap` apart; with `fail_after`, the body fails after
/// that many events (the connection is reset mid-body). Counts streams dropped unfinished.
struct Events {
    sent: u32,
    count: u32,
    gap: Duration,
    wait: Option<Pin<Box<dyn Future<Output = ()> + Send + Sync>>>,
    fail_after: Option<u32>,
    dropped_early: Arc<AtomicU64>,
    /// When set, the second event waits for [`Upstream::release`] instead of the gap.
    gate: Option<Arc<tokio::sync::Notify>>,
}

impl Drop for Events {
    fn drop(&mut self) {
        if self.sent < self.count {
            self.dropped_early.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.sent == self.count {
            return Poll::Ready(None);
        }
        if self.sent > 0 {
            let gap = self.gap;
            let gate = self.gate.clone().filter(|_| self.sent == 1);
            let wait = self.wait.get_or_insert_with(|| match gate {
                Some(gate) => Box::pin(async move { gate.notified().await }),
                None => Box::pin(tokio::time::sleep(gap)),
            });
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
        }
        if self.fail_after == Some(self.sent) {
            return Poll::Ready(Some(Err(std::io::Error::other("the upstream broke off mid-body"))));
        }
        self.sent += 1;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(format!(
            "data: event {}\n\n",
            self.sent
        ))))))
    }
}

/// A test upstream on a real socket. `/slow` answers after 3 s; `/sse` sends three events
/// 300 ms apart; `/gated` the same, but the second event waits for [`Upstream::release`];
/// `/reset` sends one event then breaks the connection; `/status/N` answers N;
/// every other path answers JSON describing the request it received (method, uri, headers,
/// body length).
pub struct Upstream {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    dropped_early: Arc<AtomicU64>,
    gate: Arc<tokio::sync::Notify>,
}

impl Upstream {
    /// Starts an upstream on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let dropped_early = Arc::new(AtomicU64::new(0));
        let gate = Arc::new(tokio::sync::Notify::new());
        let counter = hits.clone();
        let dropped = dropped_early.clone();
        let gated = gate.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let hits = counter.clone();
                let dropped = dropped.clone();
                let gated = gated.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, hits.clone(), dropped.clone(), gated.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream {
            addr,
            hits,
            dropped_early,
            gate,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Lets the second event of a `/gated` stream go.
    pub fn release(&self) {
        self.gate.notify_one();
    }

    /// Event streams whose body was dropped before its end (the downstream went away).
    pub fn streams_dropped_early(&self) -> u64 {
        self.dropped_early.load(Ordering::SeqCst)
    }
}

fn boxed(body: Body) -> UpstreamBody {
    body.map_err(|never| match never {}).boxed()
}

async fn answer(
    req: Request<Incoming>,
    hits: Arc<AtomicU64>,
    dropped_early: Arc<AtomicU64>,
    gate: Arc<tokio::sync::Notify>,
) -> Result<Response<UpstreamBody>, Infallible> {
    hits.fetch_add(1, Ordering::SeqCst);
    let path = req.uri().path().to_string();
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    if path == "/sse" || path == "/reset" || path == "/gated" {
        let fail_after = (path == "/reset").then_some(1);
        let gate = (path == "/gated").then_some(gate);
        let events = Events {
            sent: 0,
            count: 3,
            gap: Duration::from_millis(300),
            wait: None,
            fail_after,
            dropped_early,
            gate,
        };
        let body: UpstreamBody = events.map_err(|e| Box::new(e) as BoxError).boxed();
        let mut resp = Response::new(body);
        resp.headers_mut()
            .insert("content-type", "text/event-stream".parse().unwrap());
        return Ok(resp);
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let mut resp = Response::new(boxed(full("status")));
        *resp.status_mut() = code.parse().unwrap_or(hyper::StatusCode::OK);
        return Ok(resp);
    }
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let method = req.method().to_string();
    let uri = req.uri().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let doc = serde_json::json!({ "method": method, "uri": uri, "headers": headers, "body_len": body.len() });
    let mut resp = Response::new(boxed(full(doc.to_string())));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    resp.headers_mut().insert("keep-alive", "timeout=5".parse().unwrap());
    resp.headers_mut().insert("x-upstream", "yes".parse().unwrap());
    Ok(resp)
}

/// A gateway running from a config file in a temporary directory.
pub struct Gateway {
    /// The running gateway.
    pub running: RunningGateway,
    /// The config file (rewrite it and reload to change the config).
    pub config_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// The compiled-component cache the e2e tests share (entries are keyed by content and
/// written atomically, so concurrent tests and runs may share it).
pub fn cache_dir() -> std::path::PathBuf {
    std::env::temp_dir().join("sluice-e2e-component-cache")
}

/// Starts a gateway on free ports with `toml` (listeners and cache are filled in).
pub async fn start_gateway(toml: &str) -> Gateway {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("sluice.toml");
    std::fs::write(&config_path, config_text(toml)).unwrap();
    let running = RunningGateway::start(ConfigSource::File(config_path.clone()))
        .await
        .unwrap();
    Gateway {
        running,
        config_path,
        _dir: dir,
    }
}

/// `toml` with ephemeral listeners, a shared cache and quiet logs prepended.
pub fn config_text(toml: &str) -> String {
    let server = if toml.contains("[server]") {
        String::new()
    } else {
        "[server]\nlisten = \"127.0.0.1:0\"\n".to_string()
    };
    let admin = if toml.contains("[admin]") {
        String::new()
    } else {
        "[admin]\nlisten = \"127.0.0.1:0\"\n".to_string()
    };
    format!("{server}{admin}[runtime]\ncache_dir = {:?}\n{toml}", cache_dir())
}

impl Gateway {
    /// Writes `toml` (through [`config_text`]) as the gateway's config and asks it to reload;
    /// the admin API's answer (200, or 422 with the reason and nothing changed).
    pub async fn reload_with(&self, toml: &str) -> Answer {
        std::fs::write(&self.config_path, config_text(toml)).unwrap();
        send(Request::post(self.admin_url("/admin/reload")).body(full("")).unwrap()).await
    }

    /// `http://ADDR` of the public listener.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.addr)
    }

    /// `http://ADDR` of the admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.running.admin_addr)
    }
}

/// A loopback port free a moment ago, for something the test is about to listen on.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A loopback port nothing listens on: connections to it are refused.
pub fn closed_port() -> u16 {
    // Bound but never listening, and kept for the life of the test process: connections are
    // refused, and the port cannot be handed to another listener (a gateway started later in
    // the same test once got the freed port and called itself until its pool was busy).
    static RESERVED: std::sync::Mutex<Vec<tokio::net::TcpSocket>> = std::sync::Mutex::new(Vec::new());
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind("127.0.0.1:0".parse().unwrap())
        .expect("a free loopback port");
    let port = socket.local_addr().expect("its address").port();
    RESERVED.lock().unwrap_or_else(|e| e.into_inner()).push(socket);
    port
}

/// An HTTP/1.1 client with a connection pool.
pub fn client() -> Client<HttpConnector, Body> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A response with its body read.
pub struct Answer {
    /// The status.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Sends `req` and reads the whole answer.
pub async fn send(req: Request<Body>) -> Answer {
    let resp = client().request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// GET `url`.
pub async fn get(url: &str) -> Answer {
    send(Request::get(url).body(full(Bytes::new())).unwrap()).await
}

/// Writes `raw` bytes to `addr` and returns everything read until the server closes or 2 s
/// pass.
pub async fn raw(addr: SocketAddr, raw: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
