//! A request waiting on a shared fetch: it waits for the head, then reads the shared body log
//! from the start as the fetch appends to it.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::CONTENT_LENGTH;
use hyper::{Response, Version};
use tokio::sync::watch;

use super::state::{BodyEnd, FlightState, Head, SharedHead};
use sluice_core::body::{BoxError, ProxyBody};
use sluice_core::upstream::UpstreamError;

/// Why a shared body did not reach its end.
#[derive(Debug, thiserror::Error)]
pub enum SharedBodyError {
    /// The body grew past the shared buffer (`server.max_body_bytes`).
    #[error("the shared response body grew past the {0}-byte shared buffer")]
    Overflow(usize),
    /// The upstream's body failed.
    #[error("the upstream's body failed: {0}")]
    Upstream(String),
    /// The fetch ended without finishing the body (the gateway is shutting down).
    #[error("the shared fetch ended before the body did")]
    Ended,
}

/// What a waiter learned about the response head.
pub(super) enum WaitOutcome {
    /// Answer with this head and the shared body.
    Shared(Arc<SharedHead>),
    /// Answer with this upstream error (errors are shared).
    Failed(Arc<UpstreamError>),
    /// Not shared: make an own request (the first request gets the fetch's answer instead).
    NotShared,
}

/// One request's view of a flight.
pub(super) struct Waiter {
    rx: watch::Receiver<FlightState>,
}

impl Waiter {
    /// A waiter on the flight `rx` belongs to.
    pub fn new(rx: watch::Receiver<FlightState>) -> Self {
        Waiter { rx }
    }

    /// Waits for the fetch's head.
    pub async fn head(&mut self) -> WaitOutcome {
        loop {
            match &self.rx.borrow_and_update().head {
                Head::Pending => {}
                Head::Shared(head) => return WaitOutcome::Shared(head.clone()),
                Head::Failed(error) => return WaitOutcome::Failed(error.clone()),
                Head::NotShared => return WaitOutcome::NotShared,
            }
            if self.rx.changed().await.is_err() {
                // The fetch is gone; what it published last is all there is.
                return match &self.rx.borrow().head {
                    Head::Shared(head) => WaitOutcome::Shared(head.clone()),
                    Head::Failed(error) => WaitOutcome::Failed(error.clone()),
                    Head::Pending | Head::NotShared => WaitOutcome::NotShared,
                };
            }
        }
    }

    /// The response to send: the shared head and the shared body from its first byte.
    pub fn response(self, head: &SharedHead, cap: usize) -> Response<ProxyBody> {
        let length = head
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let body = SharedBody {
            slot: Slot::Ready(self.rx),
            next: 0,
            length,
            cap,
            finished: false,
        };
        let mut resp = Response::new(body.boxed());
        *resp.status_mut() = head.status;
        *resp.headers_mut() = head.headers.clone();
        *resp.version_mut() = Version::HTTP_11;
        resp
    }
}

type Changed = Pin<Box<dyn Future<Output = (watch::Receiver<FlightState>, bool)> + Send>>;

enum Slot {
    /// Ready to read the log.
    Ready(watch::Receiver<FlightState>),
    /// Waiting for the log to change. (A `Mutex` only to make the body `Sync`: it is reached
    /// through `get_mut`, never locked.)
    Waiting(Mutex<Changed>),
    /// The fetch is gone: read what is left, then end.
    Closed(watch::Receiver<FlightState>),
    Done,
}

/// The shared body as one waiter reads it.
struct SharedBody {
    slot: Slot,
    next: usize,
    length: Option<u64>,
    cap: usize,
    finished: bool,
}

impl SharedBody {
    /// The next frame from the log, or how the body ended; `None` when there is nothing new yet.
    fn read(&mut self, rx: &mut watch::Receiver<FlightState>) -> Option<Option<Result<Frame<Bytes>, BoxError>>> {
        let state = rx.borrow_and_update();
        if let Some(chunk) = state.chunks.get(self.next) {
            self.next += 1;
            return Some(Some(Ok(Frame::data(chunk.clone()))));
        }
        match &state.end {
            BodyEnd::Open => None,
            BodyEnd::Complete => Some(None),
            BodyEnd::Overflow => Some(Some(Err(SharedBodyError::Overflow(self.cap).into()))),
            BodyEnd::Failed(e) => Some(Some(Err(SharedBodyError::Upstream(e.clone()).into()))),
        }
    }
}

impl Body for SharedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.slot, Slot::Done) {
                Slot::Ready(mut rx) => match this.read(&mut rx) {
                    Some(frame) => {
                        this.finished = !matches!(frame, Some(Ok(_)));
                        this.slot = if this.finished { Slot::Done } else { Slot::Ready(rx) };
                        return Poll::Ready(frame);
                    }
                    None => {
                        let changed: Changed = Box::pin(async move {
                            let closed = rx.changed().await.is_err();
                            (rx, closed)
                        });
                        this.slot = Slot::Waiting(Mutex::new(changed));
                    }
                },
                Slot::Waiting(mut changed) => {
                    let polled = changed.get_mut().map(|f| f.as_mut().poll(cx));
                    match polled {
                        Ok(Poll::Pending) => {
                            this.slot = Slot::Waiting(changed);
                            return Poll::Pending;
                        }
                        Ok(Poll::Ready((rx, false))) => this.slot = Slot::Ready(rx),
                        Ok(Poll::Ready((rx, true))) => this.slot = Slot::Closed(rx),
                        Err(_) => return Poll::Ready(Some(Err(SharedBodyError::Ended.into()))),
                    }
                }
                Slot::Closed(mut rx) => {
                    let frame = this.read(&mut rx).unwrap_or(Some(Err(SharedBodyError::Ended.into())));
                    this.finished = !matches!(frame, Some(Ok(_)));
                    this.slot = if this.finished { Slot::Done } else { Slot::Closed(rx) };
                    return Poll::Ready(frame);
                }
                Slot::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.finished || self.length == Some(0)
    }

    fn size_hint(&self) -> SizeHint {
        match self.length {
            Some(len) => SizeHint::with_exact(len),
            None => SizeHint::default(),
        }
    }
}
