//! `POST /admin/cache/invalidate`: drops stored HTTP responses (the cache plugin's) by request
//! target, by target prefix or by tag. The body is JSON naming exactly one of them:
//! `{"target": "/items?page=2"}`, `{"prefix": "/items"}` or `{"tag": "items"}`; the answer
//! says how many responses this instance dropped.

use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use crate::state::GatewayState;
use sluice_core::body::ProxyBody;
use sluice_core::errors::{json_error, json_response};

/// The largest request body accepted.
const MAX_BODY: usize = 64 << 10;

/// What to invalidate.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Invalidate {
    target: Option<String>,
    prefix: Option<String>,
    tag: Option<String>,
}

fn bad_request(message: &str) -> Response<ProxyBody> {
    tracing::warn!("admin cache invalidation refused: {message}");
    json_error(StatusCode::BAD_REQUEST, "bad_invalidation", message, "-")
}

/// Serves `POST /admin/cache/invalidate`.
pub async fn invalidate(state: &GatewayState, req: Request<Incoming>) -> Response<ProxyBody> {
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return json_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &format!("an invalidation is at most {MAX_BODY} bytes of JSON"),
                "-",
            );
        }
    };
    let asked: Invalidate = match serde_json::from_slice(&body) {
        Ok(asked) => asked,
        Err(e) => {
            return bad_request(&format!(
                "the body must be JSON with one of \"target\", \"prefix\" or \"tag\": {e}"
            ));
        }
    };
    let cache = &state.runtime().backends().http_cache;
    let (by, value, dropped) = match (asked.target, asked.prefix, asked.tag) {
        (Some(t), None, None) => ("target", t.clone(), cache.invalidate_target(&t).await),
        (None, Some(p), None) if !p.is_empty() => ("prefix", p.clone(), cache.invalidate_prefix(&p).await),
        (None, Some(_), None) => return bad_request("an empty prefix would drop everything; name one"),
        (None, None, Some(t)) => ("tag", t.clone(), cache.invalidate_tag(&t).await),
        _ => return bad_request("name exactly one of \"target\", \"prefix\" or \"tag\""),
    };
    tracing::info!(by, value = %value, dropped, "http cache invalidated by the admin API");
    json_response(StatusCode::OK, json!({ "dropped": dropped, "by": by, "value": value }))
}
