//! Forward: the request goes where the chain sent it. To the route's upstream (with
//! forwarding headers, the request id and the trace context, its body decoded when a plugin
//! asked), joined with identical requests in flight when a plugin asked to coalesce
//! ([`coalesce`]); or to the GPU backend a plugin chose (`route-to`, [`route_to`]). Answers
//! from the HTTP cache are made in [`cache_serve`]; OpenAI-compatible bodies are read in
//! [`inference`].

pub mod cache_serve;
pub mod coalesce;
pub mod inference;
pub mod route_to;
pub mod upgrade;

use std::sync::atomic::Ordering;

use bytes::Bytes;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::header::{HOST, HeaderValue, TE};
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use sluice_bindings::UpstreamChoice;
use sluice_core::decompress;
use sluice_core::grpc;
use sluice_core::headers;
use sluice_core::telemetry::otlp;
use sluice_core::time::unix_ms;
use sluice_core::upstream::{HeadDeadline, UpstreamError};
use sluice_runtime::{BodyError, BodySource, Forward};

use crate::answer::{Answer, Refusal, Timing};
use crate::exchange::Exchange;
use crate::request_chain::RequestBody;
use crate::route::too_large;
use coalesce::Coalescer;

/// Sends the request on as `forward` says, and answers with what came back (or the refusal
/// when nothing could).
pub async fn forward(
    ex: &Exchange<'_>,
    mut parts: Parts,
    mut body: RequestBody,
    mut forward: Forward,
    authority: Option<&str>,
    coalescer: &Coalescer,
) -> Answer {
    apply_chain_edits(ex, &mut parts, &forward);
    if let Some(choice) = forward.route_to.take() {
        // Boxed, as the coalesced send below: their futures are large and most requests take
        // neither, so inline they would make every request's future (and its moves) larger.
        return Box::pin(to_backend(ex, parts, &mut body, choice, forward)).await;
    }
    let Some(upstream) = &ex.route.upstream else {
        return no_upstream(ex);
    };
    prepare_upstream_head(ex, &mut parts, authority);
    let deadline = ex.grpc.then(|| grpc_call(&mut parts, ex.started)).flatten();
    let max_body = ex.gateway.config.server.max_body_bytes;
    let has_body = body.has_body(&parts.headers);
    let (upstream_body, decoding) = match decompress::request(
        forward.decompress,
        &mut parts.headers,
        body.into_body(),
        max_body,
        ex.request_id,
    ) {
        Ok(decoded) => decoded,
        Err(refused) => return Answer::Refused(Refusal::with(*refused, "the request body could not be decoded")),
    };
    let upstream_req = Request::from_parts(parts, upstream_body);
    let http_cache = &ex.backends.http_cache;
    let (sent_ms, generation) = (unix_ms(), http_cache.generation());
    // Only body-less requests are coalesced (a body makes every request its own).
    let sent = match forward.coalesce.filter(|_| !has_body) {
        Some(c) => {
            let cap = usize::try_from(max_body).unwrap_or(usize::MAX);
            Box::pin(coalescer.send(&ex.route.name, &c, upstream, upstream_req, cap)).await
        }
        None => upstream.send(upstream_req, has_body).await,
    };
    if let (Err(_), Some(refusal)) = (&sent, decoding.refusal()) {
        let response = refusal.response(ex.request_id);
        return Answer::Refused(Refusal::with(response, "the request body could not be decoded"));
    }
    let mut response = match sent {
        Ok(response) => response,
        Err(_) if ex.body.exceeded.load(Ordering::Relaxed) => {
            return Answer::Refused(too_large(max_body, ex.request_id));
        }
        Err(error) => return Answer::Refused(upstream_error(ex, &error)),
    };
    headers::strip_hop_by_hop(response.headers_mut());
    if let Some(deadline) = deadline {
        let left = deadline.saturating_sub(ex.started.elapsed());
        response = response.map(|body| grpc::Deadline::new(body, left).boxed());
    }
    let timing = Timing {
        sent_ms,
        received_ms: unix_ms(),
        generation,
    };
    Answer::Upstream {
        response,
        timing: Some(timing),
        fill: forward.fill,
        usage: None,
    }
}

/// 502 `no_upstream`: the route has no upstream and no plugin answered.
pub(crate) fn no_upstream(ex: &Exchange<'_>) -> Answer {
    let message = format!("route '{}' has no upstream and no plugin answered", ex.route.name);
    Answer::Refused(Refusal::json(
        StatusCode::BAD_GATEWAY,
        "no_upstream",
        &message,
        ex.request_id,
    ))
}

/// A gRPC call on its way upstream: `TE: trailers` (gRPC requires it; it went with the
/// hop-by-hop fields) and what is left of its `grpc-timeout` (counted from when the request
/// arrived, `started`) as the wait for the response head; the deadline for the whole call.
fn grpc_call(parts: &mut Parts, started: std::time::Instant) -> Option<Duration> {
    parts.headers.insert(TE, HeaderValue::from_static("trailers"));
    let deadline = grpc::timeout(&parts.headers)?;
    let left = deadline.saturating_sub(started.elapsed());
    parts.extensions.insert(HeadDeadline(left));
    Some(deadline)
}

/// The header edits of the request hooks, onto the request to send; its URI is cut to the
/// path and query.
pub(crate) fn apply_chain_edits(ex: &Exchange<'_>, parts: &mut Parts, forward: &Forward) {
    if let Some(head) = &ex.head {
        headers::sync_from_plugin(&mut parts.headers, &head.headers, &forward.edited_headers);
    }
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    parts.uri = path_and_query.parse().unwrap_or_default();
}

/// The head the upstream sees: no hop-by-hop fields, forwarding fields, the host the route
/// was chosen by (HTTP/2 requests carry it only in the URI; an absolute-form request line
/// wins over a different Host header), the request id and the trace context, over HTTP/1.1.
pub(crate) fn prepare_upstream_head(ex: &Exchange<'_>, parts: &mut Parts, authority: Option<&str>) {
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::add_forwarding(&mut parts.headers, ex.conn.peer.ip(), ex.conn.scheme, authority);
    if let Some(v) = authority.and_then(|a| HeaderValue::from_str(a).ok()) {
        parts.headers.insert(HOST, v);
    }
    set_request_id(ex, &mut parts.headers);
    otlp::inject_context(&mut parts.headers);
    parts.version = hyper::Version::HTTP_11;
}

/// Puts the request id in an upstream request's head, under the gateway's id header.
fn set_request_id(ex: &Exchange<'_>, headers: &mut hyper::HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(ex.request_id) {
        headers.insert(ex.gateway.request_ids.header().clone(), v);
    }
}

/// Sends a request a plugin routed to a GPU backend (`route-to`), its body buffered.
async fn to_backend(
    ex: &Exchange<'_>,
    mut parts: Parts,
    body: &mut RequestBody,
    choice: UpstreamChoice,
    mut forward: Forward,
) -> Answer {
    let Some(fleet) = &ex.backends.gpu else {
        let message = "a plugin chose a backend (route-to), which needs the GPU scheduler; [gpu] is not configured on this gateway";
        return Answer::Refused(Refusal::json(
            StatusCode::NOT_IMPLEMENTED,
            "route_to_unavailable",
            message,
            ex.request_id,
        ));
    };
    let max_body = ex.gateway.config.server.max_body_bytes;
    let bytes = match body.buffer(usize::try_from(max_body).unwrap_or(usize::MAX)).await {
        Ok(bytes) => Bytes::from(bytes),
        Err(e) => {
            let status = match e {
                BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                BodyError::Read(_) => StatusCode::BAD_REQUEST,
            };
            return Answer::Refused(Refusal::json(status, "body_unreadable", &e.to_string(), ex.request_id));
        }
    };
    set_request_id(ex, &mut parts.headers);
    let routed = route_to::GpuRequest {
        fleet,
        choice,
        leases: std::mem::take(&mut forward.leases),
        parts,
        body: bytes,
        request_id: ex.request_id,
        started: ex.started,
    };
    let (response, usage) = route_to::send(routed).await;
    Answer::Upstream {
        response,
        timing: None,
        fill: None,
        usage,
    }
}

/// The gateway's answer when the upstream failed: 504 on a timeout, 502 when it could not be
/// reached or failed, 503 (with `Retry-After`) when no target is available.
pub(crate) fn upstream_error(ex: &Exchange<'_>, error: &UpstreamError) -> Refusal {
    let upstream = ex.route.upstream.as_ref().map_or("-", |u| u.name.as_str());
    tracing::warn!(upstream, %error, "upstream failed");
    let (status, code) = match error {
        UpstreamError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        UpstreamError::Connect { .. } => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
        UpstreamError::Failed { .. } => (StatusCode::BAD_GATEWAY, "upstream_failed"),
        UpstreamError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
    };
    let mut extra = serde_json::Map::new();
    extra.insert("upstream".into(), upstream.into());
    let mut refusal = Refusal::json_with(status, code, &error.to_string(), ex.request_id, extra);
    if let UpstreamError::Unavailable { retry_after_secs, .. } = error {
        refusal
            .response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    refusal
}
