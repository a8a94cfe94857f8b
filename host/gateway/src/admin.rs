//! The admin API, on its own listener: health, readiness, stats, Prometheus metrics, reload,
//! HTTP cache invalidation, the GPU fleet, and its own OpenAPI document. With `admin.token` set, every request must carry
//! `Authorization: Bearer <token>`.

mod cache;
mod dependencies;

use std::convert::Infallible;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

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
                .map(|p| {
                    json!({
                        "plugin": &**p.name(),
                        "idle_instances": p.idle_instances(),
                        "busy_instances": p.busy_instances(),
                        "max_instances": p.max_instances(),
                        "fail": format!("{:?}", p.fail_policy()).to_lowercase(),
                    })
                })
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
                .map(|t| {
                    json!({
                        "target": t.authority,
                        "in_flight": t.in_flight(),
                        "requests": t.requests(),
                        "failures": t.failures(),
                        "healthy": t.healthy(),
                        "breaker_open": t.breaker_open(),
                        "connections_open": t.connections_open(),
                        "connections_opened": t.connections_opened(),
                        "pool_utilization": t.pool_utilization(),
                        "connection_reuse_rate": t.connection_reuse_rate(),
                    })
                })
                .collect();
            json!({ "name": u.name, "targets": targets })
        })
        .collect();
    let postgres = state.runtime().backends().postgres.as_ref().map(|pg| pg.stats());
    json!({
        "routes": routes,
        "plugins": plugins,
        "upstreams": upstreams,
        "postgres": postgres,
        "sinks": state.runtime().backends().sinks.as_ref().map(|s| json!({ "queued": s.queued(), "spilled_bytes": s.spilled_bytes() })),
        "tunnels": { "open": state.tunnels().open_count() },
        "last_reload": state.last_reload(),
    })
}

/// Readiness: the gateway serves once its config is loaded, so the answer is 200 with
/// `status: ok`, or `degraded` (still 200: every instance would see the same upstream, and
/// taking them all out of a load balancer turns one failing upstream into an outage of every
/// route) when an upstream has no target available. Each dependency's state is listed:
/// upstreams with their available targets, and the backends of host capabilities (Postgres
/// answers `SELECT 1` within a second, or it is `down` and the status `degraded`).
pub async fn readiness(state: &GatewayState) -> Value {
    let gateway = state.current();
    let mut degraded = false;
    let upstreams: serde_json::Map<String, Value> = gateway
        .upstreams
        .values()
        .map(|u| {
            let available = u.targets().iter().filter(|t| t.healthy() && !t.breaker_open()).count();
            degraded |= available == 0;
            let state = if available == 0 { "down" } else { "up" };
            (
                u.name.clone(),
                json!({ "state": state, "available_targets": available, "targets": u.targets().len() }),
            )
        })
        .collect();
    let backends = state.runtime().backends();
    let pings = dependencies::ping(backends).await;
    let postgres = match (&backends.postgres, pings.postgres) {
        (Some(pg), Some(Ok(()))) => json!({ "state": "up", "pool": pg.stats() }),
        (Some(pg), Some(Err(error))) => {
            degraded = true;
            json!({ "state": "down", "error": error, "pool": pg.stats() })
        }
        _ => json!({ "state": "not-configured" }),
    };
    let redis = match (&backends.redis, pings.redis) {
        (Some(r), Some(Ok(()))) => json!({ "state": "up", "breaker_open": r.breaker_open() }),
        (Some(r), Some(Err(error))) => {
            degraded = true;
            json!({ "state": "down", "error": error, "breaker_open": r.breaker_open() })
        }
        _ => json!({ "state": "not-configured" }),
    };
    let sinks = match (&backends.sinks, &backends.postgres) {
        (None, _) => json!({ "state": "off" }),
        (Some(s), None) => json!({ "state": "embedded", "backend": "memory", "queued": s.queued() }),
        (Some(s), Some(_)) => {
            // Rows in the spill file wait for Postgres: not lost, but not stored yet either.
            // Audit rows that cannot be kept close the audited routes (`audit_when_full`).
            let spilling = s.spilled_bytes() > 0;
            let refusing = s.audit_refused();
            degraded |= spilling || refusing;
            let state = match (refusing, spilling) {
                (true, _) => "refusing-audited-routes",
                (false, true) => "spilling",
                (false, false) => "up",
            };
            json!({ "state": state, "backend": "postgres", "queued": s.queued(), "spilled_bytes": s.spilled_bytes() })
        }
    };
    let (ratelimit, limits_local) = backends.rate_limit.readiness();
    degraded |= limits_local;
    let last = state.last_reload();
    json!({
        "ready": true,
        "status": if degraded { "degraded" } else { "ok" },
        "config": { "ok": last.ok, "error": last.error, "trigger": last.trigger, "at_unix": last.at_unix },
        "dependencies": {
            "upstreams": upstreams,
            "postgres": postgres,
            "redis": redis,
            "kv": if backends.shared_kv.is_some() { json!({ "state": "shared", "backend": "redis" }) } else { json!({ "state": "embedded", "backend": "memory" }) },
            "cache": if backends.shared_cache.is_some() { json!({ "state": "shared", "backend": "redis" }) } else { json!({ "state": "embedded", "backend": "memory" }) },
            "sinks": sinks,
            "ratelimit": ratelimit,
        },
    })
}

/// Copies the live pool figures (instance pools, upstream connection pools, target health)
/// into gauges, so that `/metrics` shows them as of the scrape.
fn export_pool_gauges(state: &GatewayState) {
    let gateway = state.current();
    let metrics = state.metrics();
    for route in gateway.router.routes() {
        for p in route.chain.plugins() {
            let labels = [("route", route.name.as_str()), ("plugin", &**p.name())];
            metrics
                .gauge("sluice_plugin_instances_idle", &labels)
                .set(p.idle_instances() as f64);
            metrics
                .gauge("sluice_plugin_instances_busy", &labels)
                .set(p.busy_instances() as f64);
        }
    }
    metrics
        .gauge("sluice_tunnels_open", &[])
        .set(state.tunnels().open_count() as f64);
    if let Some(redis) = &state.runtime().backends().redis {
        metrics
            .gauge("sluice_redis_breaker_open", &[])
            .set(f64::from(u8::from(redis.breaker_open())));
    }
    state.runtime().backends().http_cache.export_gauges();
    if let Some(fleet) = &state.runtime().backends().gpu {
        fleet.scheduler.export_gauges(metrics);
    }
    if let Some(sinks) = &state.runtime().backends().sinks {
        metrics.gauge("sluice_sink_queued_rows", &[]).set(sinks.queued() as f64);
    }
    if let Some(pg) = &state.runtime().backends().postgres {
        let pool = pg.stats();
        metrics.gauge("sluice_postgres_pool_size", &[]).set(pool.size.into());
        metrics.gauge("sluice_postgres_pool_idle", &[]).set(pool.idle as f64);
        metrics
            .gauge("sluice_postgres_pool_in_use", &[])
            .set(pool.in_use as f64);
        metrics.gauge("sluice_postgres_pool_max", &[]).set(pool.max.into());
    }
    for u in gateway.upstreams.values() {
        for t in u.targets() {
            let labels = [("upstream", u.name.as_str()), ("target", t.authority.as_str())];
            let set = |name: &str, v: f64| metrics.gauge(name, &labels).set(v);
            set("sluice_upstream_in_flight", t.in_flight() as f64);
            set("sluice_upstream_connections_open", t.connections_open() as f64);
            set("sluice_upstream_pool_utilization", t.pool_utilization());
            set("sluice_upstream_connection_reuse_ratio", t.connection_reuse_rate());
            set("sluice_upstream_healthy", f64::from(u8::from(t.healthy())));
            set("sluice_upstream_breaker_open", f64::from(u8::from(t.breaker_open())));
        }
    }
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
        (&Method::GET, "/admin/ready") => json(StatusCode::OK, readiness(&state).await),
        (&Method::GET, "/admin/stats") => json(StatusCode::OK, stats(&state)),
        (&Method::GET, "/metrics") => {
            export_pool_gauges(&state);
            dependencies::export(&dependencies::ping(state.runtime().backends()).await, state.metrics());
            let mut resp = Response::new(full(state.metrics().render_prometheus()));
            resp.headers_mut()
                .insert(CONTENT_TYPE, "text/plain; version=0.0.4".parse().expect("static"));
            resp
        }
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
