//! The connections of one request worker to an upstream's targets, on hyper's connection API
//! (no shared client, no pool key to hash, no checkout future): a request takes its target's
//! most recently used idle HTTP/1.1 connection, or opens one, and the connection goes back to
//! the worker's idle list once its response has been read to the end ([`Lent`]). Over HTTP/2
//! every request of the worker shares one connection per target.
//!
//! A request that an idle connection could not carry because the upstream had closed it
//! (hyper hands it back unsent) goes out on the next one, or on a new connection, so an
//! upstream closing keep-alive connections is never seen by a client. Idle connections older
//! than the upstream's `idle_timeout_ms` are closed when a request looks for one and by
//! [`Connections::close_expired`], which the upstream's sweeper calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::header::{HOST, HeaderValue};
use hyper::http::uri::Authority;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use parking_lot::Mutex;
use tower_service::Service;

use crate::body::{BoxError, ProxyBody};
use crate::pool::CountingConnector;

/// Why a request did not get a response head.
#[derive(Debug)]
pub(super) enum SendError {
    /// No connection could be made: the request was not sent.
    Connect(BoxError),
    /// The connection failed while the request was out.
    Failed(hyper::Error),
}

/// An idle HTTP/1.1 connection and since when it has been idle.
#[derive(Debug)]
struct Idle {
    sender: http1::SendRequest<ProxyBody>,
    since: Instant,
}

/// One worker's connections to the targets of one upstream (targets by index).
#[derive(Debug)]
pub(super) struct Connections {
    connector: CountingConnector,
    http2: bool,
    max_idle: usize,
    idle_timeout: Duration,
    /// Per target, HTTP/1.1 connections waiting for a request, the most recently used last.
    idle: Mutex<Vec<Vec<Idle>>>,
    /// Per target, the HTTP/2 connection the worker's requests share.
    shared: Mutex<Vec<Option<http2::SendRequest<ProxyBody>>>>,
}

/// An HTTP/1.1 connection lent to one request; [`Lent::give_back`] returns it to its worker's
/// idle list once the response was read to its end.
pub(super) struct Lent {
    connections: Arc<Connections>,
    target: usize,
    sender: http1::SendRequest<ProxyBody>,
}

impl Lent {
    /// Returns the connection to the idle list, unless it has closed or the list is full.
    pub(super) fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        let mut idle = self.connections.idle.lock();
        let list = &mut idle[self.target];
        if list.len() < self.connections.max_idle {
            list.push(Idle {
                sender: self.sender,
                since: Instant::now(),
            });
        }
    }
}

impl Connections {
    /// No connection open yet to any of `targets` targets; new ones are made by `connector`.
    pub(super) fn new(
        connector: CountingConnector,
        targets: usize,
        http2: bool,
        max_idle: usize,
        idle_timeout: Duration,
    ) -> Self {
        Connections {
            connector,
            http2,
            max_idle,
            idle_timeout,
            idle: Mutex::new((0..targets).map(|_| Vec::new()).collect()),
            shared: Mutex::new(vec![None; targets]),
        }
    }

    /// Sends `req` (its URI absolute, naming `authority`) to target `target` and waits for
    /// the response head. Over HTTP/1.1 the connection comes back with it, to be given back
    /// when the body has been read (none for a `101`: the connection is the tunnel's now).
    pub(super) async fn send(
        self: &Arc<Self>,
        target: usize,
        authority: &Authority,
        mut req: Request<ProxyBody>,
    ) -> Result<(Response<Incoming>, Option<Lent>), SendError> {
        if self.http2 {
            return self.send_http2(target, authority, req).await.map(|resp| (resp, None));
        }
        if !req.headers().contains_key(HOST)
            && let Ok(host) = HeaderValue::from_str(authority.as_str())
        {
            req.headers_mut().insert(HOST, host);
        }
        *req.uri_mut() = origin_form(req.uri());
        while let Some(mut sender) = self.take_idle(target) {
            if sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.lend(target, sender, resp)),
                Err(mut error) => match error.take_message() {
                    // Closed before the request went out: the next connection carries it.
                    Some(unsent) => req = unsent,
                    None => return Err(SendError::Failed(error.into_error())),
                },
            }
        }
        let mut sender = self.open_http1(authority).await?;
        match sender.send_request(req).await {
            Ok(resp) => Ok(self.lend(target, sender, resp)),
            Err(error) => Err(SendError::Failed(error)),
        }
    }

    /// Closes the idle connections that have waited longer than the idle timeout.
    pub(super) fn close_expired(&self) {
        let now = Instant::now();
        for list in self.idle.lock().iter_mut() {
            self.drop_expired(list, now);
        }
        for shared in self.shared.lock().iter_mut() {
            if shared.as_ref().is_some_and(http2::SendRequest::is_closed) {
                *shared = None;
            }
        }
    }

    fn lend(
        self: &Arc<Self>,
        target: usize,
        sender: http1::SendRequest<ProxyBody>,
        resp: Response<Incoming>,
    ) -> (Response<Incoming>, Option<Lent>) {
        let lent = (resp.status() != StatusCode::SWITCHING_PROTOCOLS).then(|| Lent {
            connections: self.clone(),
            target,
            sender,
        });
        (resp, lent)
    }

    /// The target's most recently used idle connection that has not expired.
    fn take_idle(&self, target: usize) -> Option<http1::SendRequest<ProxyBody>> {
        let mut idle = self.idle.lock();
        let list = &mut idle[target];
        self.drop_expired(list, Instant::now());
        list.pop().map(|idle| idle.sender)
    }

    /// Closes the connections of `list` (oldest first) that have been idle for the idle
    /// timeout by `now`.
    fn drop_expired(&self, list: &mut Vec<Idle>, now: Instant) {
        let expired = list
            .iter()
            .take_while(|idle| now.duration_since(idle.since) >= self.idle_timeout)
            .count();
        list.drain(..expired);
    }

    async fn connect(&self, authority: &Authority) -> Result<crate::pool::CountedConnection, SendError> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .map_err(|e| SendError::Connect(e.into()))?;
        self.connector.clone().call(uri).await.map_err(SendError::Connect)
    }

    async fn open_http1(&self, authority: &Authority) -> Result<http1::SendRequest<ProxyBody>, SendError> {
        let io = self.connect(authority).await?;
        let (sender, conn) = http1::handshake(io).await.map_err(|e| SendError::Connect(e.into()))?;
        tokio::spawn(async move {
            if let Err(error) = conn.with_upgrades().await {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    async fn send_http2(
        &self,
        target: usize,
        authority: &Authority,
        req: Request<ProxyBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let shared = self.shared.lock()[target].clone().filter(|s| !s.is_closed());
        let mut sender = match shared {
            Some(sender) => sender,
            None => {
                let io = self.connect(authority).await?;
                let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                    .timer(TokioTimer::new())
                    .handshake(io)
                    .await
                    .map_err(|e| SendError::Connect(e.into()))?;
                tokio::spawn(async move {
                    if let Err(error) = conn.await {
                        tracing::debug!(%error, "upstream HTTP/2 connection ended with an error");
                    }
                });
                self.shared.lock()[target] = Some(sender.clone());
                sender
            }
        };
        sender.ready().await.map_err(SendError::Failed)?;
        sender.send_request(req).await.map_err(SendError::Failed)
    }
}

/// `uri`'s path and query alone, as an HTTP/1.1 request line carries them.
fn origin_form(uri: &Uri) -> Uri {
    match uri.path_and_query() {
        Some(pq) if uri.scheme().is_some() => Uri::from(pq.clone()),
        Some(_) => uri.clone(),
        None => Uri::from_static("/"),
    }
}

#[cfg(test)]
#[path = "connections_tests.rs"]
mod tests;
