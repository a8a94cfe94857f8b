//! An upstream for the request coalescing tests. It counts every request it receives and holds
//! answers until the test opens a gate, so a test decides when the many identical requests it
//! sent have all reached the gateway (no timing involved).
//!
//! - `/hold/…`: waits for [`HoldUpstream::open`], then 200 with a JSON body of about 64 KiB
//!   naming the request number, the URI and the `x-api-key` it got;
//! - `/fail/…`: waits for the same gate, then 500 `upstream says no`;
//! - `/stream`: 200 at once with a first chunk `first\n`, then `second\n` after
//!   [`HoldUpstream::open_stream`];
//! - anything else: the `/hold` answer at once.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// The size of the `/hold` padding.
pub const PAD: usize = 64 << 10;

/// A counting upstream whose answers wait for the test.
pub struct HoldUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    hits: Arc<AtomicU64>,
    gate: watch::Sender<bool>,
    stream_gate: watch::Sender<bool>,
}

#[derive(Clone)]
struct Shared {
    hits: Arc<AtomicU64>,
    gate: watch::Receiver<bool>,
    stream_gate: watch::Receiver<bool>,
}

async fn opened(mut gate: watch::Receiver<bool>) {
    let _ = gate.wait_for(|open| *open).await;
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

async fn answer(req: Request<Incoming>, s: Shared) -> Result<Response<Body>, Infallible> {
    let hit = s.hits.fetch_add(1, Ordering::SeqCst) + 1;
    let path = req.uri().path().to_string();
    if path.starts_with("/fail") {
        opened(s.gate).await;
        let mut resp = Response::new(full("upstream says no"));
        *resp.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
        return Ok(resp);
    }
    if path == "/stream" {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, BoxError>>(2);
        tokio::spawn(async move {
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"first\n")))).await;
            opened(s.stream_gate).await;
            let _ = tx.send(Ok(Frame::data(Bytes::from_static(b"second\n")))).await;
        });
        let stream = futures_stream(rx);
        return Ok(Response::new(BodyExt::boxed(StreamBody::new(stream))));
    }
    if path.starts_with("/hold") {
        opened(s.gate).await;
    }
    let api_key = req
        .headers()
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let doc = serde_json::json!({
        "hit": hit,
        "uri": req.uri().to_string(),
        "api_key": api_key,
        "pad": "x".repeat(PAD),
    });
    let mut resp = Response::new(full(doc.to_string()));
    resp.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    Ok(resp)
}

/// The frames of `rx` as a stream.
fn futures_stream(
    rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, BoxError>>,
) -> impl futures_util::stream::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send + Sync + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) })
}

impl HoldUpstream {
    /// Starts one on a free loopback port, gates closed.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hits = Arc::new(AtomicU64::new(0));
        let (gate, gate_rx) = watch::channel(false);
        let (stream_gate, stream_rx) = watch::channel(false);
        let shared = Shared {
            hits: hits.clone(),
            gate: gate_rx,
            stream_gate: stream_rx,
        };
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(req, shared.clone()));
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        HoldUpstream {
            addr,
            hits,
            gate,
            stream_gate,
        }
    }

    /// Requests received so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Lets every held `/hold` and `/fail` answer (and all later ones) go.
    pub fn open(&self) {
        self.gate.send_replace(true);
    }

    /// Lets the second chunk of `/stream` go.
    pub fn open_stream(&self) {
        self.stream_gate.send_replace(true);
    }
}
