//! Response bodies: whole buffers, or a channel that a streaming task feeds (and can cut).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

/// Error type of response bodies; an error aborts the connection mid-body.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every simulator response.
pub(crate) type SimBody = BoxBody<Bytes, BoxError>;
/// Sending half of a streaming body: `Ok` chunks are sent, an `Err` cuts the stream.
pub(crate) type BodySender = mpsc::Sender<Result<Bytes, BoxError>>;

/// A complete body.
pub(crate) fn full(bytes: impl Into<Bytes>) -> SimBody {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// A body fed through the returned sender; it ends when the sender is dropped.
pub(crate) fn channel() -> (BodySender, SimBody) {
    let (tx, rx) = mpsc::channel(16);
    (tx, ChannelBody { rx }.boxed())
}

struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, BoxError>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|result| result.map(Frame::data)))
    }
}
