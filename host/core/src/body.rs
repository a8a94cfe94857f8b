//! The body type the proxy sends both ways, and a wrapper that runs a callback when a body
//! has been sent to its end (or dropped, when the client went away).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, SizeHint};

/// Any error a body can fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type of every request and response the proxy produces.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    full(Bytes::new())
}

/// Wraps a body and calls `on_end(bytes_sent, completed)` once, when the body ends or is
/// dropped (a disconnect: `completed` is false).
pub struct Observed<F: FnOnce(u64, bool) + Send + 'static> {
    inner: ProxyBody,
    sent: u64,
    on_end: Option<F>,
}

impl<F: FnOnce(u64, bool) + Send + 'static> Observed<F> {
    /// Observes `inner`.
    pub fn new(inner: ProxyBody, on_end: F) -> Self {
        Observed {
            inner,
            sent: 0,
            on_end: Some(on_end),
        }
    }

    fn finish(&mut self, completed: bool) {
        if let Some(f) = self.on_end.take() {
            f(self.sent, completed);
        }
    }
}

impl<F: FnOnce(u64, bool) + Send + Unpin + 'static> Body for Observed<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.sent += data.len() as u64;
                }
                if self.inner.is_end_stream() {
                    self.finish(true);
                }
            }
            Poll::Ready(None) => self.finish(true),
            Poll::Ready(Some(Err(_))) => self.finish(false),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F: FnOnce(u64, bool) + Send + 'static> Drop for Observed<F> {
    fn drop(&mut self) {
        // hyper never polls a body that is already at its end (204, HEAD, empty): that is a
        // complete response, not a disconnect.
        let completed = self.inner.is_end_stream();
        self.finish(completed);
    }
}
