//! The responses a denied request gets: 401 with `WWW-Authenticate` when credentials are
//! missing or invalid, 403 when the scopes do not allow the route, 503 when the key store is
//! unreachable. Bodies carry a stable error code and the request id, never which check failed.

use serde_json::json;
use sluice_plugin_sdk::{RequestHead, RequestVerdict, Response};

use crate::decision::Denial;

/// The verdict for `denial` of `req` in `realm`; `missing` are the scopes lacking (403 only).
pub fn deny(denial: Denial, req: &RequestHead, realm: &str, missing: &[String]) -> RequestVerdict {
    let (status, error, code, challenge) = match denial {
        Denial::Missing => (
            401,
            "unauthorized",
            "missing_credentials",
            format!("Bearer realm=\"{realm}\""),
        ),
        Denial::InsufficientScope => (
            403,
            "forbidden",
            "insufficient_scope",
            format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{}\"",
                missing.join(" ")
            ),
        ),
        Denial::Unavailable => (503, "unavailable", "auth_unavailable", String::new()),
        _ => (
            401,
            "unauthorized",
            "invalid_credentials",
            format!("Bearer realm=\"{realm}\", error=\"invalid_token\""),
        ),
    };
    let body = json!({ "error": error, "code": code, "request_id": req.request_id });
    let mut response = Response::json(status, body.to_string()).header("cache-control", "no-store");
    if challenge.is_empty() {
        response = response.header("retry-after", "1");
    } else {
        response = response.header("www-authenticate", challenge);
    }
    response.into()
}
