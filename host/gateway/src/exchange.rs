//! One request on its way through the stages: what the server knows about its connection,
//! and what every stage after routing reads and leaves for `finish` and `log`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

use sluice_backends::Backends;
use sluice_bindings::{Hook, RequestHead};
use sluice_runtime::ResponseEdits;

use crate::router::Route;
use crate::state::Gateway;

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
}

/// What was seen of the request body as it was read: filled by the request body's reader,
/// read by `log` once the response was sent.
#[derive(Debug, Default)]
pub struct BodyStats {
    /// Request body bytes received from the client.
    pub received: AtomicU64,
    /// Whether the body ran past the server's limit while it streamed upstream.
    pub exceeded: AtomicBool,
}

/// A routed request between the stages.
pub struct Exchange<'g> {
    /// The gateway that was current when the request arrived.
    pub gateway: &'g Gateway,
    /// The backends plugins and the request path use.
    pub backends: &'g Backends,
    /// The route that matched.
    pub route: &'g Route,
    /// The connection.
    pub conn: ConnInfo,
    /// The request id.
    pub request_id: &'g str,
    /// When the request head arrived.
    pub started: Instant,
    /// The request as the chain last saw it; `None` until the request chain ran, and for a
    /// route without plugins.
    pub head: Option<RequestHead>,
    /// How many plugins, from the front of the chain, get response hooks.
    pub ran: usize,
    /// The edits the request hooks asked for with `response.edit`, for the response chain.
    pub replies: ResponseEdits,
    /// What was read of the request body.
    pub body: Arc<BodyStats>,
    /// Whether the request is a gRPC call (`application/grpc`): the gateway's and plugins'
    /// error answers then go out as gRPC statuses.
    pub grpc: bool,
}

impl Exchange<'_> {
    /// Whether some plugin of the route runs `on-log`.
    pub fn logs(&self) -> bool {
        self.route.chain.plugins().iter().any(|p| p.has_hook(Hook::Log))
    }
}
