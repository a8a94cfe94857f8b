//! `/admin/stats` (routes with their plugin pools, plugins, upstream targets, Postgres pool,
//! sinks, tunnels, last reload) and the gauges `/metrics` sets from the same live figures at
//! each scrape.

use serde_json::{Value, json};

use crate::state::GatewayState;

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

/// Copies the live pool figures (instance pools, upstream connection pools, target health)
/// into gauges, so that `/metrics` shows them as of the scrape.
pub fn export_pool_gauges(state: &GatewayState) {
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
        .gauge("sluice_requests_in_flight", &[])
        .set(state.in_flight() as f64);
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
