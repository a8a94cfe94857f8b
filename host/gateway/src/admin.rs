//! The admin API, on its own listener: health, readiness, stats, Prometheus metrics, reload,
//! HTTP cache invalidation, the GPU fleet, its own OpenAPI document, and the dashboard page at
//! `/` with the history, config and reload endpoints it reads. With `admin.token` set, every
//! request must carry `Authorization: Bearer <token>`, except the dashboard's own files.

mod cache;
mod dashboard;
mod dependencies;
mod readiness;
pub mod sampler;
mod stats;

pub use readiness::readiness;
pub use stats::stats;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;

use crate::state::GatewayState;
use sluice_core::body::ProxyBody;
use sluice_core::body::full;
use sluice_core::errors::{json_error, json_response as json};

/// The OpenAPI 3.1 document of this API (`docs/admin-openapi.yaml`), served at `/openapi.yaml`.
const OPENAPI: &str = include_str!("../../../docs/admin-openapi.yaml");

fn authorized(state: &GatewayState, req: &Request<Incoming>) -> bool {
    let gateway = state.current();
    let Some(token) = gateway.config.admin.token.as_deref() else {
        return true;
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Constant-time comparison: the time taken does not depend on where the strings differ.
    presented.len() == token.len()
        && presented
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Serves one admin request.
pub async fn handle(state: Arc<GatewayState>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
    if req.method() == Method::GET
        && let Some(page) = dashboard::asset(req.uri().path(), state.current().config.admin.token.is_some())
    {
        return Ok(page);
    }
    if !authorized(&state, &req) {
        let mut resp = json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid admin bearer token is required",
            "-",
        );
        resp.headers_mut().insert(
            "www-authenticate",
            "Bearer realm=\"sluice-admin\"".parse().expect("static"),
        );
        return Ok(resp);
    }
    let resp = match (req.method(), req.uri().path()) {
        (&Method::GET, "/admin/health") => json(StatusCode::OK, json!({ "status": "ok" })),
        (&Method::GET, "/admin/ready") => json(StatusCode::OK, readiness(&state).await),
        (&Method::GET, "/admin/stats") => json(StatusCode::OK, stats(&state)),
        (&Method::GET, "/metrics") => {
            stats::export_pool_gauges(&state);
            dependencies::export(&dependencies::ping(state.runtime().backends()).await, state.metrics());
            let mut resp = Response::new(full(state.metrics().render_prometheus()));
            resp.headers_mut()
                .insert(CONTENT_TYPE, "text/plain; version=0.0.4".parse().expect("static"));
            resp
        }
        (&Method::GET, "/admin/history") => dashboard::history(&state, req.uri().query()),
        (&Method::GET, "/admin/config") => dashboard::config(&state),
        (&Method::GET, "/admin/reloads") => dashboard::reloads(&state),
        (&Method::POST, "/admin/cache/invalidate") => cache::invalidate(&state, req).await,
        (&Method::GET, "/openapi.yaml") => {
            let mut resp = Response::new(full(OPENAPI));
            resp.headers_mut()
                .insert(CONTENT_TYPE, "application/yaml".parse().expect("static"));
            resp
        }
        (&Method::GET, "/admin/gpu") => match &state.runtime().backends().gpu {
            Some(fleet) => json(StatusCode::OK, fleet.snapshot()),
            None => json(StatusCode::OK, json!({ "state": "not-configured" })),
        },
        (&Method::POST, "/admin/reload") => match state.reload("admin").await {
            Ok(()) => json(StatusCode::OK, json!({ "reloaded": true })),
            Err(error) => json(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({ "reloaded": false, "error": error }),
            ),
        },
        (_, path) => json_error(
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no admin endpoint {path}"),
            "-",
        ),
    };
    Ok(resp)
}
