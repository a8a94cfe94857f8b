//! Idle connections: an I/O wrapper that counts reads and writes, a count of the requests a
//! connection has in flight, and a watch that fires once a connection has moved no byte and
//! served no request for the idle timeout (an idle HTTP/2 or keep-alive connection, or a
//! client that connected and never spoke).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// What one connection has done: I/O operations that moved bytes, and requests in flight.
#[derive(Debug, Default)]
pub struct Activity {
    io: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    /// Counts a request in flight until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestGuard(self.clone())
    }

    /// Resolves once `timeout` has passed with no byte moved and no request in flight. Looks
    /// every quarter of the timeout, so it fires between 1× and 1.25× the timeout.
    pub async fn idle_for(&self, timeout: Duration) {
        let step = (timeout / 4).max(Duration::from_millis(5));
        let mut seen = self.io.load(Ordering::Relaxed);
        let mut quiet = Duration::ZERO;
        loop {
            tokio::time::sleep(step).await;
            let now = self.io.load(Ordering::Relaxed);
            if now != seen || self.in_flight.load(Ordering::Relaxed) > 0 {
                seen = now;
                quiet = Duration::ZERO;
                continue;
            }
            quiet += step;
            if quiet >= timeout {
                return;
            }
        }
    }
}

/// Keeps one request counted in flight on its connection.
#[derive(Debug)]
pub struct RequestGuard(Arc<Activity>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A stream whose reads and writes count as activity of its connection.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    /// Wraps `inner`, counting into `activity`.
    pub fn new(inner: S, activity: Arc<Activity>) -> Self {
        Tracked { inner, activity }
    }

    fn bump(&self) {
        self.activity.io.fetch_add(1, Ordering::Relaxed);
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() != before {
            self.bump();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.bump();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.bump();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_keeps_the_connection_from_going_idle() {
        let activity = Arc::new(Activity::default());
        let guard = activity.request();
        let watch = activity.idle_for(Duration::from_millis(100));
        tokio::pin!(watch);
        assert!(
            tokio::time::timeout(Duration::from_millis(500), &mut watch)
                .await
                .is_err(),
            "not idle while a request is in flight"
        );
        drop(guard);
        let started = tokio::time::Instant::now();
        watch.await;
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited <= Duration::from_millis(150),
            "{waited:?}"
        );
    }
}
