//! The body type the proxy sends both ways, and [`Tap`]: the one wrapper that watches a body
//! go by (each chunk, then how it ended: sent whole, failed, or dropped when the client went
//! away).

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

/// How a tapped body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// It was sent to its end (or is known whole: its declared length arrived).
    Complete,
    /// It failed; the error goes on to whoever reads the body.
    Failed,
    /// It was dropped before its end: the client went away.
    Dropped,
}

/// What watches a body go by in a [`Tap`].
pub trait Observer: Send + Sync + Unpin + 'static {
    /// A data chunk went through. Returns whether the body is whole with it (its declared
    /// length arrived), which ends it [`End::Complete`] at once; the default says no.
    fn data(&mut self, chunk: &Bytes) -> bool {
        let _ = chunk;
        false
    }

    /// The body ended, once: how, and the error when it failed.
    fn end(&mut self, end: End, error: Option<&BoxError>);
}

/// A body passed through unchanged while an [`Observer`] sees each data chunk and, once, how
/// the body ended: at its end, on an error, or when it is dropped before its end. The one
/// body wrapper that watches: what counts bytes for `on-log`, what stores a response in the
/// HTTP cache, what reads an inference response's usage.
pub struct Tap<O: Observer> {
    inner: ProxyBody,
    observer: O,
    ended: bool,
}

impl<O: Observer> Tap<O> {
    /// Taps `inner` for `observer`.
    pub fn new(inner: ProxyBody, observer: O) -> Self {
        Tap {
            inner,
            observer,
            ended: false,
        }
    }

    fn end(&mut self, end: End, error: Option<&BoxError>) {
        if !self.ended {
            self.ended = true;
            self.observer.end(end, error);
        }
    }
}

impl<O: Observer> Body for Tap<O> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                let whole = match frame.data_ref() {
                    Some(data) if !this.ended => this.observer.data(data),
                    _ => false,
                };
                if whole || this.inner.is_end_stream() {
                    this.end(End::Complete, None);
                }
            }
            Poll::Ready(None) => this.end(End::Complete, None),
            Poll::Ready(Some(Err(e))) => this.end(End::Failed, Some(e)),
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

impl<O: Observer> Drop for Tap<O> {
    fn drop(&mut self) {
        // hyper never polls a body that is already at its end (204, HEAD, empty): that is a
        // complete response, not a disconnect.
        let end = if self.inner.is_end_stream() {
            End::Complete
        } else {
            End::Dropped
        };
        self.end(end, None);
    }
}

/// The observer of [`observed`]: counts the bytes sent, then calls its function.
pub struct OnEnd<F> {
    sent: u64,
    on_end: Option<F>,
}

impl<F: FnOnce(u64, bool) + Send + Sync + Unpin + 'static> Observer for OnEnd<F> {
    fn data(&mut self, chunk: &Bytes) -> bool {
        self.sent += chunk.len() as u64;
        false
    }

    fn end(&mut self, end: End, _: Option<&BoxError>) {
        if let Some(f) = self.on_end.take() {
            f(self.sent, end == End::Complete);
        }
    }
}

/// Wraps a body and calls `on_end(bytes_sent, completed)` once, when the body ends (`true`),
/// fails or is dropped before its end (a disconnect: `false`).
pub fn observed<F: FnOnce(u64, bool) + Send + Sync + Unpin + 'static>(inner: ProxyBody, on_end: F) -> Tap<OnEnd<F>> {
    Tap::new(
        inner,
        OnEnd {
            sent: 0,
            on_end: Some(on_end),
        },
    )
}

/// What rewrites a body's data as it streams in a [`Recoded`]: a compressor, a decoder.
pub trait Recoder: Send + Sync + Unpin + 'static {
    /// Whether the input's trailers go on after the last output (else they are dropped).
    const KEEPS_TRAILERS: bool;

    /// The output for a chunk of input (empty when there is none yet). An error ends the
    /// body with it.
    fn chunk(&mut self, data: &Bytes) -> Result<Bytes, BoxError>;

    /// The last output, at the end of the input.
    fn finish(self) -> Result<Bytes, BoxError>;
}

/// A body whose data a [`Recoder`] rewrites as it streams; the other body combinator next to
/// [`Tap`], for response compression and request-body decoding.
pub struct Recoded<R: Recoder> {
    inner: ProxyBody,
    /// `None` once the input ended or failed.
    recoder: Option<R>,
    /// The input's trailers, sent after the last output.
    trailers: Option<Frame<Bytes>>,
}

impl<R: Recoder> Recoded<R> {
    /// `inner`, rewritten by `recoder`.
    pub fn new(inner: ProxyBody, recoder: R) -> Self {
        Recoded {
            inner,
            recoder: Some(recoder),
            trailers: None,
        }
    }

    /// Ends the output: the recoder's last bytes as a frame, if any.
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        let last = self.recoder.take()?.finish();
        match last {
            Ok(bytes) if bytes.is_empty() => None,
            Ok(bytes) => Some(Ok(Frame::data(bytes))),
            Err(e) => Some(Err(e)),
        }
    }
}

impl<R: Recoder> Body for Recoded<R> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(recoder) = this.recoder.as_mut() else {
                return Poll::Ready(this.trailers.take().map(Ok));
            };
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => match this.finish() {
                    Some(last) => return Poll::Ready(Some(last)),
                    None => continue,
                },
                Poll::Ready(Some(Ok(frame))) => frame,
            };
            match frame.into_data() {
                Ok(data) => match recoder.chunk(&data) {
                    Ok(out) if out.is_empty() => {}
                    Ok(out) => return Poll::Ready(Some(Ok(Frame::data(out)))),
                    Err(e) => {
                        this.recoder = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                },
                Err(trailers) if R::KEEPS_TRAILERS => {
                    this.trailers = Some(trailers);
                    if let Some(last) = this.finish() {
                        return Poll::Ready(Some(last));
                    }
                }
                Err(_) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.recoder.is_none() && self.trailers.is_none()
    }
}
