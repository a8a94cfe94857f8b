//! Listeners: accept connections (plain or TLS), serve HTTP/1.1 and HTTP/2 (ALPN over TLS, h2c
//! by prior knowledge in plain text) with the configured limits, and drain in-flight requests
//! on shutdown up to a deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::ServerSettings;
use crate::proxy::ProxyBody;

/// Tells listeners to stop accepting and drain.
pub type Shutdown = watch::Receiver<bool>;

/// The connection builder for `settings`: header size and count limits (431 beyond them) and
/// the header-read timeout that cuts slow clients off.
pub fn builder(settings: &ServerSettings) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(settings.header_read_timeout_ms))
        .max_buf_size(settings.max_header_bytes.max(8192))
        .max_headers(settings.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(settings.max_header_bytes as u32);
    builder
}

/// Serves `listener` with `handler` until `shutdown` flips, then waits up to `grace` for
/// connections to finish their requests. With `tls`, each connection first completes a TLS
/// handshake (within `handshake_timeout`; ALPN picks HTTP/2 or HTTP/1.1) and the handler is
/// told the scheme is `https`.
pub async fn serve<H, F>(
    listener: TcpListener,
    builder: Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    handshake_timeout: Duration,
    handler: H,
    mut shutdown: Shutdown,
    grace: Duration,
) where
    H: Fn(Request<Incoming>, SocketAddr, &'static str) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let handler = handler.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let result = match tls {
                        None => {
                            let service = service_fn(move |req| handler(req, peer, "http"));
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                        Some(acceptor) => {
                            let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, %peer, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    tracing::debug!(%peer, "TLS handshake timed out");
                                    return;
                                }
                            };
                            let service = service_fn(move |req| handler(req, peer, "https"));
                            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                            watcher.watch(conn.into_owned()).await
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(error = %e, %peer, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(grace) => tracing::warn!(grace_ms = grace.as_millis() as u64, "shutdown deadline passed with requests still in flight"),
    }
}
