//! Response chain: the response hooks of the plugins whose request hooks ran see the response
//! head in reverse route order and may edit it, replace the response, ask to compress it or
//! (for the upstream's response) to store it in the HTTP cache as it streams.

use http_body_util::BodyExt;
use hyper::{Response, StatusCode};

use sluice_backends::http_cache::FillGuard;
use sluice_bindings::{RequestHead, ResponseHead};
use sluice_core::body::{ProxyBody, full};
use sluice_core::{compress, headers};

use crate::answer::Timing;
use crate::exchange::Exchange;
use crate::forward::cache_serve;

/// Runs the response hooks over `head` and returns the response to send with the status they
/// left. `store` (the upstream exchange's timing and fill claim) lets a `store` verdict wrap
/// the body so it is kept as it streams; without it a `store` is ignored.
pub async fn run(
    ex: &Exchange<'_>,
    req: &RequestHead,
    mut head: ResponseHead,
    body: ProxyBody,
    store: Option<(Timing, Option<FillGuard>)>,
) -> (Response<ProxyBody>, u16) {
    let outcome = ex.route.chain.on_response(req, &mut head, ex.ran, &ex.replies).await;
    let (body, upstream_body) = match outcome.body {
        Some(local) => (full(local), Some(body)),
        None => (body, None),
    };
    let body = match (outcome.store, store, upstream_body) {
        (Some(verdict), Some((timing, fill)), Some(upstream)) if outcome.store_behind => {
            // The client got a 304; the upstream's body is stored without being sent.
            let stored =
                cache_serve::store_as_it_streams(&ex.backends.http_cache, verdict, fill, req, timing, upstream);
            tokio::spawn(async move {
                let _ = stored.collect().await;
            });
            body
        }
        (Some(verdict), Some((timing, fill)), None) => {
            cache_serve::store_as_it_streams(&ex.backends.http_cache, verdict, fill, req, timing, body)
        }
        _ => body,
    };
    let status = head.status;
    let response = compress::apply(outcome.compress.as_ref(), &req.method, response_from(head, body));
    (response, status)
}

/// A response head as plugins see it, from a response's.
pub fn head_of(parts: &hyper::http::response::Parts) -> ResponseHead {
    ResponseHead {
        status: parts.status.as_u16(),
        headers: headers::to_plugin(&parts.headers),
    }
}

/// A response from a head as plugins see it and a body (an invalid status becomes 500).
pub fn response_from(head: ResponseHead, body: ProxyBody) -> Response<ProxyBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *resp.headers_mut() = headers::from_plugin(head.headers);
    resp
}
