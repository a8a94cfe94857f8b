//! One request through the gateway: id, route, request chain, upstream, response chain,
//! common headers, access log and metrics, and on-log after the body was sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HOST, HeaderValue};
use hyper::{Request, Response, StatusCode};
use tracing::Instrument;

use super::body::{BoxError, Observed, ProxyBody, empty, full};
use super::cache_serve;
use super::coalesce::Coalescer;
use super::compress;
use super::decompress;
use super::errors::{json_error, json_error_with};
use super::gpu_route;
use super::headers;
use super::router::Route;
use super::upstream::UpstreamError;
use crate::backend::sink::SinkRow;
use crate::capability::Capabilities;
use crate::capability::unix_ms;
use crate::gateway::{Gateway, GatewayState};
use crate::runtime::bindings::sluice::plugin::http_cache::ServeAs;
use crate::runtime::bindings::{Hook, LogEntry, RequestHead, ResponseHead};
use crate::runtime::{BodyError, BodySource, RequestOutcome};
use crate::telemetry::otlp;

/// What the server knows about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
}

static X_RESPONSE_TIME: hyper::header::HeaderName = hyper::header::HeaderName::from_static("x-response-time");

/// Serves one request with the gateway current when it arrived.
pub async fn handle(
    state: Arc<GatewayState>,
    req: Request<Incoming>,
    conn: ConnInfo,
) -> Result<Response<ProxyBody>, Infallible> {
    let started = Instant::now();
    let gateway = state.current();
    let request_id = headers::request_id(req.headers());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %method,
        path = %path,
        otel.kind = "server",
        route = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    otlp::continue_trace(&span, req.headers());
    let caps = state.runtime().capabilities();
    let (mut resp, route) = proxy(&gateway, state.coalescer(), caps, req, conn, &request_id)
        .instrument(span.clone())
        .await;

    let elapsed = started.elapsed();
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        headers.insert(headers::X_REQUEST_ID.clone(), v);
    }
    let micros = elapsed.as_micros();
    if let Ok(v) = HeaderValue::from_str(&format!("{}.{:03}ms", micros / 1000, micros % 1000)) {
        headers.insert(X_RESPONSE_TIME.clone(), v);
    }
    let status = resp.status().as_u16();
    let route_label = route.map_or("-", |r| r.name.as_str());
    route
        .map_or(&gateway.router.unmatched, |r| &r.metrics)
        .record(status, elapsed.as_secs_f64());
    if gateway.config.sinks.request_telemetry
        && let Some(sinks) = &state.runtime().capabilities().sinks
    {
        sinks.emit(SinkRow::request(
            route_label,
            status,
            method.as_str(),
            &request_id,
            elapsed,
        ));
    }
    span.record("route", route_label);
    span.record("status", status);
    let _entered = span.enter();
    let ms = elapsed.as_secs_f64() * 1000.0;
    if elapsed.as_millis() as u64 >= gateway.config.server.slow_request_ms {
        tracing::warn!(status, route = route_label, ms, client = %conn.peer.ip(), "slow request");
    } else if gateway.config.server.access_log {
        tracing::info!(status, route = route_label, ms, client = %conn.peer.ip(), "access");
    }
    Ok(resp)
}

fn content_length(req: &Request<Incoming>) -> Option<u64> {
    req.headers().get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}

/// The request body: streamed to the upstream under the size limit, or buffered for a plugin.
struct RequestBody {
    incoming: Option<Incoming>,
    buffered: Option<Bytes>,
    max: u64,
    exceeded: Arc<AtomicBool>,
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
                self.buffered = Some(bytes.clone());
                Ok(bytes.to_vec())
            }
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge(limit)),
            Err(e) => Err(BodyError::Read(e.to_string())),
        }
    }
}

impl RequestBody {
    /// Whether there is a body to send (then the request cannot be replayed on a retry).
    fn has_body(&self, headers: &hyper::HeaderMap) -> bool {
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

    fn into_body(self) -> ProxyBody {
        if let Some(bytes) = self.buffered {
            return full(bytes);
        }
        let Some(incoming) = self.incoming else {
            return empty();
        };
        let exceeded = self.exceeded.clone();
        Limited::new(incoming, self.max as usize)
            .map_err(move |e: BoxError| {
                if e.is::<http_body_util::LengthLimitError>() {
                    exceeded.store(true, Ordering::Relaxed);
                }
                e
            })
            .boxed()
    }
}

/// Refuses a header section over the configured size or count (431), which hyper lets
/// through when the limit is below its own 8 KiB minimum buffer.
///
/// (A request with both `Content-Length` and `Transfer-Encoding` never gets here in a form
/// that shows it: hyper applies RFC 9112 §6.3, drops `Content-Length`, reads the chunked body
/// and closes the connection after the response, so nothing smuggled behind it is read.)
fn check_framing(
    req: &Request<Incoming>,
    settings: &crate::config::ServerSettings,
    request_id: &str,
) -> Option<Response<ProxyBody>> {
    let headers = req.headers();
    let size: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if size > settings.max_header_bytes || headers.len() > settings.max_headers {
        let message = format!(
            "the request has {} header fields in {size} bytes; at most {} in {} bytes are accepted",
            headers.len(),
            settings.max_headers,
            settings.max_header_bytes
        );
        let mut resp = json_error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            &message,
            request_id,
        );
        resp.headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        return Some(resp);
    }
    None
}

fn upstream_error(route: &Route, error: &UpstreamError, request_id: &str) -> Response<ProxyBody> {
    let upstream = route.upstream.as_ref().map_or("-", |u| u.name.as_str());
    tracing::warn!(upstream, %error, "upstream failed");
    let (status, code) = match error {
        UpstreamError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "upstream_timeout"),
        UpstreamError::Connect { .. } => (StatusCode::BAD_GATEWAY, "upstream_unreachable"),
        UpstreamError::Failed { .. } => (StatusCode::BAD_GATEWAY, "upstream_failed"),
        UpstreamError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
    };
    let mut extra = serde_json::Map::new();
    extra.insert("upstream".into(), upstream.into());
    let mut resp = json_error_with(status, code, &error.to_string(), request_id, extra);
    if let UpstreamError::Unavailable { retry_after_secs, .. } = error {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    resp
}

fn response_from(head: ResponseHead, body: ProxyBody) -> Response<ProxyBody> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(head.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *resp.headers_mut() = headers::from_plugin(head.headers);
    resp
}

/// Runs on-log for the chain once the body was sent (or the client went away).
fn log_when_sent(
    route: &Route,
    head: RequestHead,
    status: u16,
    started: Instant,
    body: ProxyBody,
    usage: Option<gpu_route::UsageSlot>,
) -> ProxyBody {
    if !route.chain.plugins().iter().any(|p| p.has_hook(Hook::Log)) {
        return body;
    }
    let chain = route.chain.clone();
    let upstream = route.upstream.as_ref().map(|u| u.name.clone());
    Observed::new(body, move |bytes_sent, completed| {
        let duration_us = started.elapsed().as_micros() as u64;
        // Built on the task: on a disconnect this runs before the inner body (whose end
        // fills the usage slot) is dropped.
        tokio::spawn(async move {
            let entry = LogEntry {
                request: head,
                status,
                duration_us,
                bytes_received: 0,
                bytes_sent,
                upstream,
                error: (!completed).then(|| "the client went away before the response ended".to_string()),
                inference: usage.and_then(|slot| slot.lock().ok().and_then(|mut u| u.take())),
            };
            chain.on_log(&entry).await
        });
    })
    .boxed()
}

/// Everything between the id and the common response headers. Returns the response and the
/// name of the route that matched.
async fn proxy<'g>(
    gw: &'g Gateway,
    coalescer: &Coalescer,
    caps: &Capabilities,
    req: Request<Incoming>,
    conn: ConnInfo,
    request_id: &str,
) -> (Response<ProxyBody>, Option<&'g Route>) {
    let started = Instant::now();
    let http_cache = &caps.http_cache;
    let authority = req.uri().authority().map(|a| a.as_str().to_string()).or_else(|| {
        req.headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    });
    if let Some(why) = headers::unsafe_path(req.uri().path()) {
        return (
            json_error(StatusCode::BAD_REQUEST, "path_not_normalized", why, request_id),
            None,
        );
    }
    let Some(route) = gw
        .router
        .find(req.method(), authority.as_deref(), req.uri().path(), req.headers())
    else {
        let message = format!("no route matches {} {}", req.method(), req.uri().path());
        return (
            json_error(StatusCode::NOT_FOUND, "no_route", &message, request_id),
            None,
        );
    };
    let route_name = Some(route);
    if let Some(reject) = check_framing(&req, &gw.config.server, request_id) {
        return (reject, route_name);
    }
    let max_body = gw.config.server.max_body_bytes;
    if content_length(&req).is_some_and(|len| len > max_body) {
        let message = format!("the request body is larger than {max_body} bytes");
        return (
            json_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &message, request_id),
            route_name,
        );
    }
    let (mut parts, incoming) = req.into_parts();
    let mut body = RequestBody {
        incoming: Some(incoming),
        buffered: None,
        max: max_body,
        exceeded: Arc::default(),
    };
    let path_and_query = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();

    // The request chain.
    let chain = &route.chain;
    let mut head = None;
    let mut ran = 0;
    let mut decompress_directive = None;
    let mut coalesce = None;
    let mut fill = None;
    if !chain.plugins().is_empty() {
        let mut h = RequestHead {
            method: parts.method.as_str().to_string(),
            scheme: conn.scheme.to_string(),
            authority: authority.clone().unwrap_or_default(),
            path: path_and_query.clone(),
            headers: headers::to_plugin(&parts.headers),
            client_ip: conn.peer.ip().to_string(),
            request_id: request_id.to_string(),
            route: route.name.clone(),
            context: Vec::new(),
        };
        match chain.on_request(&mut h, &mut body).await {
            RequestOutcome::Respond { response, ran } => {
                let mut resp_head = ResponseHead {
                    status: response.status,
                    headers: response.headers,
                };
                // Response hooks see the local body's length, as they would an upstream's.
                let length = response.body.len().to_string().into_bytes();
                resp_head.headers.push(("content-length".to_string(), length));
                let outcome = chain.on_response(&h, &mut resp_head, ran).await;
                let status = resp_head.status;
                let body = full(outcome.body.unwrap_or_else(|| Bytes::from(response.body)));
                let resp = compress::apply(outcome.compress.as_ref(), &h.method, response_from(resp_head, body));
                return (
                    resp.map(|body| log_when_sent(route, h, status, started, body, None)),
                    route_name,
                );
            }
            RequestOutcome::Cached { serve, ran } => {
                let (how, base) = (serve.how, serve.base.clone());
                // No response hook to run before it: the stored head goes out as it is kept.
                if how == ServeAs::Fresh && !chain.plugins()[..ran].iter().any(|p| p.has_hook(Hook::ResponseHeaders)) {
                    let resp = cache_serve::served_directly(&serve, &h.method);
                    let status = resp.status().as_u16();
                    return (
                        resp.map(|body| log_when_sent(route, h, status, started, body, None)),
                        route_name,
                    );
                }
                let (mut resp_head, stored) = cache_serve::served(serve, &h.method);
                if how == ServeAs::StaleWhileRevalidate
                    && let Some(upstream) = &route.upstream
                {
                    let refresh = cache_serve::Refresh {
                        chain: chain.clone(),
                        at: ran,
                        upstream: upstream.clone(),
                        head: h.clone(),
                        cache: http_cache.clone(),
                    };
                    cache_serve::spawn_refresh(refresh, &base);
                }
                let outcome = chain.on_response(&h, &mut resp_head, ran).await;
                let status = resp_head.status;
                let body = full(outcome.body.unwrap_or(stored));
                let resp = compress::apply(outcome.compress.as_ref(), &h.method, response_from(resp_head, body));
                return (
                    resp.map(|body| log_when_sent(route, h, status, started, body, None)),
                    route_name,
                );
            }
            RequestOutcome::Forward(mut forward) => {
                if let Some(choice) = forward.route_to.take() {
                    let Some(fleet) = &caps.gpu else {
                        let message = "a plugin chose a backend (route-to), which needs the GPU scheduler; [gpu] is not configured on this gateway";
                        return (
                            json_error(StatusCode::NOT_IMPLEMENTED, "route_to_unavailable", message, request_id),
                            route_name,
                        );
                    };
                    parts.headers = headers::from_plugin(h.headers.clone());
                    parts.uri = path_and_query.parse().unwrap_or_default();
                    let bytes = match body.buffer(usize::try_from(max_body).unwrap_or(usize::MAX)).await {
                        Ok(bytes) => Bytes::from(bytes),
                        Err(e) => {
                            let status = match e {
                                BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                                BodyError::Read(_) => StatusCode::BAD_REQUEST,
                            };
                            return (
                                json_error(status, "body_unreadable", &e.to_string(), request_id),
                                route_name,
                            );
                        }
                    };
                    let routed = gpu_route::GpuRequest {
                        fleet,
                        choice,
                        leases: std::mem::take(&mut forward.leases),
                        parts,
                        body: bytes,
                        request_id,
                        started,
                    };
                    let (resp, usage) = gpu_route::send(routed).await;
                    let (resp_parts, resp_body) = resp.into_parts();
                    let mut resp_head = ResponseHead {
                        status: resp_parts.status.as_u16(),
                        headers: headers::to_plugin(&resp_parts.headers),
                    };
                    let outcome = chain.on_response(&h, &mut resp_head, chain.plugins().len()).await;
                    let status = resp_head.status;
                    let body = outcome.body.map_or(resp_body, full);
                    let resp = compress::apply(outcome.compress.as_ref(), &h.method, response_from(resp_head, body));
                    return (
                        resp.map(|body| log_when_sent(route, h, status, started, body, usage)),
                        route_name,
                    );
                }
                coalesce = forward.coalesce;
                fill = forward.fill;
                parts.headers = headers::from_plugin(h.headers.clone());
                decompress_directive = forward.decompress;
                ran = chain.plugins().len();
                head = Some(h);
            }
        }
    }

    // The upstream.
    let Some(upstream) = &route.upstream else {
        let message = format!("route '{}' has no upstream and no plugin answered", route.name);
        return (
            json_error(StatusCode::BAD_GATEWAY, "no_upstream", &message, request_id),
            route_name,
        );
    };
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::add_forwarding(&mut parts.headers, conn.peer.ip(), conn.scheme, authority.as_deref());
    // The upstream sees the host the route was chosen by (HTTP/2 requests carry it only in
    // the URI; an absolute-form request line wins over a different Host header).
    if let Some(v) = authority.as_deref().and_then(|a| HeaderValue::from_str(a).ok()) {
        parts.headers.insert(HOST, v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        parts.headers.insert(headers::X_REQUEST_ID.clone(), v);
    }
    otlp::inject_context(&mut parts.headers);
    parts.uri = path_and_query.parse().unwrap_or_default();
    parts.version = hyper::Version::HTTP_11;
    let exceeded = body.exceeded.clone();
    let has_body = body.has_body(&parts.headers);
    let (upstream_body, decoding) = match decompress::request(
        decompress_directive,
        &mut parts.headers,
        body.into_body(),
        max_body,
        request_id,
    ) {
        Ok(decoded) => decoded,
        Err(refused) => return (*refused, route_name),
    };
    let upstream_req = Request::from_parts(parts, upstream_body);
    // Only body-less requests are coalesced (a body makes every request its own).
    let sent_ms = unix_ms();
    let generation = http_cache.generation();
    let sent = match coalesce.filter(|_| !has_body) {
        Some(c) => {
            let cap = usize::try_from(max_body).unwrap_or(usize::MAX);
            coalescer.send(&route.name, &c, upstream, upstream_req, cap).await
        }
        None => upstream.send(upstream_req, has_body).await,
    };
    if let (Err(_), Some(refusal)) = (&sent, decoding.refusal()) {
        return (refusal.response(request_id), route_name);
    }
    let resp = match sent {
        Ok(resp) => resp,
        Err(_) if exceeded.load(Ordering::Relaxed) => {
            let message = format!("the request body is larger than {max_body} bytes");
            return (
                json_error(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &message, request_id),
                route_name,
            );
        }
        Err(error) => return (upstream_error(route, &error, request_id), route_name),
    };

    // The response chain.
    let exchange = cache_serve::Exchange {
        sent_ms,
        received_ms: unix_ms(),
        generation,
    };
    let (mut resp_parts, incoming) = resp.into_parts();
    headers::strip_hop_by_hop(&mut resp_parts.headers);
    let upstream_body = incoming;
    let Some(h) = head else {
        return (Response::from_parts(resp_parts, upstream_body), route_name);
    };
    let mut resp_head = ResponseHead {
        status: resp_parts.status.as_u16(),
        headers: headers::to_plugin(&resp_parts.headers),
    };
    let outcome = chain.on_response(&h, &mut resp_head, ran).await;
    let body = match outcome.body {
        Some(replaced) => full(replaced),
        None => upstream_body,
    };
    let body = match outcome.store {
        Some(store) => cache_serve::store_as_it_streams(http_cache, store, fill, &h, exchange, body),
        None => body,
    };
    let status = resp_head.status;
    let resp = compress::apply(outcome.compress.as_ref(), &h.method, response_from(resp_head, body));
    (
        resp.map(|body| log_when_sent(route, h, status, started, body, None)),
        route_name,
    )
}
