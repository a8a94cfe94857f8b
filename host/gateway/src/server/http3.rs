//! The HTTP/3 listener: QUIC (quinn, with the public listener's certificate) and HTTP/3
//! framing (h3) in front of the same request handler as the TCP listeners, with the same
//! limits (header size, the time to send a request head, the idle timeout). Each request's
//! body streams in as it arrives, the response streams out with its trailers (without the
//! connection-specific fields HTTP/3 forbids); a response whose body fails is reset, never
//! ended as if whole. On shutdown the listener stops accepting, each connection gets a
//! GOAWAY, its requests finish within the grace, and it is closed once the client closed it
//! (or a second later).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::mpsc;

use sluice_core::body::{BoxError, ProxyBody, empty};
use sluice_core::headers;

use super::Shutdown;
use crate::client_body::ClientBody;

type H3Connection = h3::server::Connection<h3_quinn::Connection, Bytes>;
type RecvStream = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;
type SendStream = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// How long a closing connection waits for the client to close it after the last answer.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// The listener's limits, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a request head once it opened the request's stream.
    pub header_read: Duration,
    /// A connection with no packet for this long is closed (QUIC's idle timeout).
    pub idle: Duration,
    /// The largest request header section (HTTP/3's `SETTINGS_MAX_FIELD_SECTION_SIZE`).
    pub max_header_bytes: u64,
    /// How long shutdown waits for requests in flight.
    pub grace: Duration,
}

/// A QUIC endpoint on `addr` with `tls` (its ALPN `h3`) and the idle timeout of `limits`.
pub fn endpoint(addr: SocketAddr, tls: rustls::ServerConfig, limits: &Limits) -> Result<quinn::Endpoint, String> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| format!("HTTP/3 on {addr}: the TLS config does not suit QUIC: {e}"))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(quinn::IdleTimeout::try_from(limits.idle).ok());
    config.transport_config(Arc::new(transport));
    quinn::Endpoint::server(config, addr).map_err(|e| format!("cannot listen for HTTP/3 on udp {addr}: {e}"))
}

/// Serves HTTP/3 on `endpoint` with `handler` until `shutdown` flips, then lets the open
/// connections finish their requests for up to the grace of `limits` and closes the endpoint.
pub async fn serve<H, F>(endpoint: quinn::Endpoint, handler: H, mut shutdown: Shutdown, limits: Limits)
where
    H: Fn(Request<ClientBody>, SocketAddr, &'static str) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
{
    // Every connection task holds a sender; the drain is over when the last one is dropped.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
    loop {
        tokio::select! {
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let (handler, shutdown, open) = (handler.clone(), shutdown.clone(), open_tx.clone());
                tokio::spawn(async move {
                    connection(incoming, handler, shutdown, limits).await;
                    drop(open);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(open_tx);
    if tokio::time::timeout(limits.grace, open_rx.recv()).await.is_err() {
        tracing::warn!("HTTP/3: shutdown deadline passed with requests still in flight");
    }
    endpoint.close(0u32.into(), b"shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// One QUIC connection: its requests, each on a task of its own, until the client closes it
/// or the gateway shuts down (a GOAWAY, the requests in flight finish, then the connection is
/// closed).
async fn connection<H, F>(incoming: quinn::Incoming, handler: H, mut shutdown: Shutdown, limits: Limits)
where
    H: Fn(Request<ClientBody>, SocketAddr, &'static str) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ProxyBody>, Infallible>> + Send + 'static,
{
    let peer = incoming.remote_address();
    let quic = match incoming.await {
        Ok(quic) => quic,
        Err(e) => return tracing::debug!(error = %e, %peer, "QUIC handshake failed"),
    };
    let closer = quic.clone();
    let built = h3::server::builder()
        .max_field_section_size(limits.max_header_bytes)
        .build(h3_quinn::Connection::new(quic))
        .await;
    let mut h3: H3Connection = match built {
        Ok(h3) => h3,
        Err(e) => return tracing::debug!(error = %e, %peer, "HTTP/3 connection failed"),
    };
    let mut requests = tokio::task::JoinSet::new();
    let mut draining = false;
    while !(draining && requests.is_empty()) {
        tokio::select! {
            accepted = h3.accept(), if !draining => match accepted {
                Ok(Some(resolver)) => {
                    let handler = handler.clone();
                    requests.spawn(async move {
                        match tokio::time::timeout(limits.header_read, resolver.resolve_request()).await {
                            Ok(Ok((req, stream))) => exchange(req, stream, handler, peer).await,
                            Ok(Err(e)) => tracing::debug!(error = %e, %peer, "HTTP/3 request head unreadable"),
                            Err(_) => tracing::debug!(%peer, "HTTP/3 request head not sent in time"),
                        }
                    });
                }
                Ok(None) => return,
                Err(e) => return tracing::debug!(error = %e, %peer, "HTTP/3 connection ended"),
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            _ = shutdown.changed(), if !draining => {
                draining = true;
                // GOAWAY naming the stream after the last accepted: every request before it
                // is answered.
                let _ = h3.shutdown(1).await;
            }
        }
    }
    // The last answers may still be in flight: the client closes once it has them.
    let _ = tokio::time::timeout(CLOSE_WAIT, closer.closed()).await;
    closer.close(0u32.into(), b"shutting down");
}

/// One request: its body streams in from `stream`, the handler answers, and the answer
/// streams out (data, then trailers).
async fn exchange<H, F>(
    req: Request<()>,
    stream: h3::server::RequestStream<h3_quinn::BidiStream<Bytes>, Bytes>,
    handler: H,
    peer: SocketAddr,
) where
    H: Fn(Request<ClientBody>, SocketAddr, &'static str) -> F,
    F: Future<Output = Result<Response<ProxyBody>, Infallible>>,
{
    let (mut send, mut recv) = stream.split();
    let bodiless = matches!(*req.method(), Method::HEAD);
    // Requests that rarely carry a body (GET, HEAD, …) come with the stream's end: seen here,
    // they are known to have none (so they may be retried or coalesced, as over TCP).
    let body = match *req.method() {
        Method::GET | Method::HEAD | Method::OPTIONS | Method::DELETE => match recv.recv_data().await {
            Ok(None) => empty(),
            Ok(Some(mut first)) => {
                let first = Frame::data(first.copy_to_bytes(first.remaining()));
                let head = futures_util::stream::iter([Ok::<_, BoxError>(first)]);
                BodyExt::boxed(StreamBody::new(futures_util::StreamExt::chain(head, frames(recv))))
            }
            Err(e) => return tracing::debug!(error = %e, %peer, "HTTP/3 request body unreadable"),
        },
        _ => request_body(recv),
    };
    let req = req.map(|()| ClientBody::Quic(body));
    let Ok(resp) = handler(req, peer, "https").await;
    if let Err(e) = respond(&mut send, resp, bodiless).await {
        tracing::debug!(error = %e, %peer, "HTTP/3 response not sent whole: stream reset");
        send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
    }
}

/// The request body as it arrives on `recv`, then its trailers.
fn request_body(recv: RecvStream) -> ProxyBody {
    StreamBody::new(frames(recv)).boxed()
}

/// The frames of a request body as they arrive on `recv`: data, then trailers.
fn frames(recv: RecvStream) -> impl futures_util::Stream<Item = Result<Frame<Bytes>, BoxError>> + Send + Sync {
    futures_util::stream::unfold(Some(recv), |state| async move {
        let mut recv = state?;
        match recv.recv_data().await {
            Ok(Some(mut chunk)) => {
                let data = chunk.copy_to_bytes(chunk.remaining());
                Some((Ok(Frame::data(data)), Some(recv)))
            }
            Ok(None) => match recv.recv_trailers().await {
                Ok(Some(trailers)) => Some((Ok(Frame::trailers(trailers)), None)),
                Ok(None) => None,
                Err(e) => Some((Err(Box::new(e) as BoxError), None)),
            },
            Err(e) => Some((Err(Box::new(e) as BoxError), None)),
        }
    })
}

/// Sends `resp`'s head (without the connection-specific fields HTTP/3 forbids), its data as
/// it comes (none for HEAD, 204 and 304), its trailers, then ends the stream.
async fn respond(send: &mut SendStream, resp: Response<ProxyBody>, bodiless: bool) -> Result<(), BoxError> {
    let (mut parts, mut body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    let bodiless = bodiless || matches!(parts.status, StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED);
    send.send_response(Response::from_parts(parts, ())).await?;
    if bodiless {
        return Ok(send.finish().await?);
    }
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        match frame.into_data() {
            Ok(data) => send.send_data(data).await?,
            Err(frame) => {
                if let Ok(trailers) = frame.into_trailers() {
                    send.send_trailers(trailers).await?;
                }
            }
        }
    }
    send.finish().await?;
    Ok(())
}
