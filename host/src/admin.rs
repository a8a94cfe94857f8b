//! The admin API, on its own listener: health, readiness, stats, Prometheus metrics and
//! reload. With `admin.token` set, every request must carry `Authorization: Bearer <token>`.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use crate::gateway::GatewayState;
use crate::proxy::ProxyBody;
use crate::proxy::body::full;
use crate::proxy::errors::json_error;

fn json(status: StatusCode, value: Value) -> Response<ProxyBody> {
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("static"));
    resp
}

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

/// The stats document: routes, plugins and their pools, upstreams and their targets, and the
/// last reload.
pub fn stats(state: &GatewayState) -> Value {
    let gateway = state.current();
    let routes: Vec<Value> = gateway
        .router
        .routes()
        .iter()
        .map(|r| {
            let plugins: Vec<Value> = r
                .chain
                .plugins()
                .iter()
                .map(|p| json!({ "plugin": &**p.name(), "idle_instances": p.idle_instances(), "fail": format!("{:?}", p.fail_policy()).to_lowercase() }))
                .collect();
            json!({ "name": r.name, "upstream": r.upstream.as_ref().map(|u| u.name.clone()), "plugins": plugins })
        })
        .collect();
    let plugins: Vec<Value> = gateway
        .table
        .plugins()
        .iter()
        .map(|(name, p)| {
            json!({
                "name": name,
                "version": p.info.version,
                "file": p.file.display().to_string(),
                "size": p.size,
                "compile_ms": p.compile_time.as_secs_f64() * 1000.0,
                "cache": format!("{:?}", p.cache),
            })
        })
        .collect();
    let upstreams: Vec<Value> = gateway
        .upstreams
        .values()
        .map(|u| {
            let targets: Vec<Value> = u
                .targets()
                .iter()
                .map(|t| json!({ "target": t.authority, "in_flight": t.in_flight(), "requests": t.requests(), "failures": t.failures(), "healthy": t.healthy(), "breaker_open": t.breaker_open() }))
                .collect();
            json!({ "name": u.name, "targets": targets })
        })
        .collect();
    json!({ "routes": routes, "plugins": plugins, "upstreams": upstreams, "last_reload": state.last_reload() })
}

/// Serves one admin request.
pub async fn handle(state: Arc<GatewayState>, req: Request<Incoming>) -> Result<Response<ProxyBody>, Infallible> {
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
        (&Method::GET, "/admin/ready") => {
            let last = state.last_reload();
            json(
                StatusCode::OK,
                json!({ "ready": true, "config": { "ok": last.ok, "error": last.error }, "dependencies": {} }),
            )
        }
        (&Method::GET, "/admin/stats") => json(StatusCode::OK, stats(&state)),
        (&Method::GET, "/metrics") => {
            let mut resp = Response::new(full(state.metrics().render_prometheus()));
            resp.headers_mut()
                .insert(CONTENT_TYPE, "text/plain; version=0.0.4".parse().expect("static"));
            resp
        }
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
