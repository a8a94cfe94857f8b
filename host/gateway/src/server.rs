//! Listeners: accept connections (plain or TLS), serve HTTP/1.1 and HTTP/2 (ALPN over TLS, h2c
//! by prior knowledge in plain text) with the configured limits, and drain in-flight requests
//! on shutdown up to a deadline; connections idle past the idle timeout are closed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use sluice_config::ServerSettings;
use sluice_core::body::ProxyBody;
use sluice_core::body::observed;
use sluice_core::workers::Workers;

pub mod http3;
mod idle;

use idle::{Activity, Tracked};

/// Tells listeners to stop accepting and drain.
pub type Shutdown = watch::Receiver<bool>;

/// The connection builder for `settings`: header size and count limits (431 beyond them),
/// the header-read timeout that cuts slow clients off, and HTTP/2's extended CONNECT (RFC
/// 8441, WebSocket over HTTP/2).
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
        .max_header_list_size(settings.max_header_bytes as u32)
        .enable_connect_protocol();
    builder
}

/// The timeouts of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// Time a TLS client has to complete its handshake.
    pub handshake: Duration,
    /// A connection that moves no byte and has no request in flight for this long is closed
    /// gracefully (HTTP/2 gets a GOAWAY).
    pub idle: Duration,
    /// How long shutdown waits for connections to finish their requests.
    pub grace: Duration,
}

/// Serves `listener` with `handler` until `shutdown` flips, then closes every connection
/// gracefully and waits up to `timeouts.grace` for them to finish their requests. With
/// `tls`, each connection first completes a TLS handshake (within `timeouts.handshake`; ALPN
/// picks HTTP/2 or HTTP/1.1) and the handler is told the scheme is `https`. Connections idle
/// for `timeouts.idle` are closed. With `workers`, each connection is served on one of them
/// (round robin); otherwise on the calling runtime.
pub async fn serve<H, F>(
    listener: TcpListener,
    builder: Builder<TokioExecutor>,
    tls: Option<TlsAcceptor>,
    timeouts: Timeouts,
    handler: H,
    mut shutdown: Shutdown,
    workers: Option<Arc<Workers>>,
) where
    H: Fn(Request<Incoming>, SocketAddr, &'static str) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>> + Send + 'static,
{
    let builder = Arc::new(builder);
    // Every connection task holds a sender; the drain is over when the last one is dropped.
    let (open_tx, mut open_rx) = mpsc::channel::<()>(1);
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
                let connection = Connection {
                    builder: builder.clone(),
                    handler: handler.clone(),
                    peer,
                    timeouts,
                    shutdown: shutdown.clone(),
                    _open: open_tx.clone(),
                };
                let tls = tls.clone();
                let Some(workers) = &workers else {
                    tokio::spawn(connection.start(stream, tls));
                    continue;
                };
                // The connection moves to a worker's own reactor, so that its I/O wakes
                // that worker and no other thread.
                match stream.into_std() {
                    Ok(stream) => workers.spawn(async move {
                        match TcpStream::from_std(stream) {
                            Ok(stream) => connection.start(stream, tls).await,
                            Err(e) => tracing::warn!(error = %e, %peer, "cannot hand a connection to a worker"),
                        }
                    }),
                    Err(e) => tracing::warn!(error = %e, %peer, "cannot hand a connection to a worker"),
                }
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    drop(open_tx);
    tokio::select! {
        _ = open_rx.recv() => tracing::info!("all connections drained"),
        _ = tokio::time::sleep(timeouts.grace) => tracing::warn!(grace_ms = timeouts.grace.as_millis() as u64, "shutdown deadline passed with requests still in flight"),
    }
}

/// One accepted connection and what serving it needs.
struct Connection<H> {
    builder: Arc<Builder<TokioExecutor>>,
    handler: H,
    peer: SocketAddr,
    timeouts: Timeouts,
    shutdown: Shutdown,
    _open: mpsc::Sender<()>,
}

impl<H, F> Connection<H>
where
    H: Fn(Request<Incoming>, SocketAddr, &'static str) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Result<Response<ProxyBody>, std::convert::Infallible>> + Send + 'static,
{
    /// Completes the TLS handshake when there is one (within the handshake timeout), then
    /// serves the connection.
    async fn start(self, stream: TcpStream, tls: Option<TlsAcceptor>) {
        let (peer, handshake) = (self.peer, self.timeouts.handshake);
        match tls {
            None => self.serve(stream, "http").await,
            Some(acceptor) => match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => self.serve(stream, "https").await,
                Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            },
        }
    }

    /// Serves the connection until it ends, closing it gracefully on shutdown or when idle.
    async fn serve<S>(mut self, stream: S, scheme: &'static str)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(Tracked::new(stream, activity.clone()));
        let (handler, peer, counted) = (self.handler.clone(), self.peer, activity.clone());
        let service = service_fn(move |req| {
            let guard = counted.request();
            let answer = handler(req, peer, scheme);
            async move {
                let resp = answer.await?;
                // The request stays in flight until its response body has been sent.
                Ok::<_, std::convert::Infallible>(resp.map(|body| observed(body, move |_, _| drop(guard)).boxed()))
            }
        });
        let conn = self.builder.serve_connection_with_upgrades(io, service);
        tokio::pin!(conn);
        let closing = tokio::select! {
            result = conn.as_mut() => Some(result),
            _ = self.shutdown.changed() => None,
            _ = activity.idle_for(self.timeouts.idle) => {
                tracing::debug!(%peer, "closing an idle connection");
                None
            }
        };
        let result = match closing {
            Some(result) => result,
            None => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, %peer, "connection ended with an error");
        }
    }
}
