//! Connection accounting for upstream pools: a connector that counts the connections it
//! opens per target and a connection wrapper that counts them open until they close, so the
//! admin API and `/metrics` can report pool utilization and the connection reuse rate.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};

use hyper::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower_service::Service;

use super::body::BoxError;
use crate::telemetry::metrics::Counter;

/// The connection counts of one target.
#[derive(Debug)]
pub struct ConnectionStats {
    /// Connections opened since the series was created (survives reloads).
    pub opened: Arc<Counter>,
    /// Connections open now, busy or idle in the pool.
    open: AtomicUsize,
}

impl ConnectionStats {
    /// Counts for a target whose opened-connections counter is `opened`.
    pub fn new(opened: Arc<Counter>) -> Self {
        ConnectionStats {
            opened,
            open: AtomicUsize::new(0),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

/// An [`HttpConnector`] that counts each connection against the target it reaches.
#[derive(Clone, Debug)]
pub struct CountingConnector {
    inner: HttpConnector,
    /// `(authority, stats)` of every target of the upstream.
    targets: Arc<[(String, Arc<ConnectionStats>)]>,
}

impl CountingConnector {
    /// Wraps `inner`, counting connections to each of `targets`.
    pub fn new(inner: HttpConnector, targets: Arc<[(String, Arc<ConnectionStats>)]>) -> Self {
        CountingConnector { inner, targets }
    }

    fn stats_for(&self, uri: &Uri) -> Option<Arc<ConnectionStats>> {
        let authority = uri.authority()?.as_str();
        self.targets
            .iter()
            .find(|(a, _)| a == authority)
            .map(|(_, s)| s.clone())
    }
}

impl Service<Uri> for CountingConnector {
    type Response = CountedConnection;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<CountedConnection, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let stats = self.stats_for(&uri);
        let connecting = self.inner.call(uri);
        Box::pin(async move {
            let io = connecting.await?;
            if let Some(stats) = &stats {
                stats.opened.add(1);
                stats.open.fetch_add(1, Ordering::Relaxed);
            }
            Ok(CountedConnection { io, stats })
        })
    }
}

/// A connection counted open until it is dropped.
#[derive(Debug)]
pub struct CountedConnection {
    io: TokioIo<TcpStream>,
    stats: Option<Arc<ConnectionStats>>,
}

impl Drop for CountedConnection {
    fn drop(&mut self) {
        if let Some(stats) = &self.stats {
            stats.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Connection for CountedConnection {
    fn connected(&self) -> Connected {
        self.io.connected()
    }
}

impl Read for CountedConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: ReadBufCursor<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for CountedConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}

/// The share of a target's open connections busy with a request, in `0.0..=1.0` (0 with no
/// connection open).
pub fn utilization(in_flight: usize, open: usize) -> f64 {
    if open == 0 {
        0.0
    } else {
        (in_flight as f64 / open as f64).min(1.0)
    }
}

/// The share of requests that went out on a connection already open, in `0.0..=1.0` (0
/// before the first request).
pub fn reuse_rate(requests: u64, opened: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        1.0 - (opened.min(requests) as f64 / requests as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utilization_and_reuse_stay_within_zero_and_one() {
        assert_eq!(utilization(0, 0), 0.0);
        assert_eq!(utilization(3, 4), 0.75);
        assert_eq!(utilization(5, 4), 1.0);
        assert_eq!(reuse_rate(0, 0), 0.0);
        assert_eq!(reuse_rate(100, 1), 0.99);
        assert_eq!(reuse_rate(2, 5), 0.0);
    }
}
