//! The body of a client's request, whichever listener it came on: hyper's own over TCP
//! (HTTP/1.1, HTTP/2), or the HTTP/3 listener's stream over QUIC.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use sluice_core::body::{BoxError, ProxyBody};

/// A request body from a client.
pub enum ClientBody {
    /// From a TCP listener.
    Tcp(Incoming),
    /// From the HTTP/3 listener.
    Quic(ProxyBody),
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            ClientBody::Tcp(body) => Pin::new(body)
                .poll_frame(cx)
                .map(|frame| frame.map(|f| f.map_err(|e| Box::new(e) as BoxError))),
            ClientBody::Quic(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ClientBody::Tcp(body) => body.is_end_stream(),
            ClientBody::Quic(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ClientBody::Tcp(body) => body.size_hint(),
            ClientBody::Quic(body) => body.size_hint(),
        }
    }
}
