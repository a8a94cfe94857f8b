//! What a flight publishes to its waiters through its `watch` channel: the response head as
//! it becomes known, the log of body chunks, and how the body ended.

use std::sync::Arc;

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::HeaderMap;

use sluice_core::upstream::UpstreamError;

/// What the waiters of a flight learn about the response head.
#[derive(Debug, Clone)]
pub(super) enum Head {
    /// The fetch has not answered yet.
    Pending,
    /// The response is shared: stream it from the log.
    Shared(Arc<SharedHead>),
    /// The fetch failed and errors are shared (`share-errors`): every waiter answers with it.
    Failed(Arc<UpstreamError>),
    /// The answer is not shared (an error or 5xx without `share-errors`, a body declared
    /// larger than the shared buffer, or a fetch abandoned): every waiter but the first makes
    /// its own request; the first gets the fetch's own answer.
    NotShared,
}

/// The status and headers every waiter answers with.
#[derive(Debug)]
pub(super) struct SharedHead {
    /// The upstream's status.
    pub status: StatusCode,
    /// The upstream's headers, hop-by-hop ones removed.
    pub headers: HeaderMap,
}

/// How the shared body ended, if it did.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum BodyEnd {
    /// Still streaming.
    Open,
    /// The whole body is in the log.
    Complete,
    /// The body grew past the shared buffer; waiters' bodies fail.
    Overflow,
    /// The upstream's body failed with this error.
    Failed(String),
}

/// The state a flight publishes to its waiters.
#[derive(Debug)]
pub(super) struct FlightState {
    pub head: Head,
    pub chunks: Vec<Bytes>,
    pub end: BodyEnd,
}
