//! The client's side of a complete (non-streaming) inference response: chunks pass through
//! unchanged as they come, and a copy is read for usage once the body is over.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};

use super::usage::UsageTap;
use sluice_core::body::{BoxError, ProxyBody};

/// Passes a complete JSON response to the client unchanged, chunk by chunk, keeping a copy of
/// up to `cap` bytes; at the end the copy's `usage`, generated text and error payload fill the
/// [`UsageTap`] (nothing when the body was longer than `cap` or not JSON), with
/// `first_token_at` the end of the body. `on_end(tap, completed)` runs once: at the end
/// (`true`), or when the body fails or is dropped before it (`false`; a failure also sets
/// `tap.error`, and the error goes on to the client's connection).
pub fn json_body(rest: ProxyBody, cap: usize, on_end: impl FnOnce(UsageTap, bool) + Send + 'static) -> ProxyBody {
    JsonBody {
        inner: rest,
        copy: Vec::new(),
        cap,
        overflowed: false,
        done: false,
        on_end: Mutex::new(Some(Box::new(on_end))),
    }
    .boxed()
}

/// The end callback. (In a `Mutex` only to make the body `Sync`; reached through `&mut`.)
type OnEnd = Mutex<Option<Box<dyn FnOnce(UsageTap, bool) + Send>>>;

struct JsonBody {
    inner: ProxyBody,
    copy: Vec<u8>,
    cap: usize,
    overflowed: bool,
    done: bool,
    on_end: OnEnd,
}

impl JsonBody {
    fn keep(&mut self, data: &Bytes) {
        if self.overflowed {
            return;
        }
        if self.copy.len() + data.len() > self.cap {
            self.overflowed = true;
            self.copy = Vec::new();
        } else {
            self.copy.extend_from_slice(data);
        }
    }

    fn finish(&mut self, completed: bool, error: Option<String>) {
        self.done = true;
        let Some(on_end) = self.on_end.get_mut().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let mut tap = UsageTap::default();
        if completed
            && !self.overflowed
            && let Ok(response) = serde_json::from_slice::<serde_json::Value>(&self.copy)
        {
            tap.observe(&response, Instant::now());
        }
        if error.is_some() {
            tap.error = error;
        }
        self.copy = Vec::new();
        on_end(tap, completed);
    }
}

impl Body for JsonBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let polled = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &polled {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.keep(data);
                }
                if this.inner.is_end_stream() {
                    this.finish(true, None);
                }
            }
            Some(Err(e)) => {
                let error = format!("the inference backend's body failed: {e}");
                this.finish(false, Some(error));
            }
            None => this.finish(true, None),
        }
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for JsonBody {
    fn drop(&mut self) {
        // hyper does not poll a body already at its end: that is a complete response.
        let completed = self.inner.is_end_stream();
        self.finish(completed, None);
    }
}
