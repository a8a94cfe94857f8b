//! Route: the checks before any plugin runs. A missing, repeated or malformed `Host` and a
//! path that is not normalized are refused (400) before routing; the first route whose
//! conditions hold is chosen (404 when none does); then a header section over the configured
//! size or count (431) and a declared body over the limit (413) are refused on that route.

use hyper::header::{CONTENT_LENGTH, HOST, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, StatusCode};

use sluice_backends::sink::Sinks;
use sluice_config::ServerSettings;
use sluice_core::headers;

use crate::answer::Refusal;
use crate::router::Route;
use crate::state::Gateway;

/// The route a request matched, and the authority it was matched by.
pub struct Matched<'g> {
    /// The route.
    pub route: &'g Route,
    /// The request's authority: the URI's (HTTP/2, absolute form), else the Host header.
    pub authority: Option<String>,
}

/// The route for `req`, or the refusal that answers it without one.
pub fn route<'g, B>(gw: &'g Gateway, req: &Request<B>, request_id: &str) -> Result<Matched<'g>, Refusal> {
    let authority = req.uri().authority().map(|a| a.as_str().to_string()).or_else(|| {
        req.headers()
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    });
    if let Some(why) = headers::bad_host(req.version(), req.headers()) {
        return Err(Refusal::json(StatusCode::BAD_REQUEST, "bad_host", why, request_id));
    }
    if let Some(why) = headers::unsafe_path(req.uri().path()) {
        return Err(Refusal::json(
            StatusCode::BAD_REQUEST,
            "path_not_normalized",
            why,
            request_id,
        ));
    }
    let Some(route) = gw
        .router
        .find(req.method(), authority.as_deref(), req.uri().path(), req.headers())
    else {
        let message = format!("no route matches {} {}", req.method(), req.uri().path());
        return Err(Refusal::json(StatusCode::NOT_FOUND, "no_route", &message, request_id));
    };
    Ok(Matched { route, authority })
}

/// Refuses a request on a route whose plugins write to the audit log while audit rows cannot
/// be kept (`[sinks] audit_when_full = "closed"`, the default): 503 `audit_unavailable`
/// rather than decisions nobody could audit.
pub fn audit_ready(route: &Route, sinks: Option<&Sinks>, request_id: &str) -> Result<(), Refusal> {
    let Some(sinks) = sinks else {
        return Ok(());
    };
    if !sinks.audit_refused() || !route.chain.plugins().iter().any(|p| p.context().grants.audit) {
        return Ok(());
    }
    tracing::error!(route = %route.name, "refused: audit rows cannot be kept (the sink's spill or overflow is full)");
    let mut refusal = Refusal::json(
        StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        "this route audits its decisions and the audit log cannot keep rows right now",
        request_id,
    );
    refusal
        .response
        .headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("5"));
    Err(refusal)
}

/// Refuses a header section over the configured size or count (431), which hyper lets
/// through when the limit is below its own 8 KiB minimum buffer, and a body whose declared
/// length is over the limit (413).
///
/// (A request with both `Content-Length` and `Transfer-Encoding` never gets here in a form
/// that shows it: hyper applies RFC 9112 §6.3, drops `Content-Length`, reads the chunked body
/// and closes the connection after the response, so nothing smuggled behind it is read.)
pub fn admit(parts: &Parts, settings: &ServerSettings, request_id: &str) -> Result<(), Refusal> {
    let headers = &parts.headers;
    let size: usize = headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum();
    if size > settings.max_header_bytes || headers.len() > settings.max_headers {
        let message = format!(
            "the request has {} header fields in {size} bytes; at most {} in {} bytes are accepted",
            headers.len(),
            settings.max_headers,
            settings.max_header_bytes
        );
        let mut refusal = Refusal::json(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            &message,
            request_id,
        );
        refusal
            .response
            .headers_mut()
            .insert(hyper::header::CONNECTION, HeaderValue::from_static("close"));
        return Err(refusal);
    }
    let max_body = settings.max_body_bytes;
    if content_length(parts).is_some_and(|len| len > max_body) {
        return Err(too_large(max_body, request_id));
    }
    Ok(())
}

/// The 413 for a body over `max_body` bytes.
pub fn too_large(max_body: u64, request_id: &str) -> Refusal {
    let message = format!("the request body is larger than {max_body} bytes");
    Refusal::json(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", &message, request_id)
}

fn content_length(parts: &Parts) -> Option<u64> {
    parts.headers.get(CONTENT_LENGTH)?.to_str().ok()?.parse().ok()
}
