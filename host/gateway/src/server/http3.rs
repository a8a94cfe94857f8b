//! The HTTP/3 listener: QUIC (quinn, with the public listener's certificate) and HTTP/3
//! framing (h3) in front of the same request handler as the TCP listeners. Each request's
//! body streams in as it arrives, the response streams out with its trailers. On shutdown
//! the listener stops accepting, each connection gets a GOAWAY and its requests finish
//! within the grace.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use tokio::sync::mpsc;

use sluice_core::body::{BoxError, ProxyBody};

use super::Shutdown;
use crate::client_body::ClientBody;

type H3Connection = h3::server::Connection<h3_quinn::Connection, Bytes>;
type RecvStream = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;
type SendStream = h3::server::RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// A QUIC endpoint on `addr` with `tls` (its ALPN `h3`).
pub fn endpoint(addr: SocketAddr, tls: rustls::ServerConfig) -> Result<quinn::Endpoint, String> {
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| format!("HTTP/3 on {addr}: the TLS config does not suit QUIC: {e}"))?;
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    quinn::Endpoint::server(config, addr).map_err(|e| format!("cannot listen for HTTP/3 on udp {addr}: {e}"))
}

/// Serves HTTP/3 on `endpoint` with `handler` until `shutdown` flips, then lets the open
/// connections finish their requests for up to `grace` and closes the endpoint.
pub async fn serve<H, F>(endpoint: quinn::Endpoint, handler: H, mut shutdown: Shutdown, grace: Duration)
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
                    connection(incoming, handler, shutdown).await;
                    drop(open);
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(open_tx);
    if tokio::time::timeout(grace, open_rx.recv()).await.is_err() {
        tracing::warn!("HTTP/3: shutdown deadline passed with requests still in flight");
    }
    endpoint.close(0u32.into(), b"shutting down");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
}

/// One QUIC connection: its requests, each on a task of its own, until the client closes it
/// or the gateway shuts down (a GOAWAY, the requests in flight finish, then the connection is
/// closed).
async fn connection<H, F>(incoming: quinn::Incoming, handler: H, mut shutdown: Shutdown)
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
    let mut h3: H3Connection = match h3::server::Connection::new(h3_quinn::Connection::new(quic)).await {
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
                        match resolver.resolve_request().await {
                            Ok((req, stream)) => exchange(req, stream, handler, peer).await,
                            Err(e) => tracing::debug!(error = %e, %peer, "HTTP/3 request head unreadable"),
                        }
                    });
                }
                Ok(None) => return,
                Err(e) => return tracing::debug!(error = %e, %peer, "HTTP/3 connection ended"),
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            _ = shutdown.changed(), if !draining => {
                draining = true;
                let _ = h3.shutdown(0).await;
            }
        }
    }
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
    let (mut send, recv) = stream.split();
    let req = req.map(|()| ClientBody::Quic(request_body(recv)));
    let Ok(resp) = handler(req, peer, "https").await;
    if let Err(e) = respond(&mut send, resp).await {
        tracing::debug!(error = %e, %peer, "HTTP/3 response not sent whole");
    }
}

/// The request body as it arrives on `recv`, then its trailers.
fn request_body(recv: RecvStream) -> ProxyBody {
    let frames = futures_util::stream::unfold(Some(recv), |state| async move {
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
    });
    StreamBody::new(frames).boxed()
}

/// Sends `resp`'s head, its data as it comes, its trailers, then ends the stream.
async fn respond(send: &mut SendStream, resp: Response<ProxyBody>) -> Result<(), BoxError> {
    let (parts, mut body) = resp.into_parts();
    send.send_response(Response::from_parts(parts, ())).await?;
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
