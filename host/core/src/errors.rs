//! Every answer the gateway itself gives: a fixed status, a stable error code and a message,
//! as JSON with the request id.

use hyper::{Response, StatusCode};

use super::body::{ProxyBody, full};

/// A JSON error response: `{"error": code, "message": ..., "request_id": ...}` plus any
/// extra fields.
pub fn json_error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<ProxyBody> {
    json_error_with(status, code, message, request_id, serde_json::Map::new())
}

/// [`json_error`] with extra fields (for example the upstream's name).
pub fn json_error_with(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
    mut extra: serde_json::Map<String, serde_json::Value>,
) -> Response<ProxyBody> {
    extra.insert("error".into(), code.into());
    extra.insert("message".into(), message.into());
    extra.insert("request_id".into(), request_id.into());
    json_response(status, serde_json::Value::Object(extra))
}

/// A response with `status` and `value` as its JSON body.
pub fn json_response(status: StatusCode, value: serde_json::Value) -> Response<ProxyBody> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(hyper::header::CONTENT_TYPE, "application/json".parse().expect("static"));
    resp
}
