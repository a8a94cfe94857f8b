//! `/admin/ready`: whether the gateway is `ok` or `degraded`, and the state of each
//! dependency (upstreams, Postgres, Redis, kv, cache, sinks, rate limits).

use serde_json::{Value, json};

use super::dependencies;
use crate::state::GatewayState;

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
