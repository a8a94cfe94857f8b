//! Request chain: the route's plugins see the request head (and, when one asks, the body) in
//! route order and decide: forward it (with their edits and directives), answer themselves,
//! or answer from the HTTP cache.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{CONTENT_LENGTH, RANGE};
use hyper::http::request::Parts;

use sluice_bindings::Hook;
use sluice_bindings::RequestHead;
use sluice_core::body::{BoxError, ProxyBody, empty, full};
use sluice_core::headers;
use sluice_runtime::{BodyError, BodySource, Forward, RequestOutcome};

use crate::answer::Answer;
use crate::client_body::ClientBody;
use crate::exchange::{BodyStats, Exchange};
use crate::forward::cache_serve;

/// What the request chain decided.
pub enum Decision {
    /// Send the request on, as the plugins left it.
    Forward(Forward),
    /// Answer without sending it anywhere.
    Answer(Answer),
}

/// The request body: streamed to the upstream under the size limit, or buffered for a plugin.
pub struct RequestBody {
    incoming: Option<ClientBody>,
    buffered: Option<Bytes>,
    max: u64,
    stats: Arc<BodyStats>,
}

impl RequestBody {
    /// The body of a request, read at most `max` bytes, counted into `stats`.
    pub fn new(incoming: ClientBody, max: u64, stats: Arc<BodyStats>) -> Self {
        RequestBody {
            incoming: Some(incoming),
            buffered: None,
            max,
            stats,
        }
    }

    /// Whether there is a body to send (then the request cannot be replayed on a retry).
    pub fn has_body(&self, headers: &hyper::HeaderMap) -> bool {
        match &self.buffered {
            Some(bytes) => !bytes.is_empty(),
            None => {
                headers.contains_key(hyper::header::TRANSFER_ENCODING)
                    || headers
                        .get(CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok())
                        .is_some_and(|v| v.trim() != "0")
                    || self
                        .incoming
                        .as_ref()
                        .is_some_and(|b| !hyper::body::Body::is_end_stream(b))
            }
        }
    }

    /// The body to send upstream: the buffered bytes, or the client's stream under the limit
    /// (counting what passes, and noting when it runs past the limit).
    pub fn into_body(self) -> ProxyBody {
        if let Some(bytes) = self.buffered {
            return full(bytes);
        }
        let Some(incoming) = self.incoming else {
            return empty();
        };
        let (counted, exceeded) = (self.stats.clone(), self.stats);
        Limited::new(incoming, self.max as usize)
            .map_frame(move |frame| {
                if let Some(data) = frame.data_ref() {
                    counted.received.fetch_add(data.len() as u64, Ordering::Relaxed);
                }
                frame
            })
            .map_err(move |e: BoxError| {
                if e.is::<http_body_util::LengthLimitError>() {
                    exceeded.exceeded.store(true, Ordering::Relaxed);
                }
                e
            })
            .boxed()
    }
}

impl BodySource for RequestBody {
    async fn buffer(&mut self, limit: usize) -> Result<Vec<u8>, BodyError> {
        if let Some(bytes) = &self.buffered {
            return if bytes.len() > limit {
                Err(BodyError::TooLarge(limit))
            } else {
                Ok(bytes.to_vec())
            };
        }
        let Some(incoming) = self.incoming.take() else {
            return Ok(Vec::new());
        };
        // Never buffer more than the server accepts, whatever the plugin declared.
        let limit = limit.min(usize::try_from(self.max).unwrap_or(usize::MAX));
        match Limited::new(incoming, limit).collect().await {
            Ok(collected) => {
                let bytes = collected.to_bytes();
                self.stats.received.store(bytes.len() as u64, Ordering::Relaxed);
                self.buffered = Some(bytes.clone());
                Ok(bytes.to_vec())
            }
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
            Err(e) => Err(BodyError::Read(e.to_string())),
        }
    }
}

/// The request head plugins see.
pub fn request_head(ex: &Exchange<'_>, parts: &Parts, authority: Option<&str>) -> RequestHead {
    RequestHead {
        method: parts.method.as_str().to_string(),
        scheme: ex.conn.scheme.to_string(),
        authority: authority.unwrap_or_default().to_string(),
        path: parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string(),
        headers: headers::to_plugin(&parts.headers),
        client_ip: headers::ip_text(ex.conn.peer.ip()),
        request_id: ex.request_id.to_string(),
        route: ex.route.name.clone(),
        context: Vec::new(),
    }
}

/// A fresh stored response the HTTP cache answers before the request head for plugins is
/// built (`http-cache.store` with `direct`): when the first plugin with a request hook is a
/// caching one, and nothing would see the head (no plugin before it has a response hook, none
/// has a log hook, no `Range` to cut). Otherwise the chain finds the same hit with the head.
fn direct_hit(ex: &mut Exchange<'_>, parts: &Parts, authority: Option<&str>) -> Option<Answer> {
    let plugins = ex.route.chain.plugins();
    let (index, plugin) = plugins
        .iter()
        .enumerate()
        .find(|(_, p)| p.has_hook(Hook::RequestHeaders))?;
    let context = plugin.context();
    if !context.grants.http_cache
        || parts.headers.contains_key(RANGE)
        || plugins[..index].iter().any(|p| p.has_hook(Hook::ResponseHeaders))
        || ex.logs()
    {
        return None;
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let serve = context.backends.http_cache.direct_serve_request(
        &ex.route.name,
        plugin.name(),
        parts.method.as_str(),
        authority.unwrap_or_default(),
        path,
        &parts.headers,
    )?;
    ex.ran = index;
    Some(Answer::Direct(cache_serve::served_directly(
        &serve,
        parts.method.as_str(),
    )))
}

/// Runs the route's request hooks over the request. Leaves the head as the chain saw it and
/// how many plugins get response hooks in `ex`; a route without plugins forwards at once.
pub async fn run(ex: &mut Exchange<'_>, parts: &Parts, authority: Option<&str>, body: &mut RequestBody) -> Decision {
    let chain = ex.route.chain.clone();
    if chain.plugins().is_empty() {
        return Decision::Forward(Forward::default());
    }
    if let Some(answer) = direct_hit(ex, parts, authority) {
        return Decision::Answer(answer);
    }
    let mut head = request_head(ex, parts, authority);
    let outcome = chain.on_request(&mut head, body, &mut ex.replies).await;
    let decision = match outcome {
        RequestOutcome::Forward(forward) => {
            ex.ran = chain.plugins().len();
            Decision::Forward(forward)
        }
        RequestOutcome::Respond { response, ran } => {
            ex.ran = ran;
            Decision::Answer(Answer::Local(response))
        }
        RequestOutcome::Cached { serve, ran } => {
            ex.ran = ran;
            Decision::Answer(cache_serve::answer(ex, &head, serve))
        }
    };
    ex.head = Some(head);
    decision
}
