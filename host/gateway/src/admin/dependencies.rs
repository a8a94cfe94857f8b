//! Postgres and Redis as the admin API sees them: both pinged at once (a second each at most)
//! for `/admin/ready`, and for `/metrics` as `sluice_dependency_up{dependency}` gauges, which
//! the alert rules in `deploy/prometheus/alerts.yml` watch.

use std::time::Duration;

use sluice_backends::Backends;
use sluice_core::telemetry::metrics::Registry;

/// How long a ping may take before the dependency counts as down.
const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// The outcome of pinging each configured dependency: `None` when it is not configured,
/// otherwise `Ok` or the error's text.
pub struct Pings {
    /// `SELECT 1` on the Postgres pool.
    pub postgres: Option<Result<(), String>>,
    /// `PING` on Redis.
    pub redis: Option<Result<(), String>>,
}

/// Pings Postgres and Redis at once: the answer waits for the slower, not the sum.
pub async fn ping(backends: &Backends) -> Pings {
    let (postgres, redis) = tokio::join!(
        async {
            match &backends.postgres {
                Some(pg) => Some(pg.ping(PING_TIMEOUT).await.map_err(|e| e.to_string())),
                None => None,
            }
        },
        async {
            match &backends.redis {
                Some(r) => Some(r.ping(PING_TIMEOUT).await.map_err(|e| e.to_string())),
                None => None,
            }
        }
    );
    Pings { postgres, redis }
}

/// Sets `sluice_dependency_up{dependency="postgres"|"redis"}` to 1 or 0 for each configured
/// dependency.
pub fn export(pings: &Pings, metrics: &Registry) {
    for (name, ping) in [("postgres", &pings.postgres), ("redis", &pings.redis)] {
        if let Some(result) = ping {
            let up = if result.is_ok() { 1.0 } else { 0.0 };
            metrics.gauge("sluice_dependency_up", &[("dependency", name)]).set(up);
        }
    }
}
