//! The dashboard's memory: one sample per second of what the gateway did in that second
//! (requests by status class, latency percentiles, per-route and per-hook figures, cache,
//! rate-limit and auth decisions, GPU queue, sinks), kept for the last 15 minutes in a ring of
//! fixed length. The admin API's sampler (`admin::sampler`) takes them from the metrics
//! registry, so they cost the request path nothing; their size is bounded (at most
//! [`MAX_ROUTES`] routes and [`MAX_HOOKS`] hooks each).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::Serialize;

use sluice_core::telemetry::metrics::HistogramSnapshot;

/// How many samples the ring keeps: 15 minutes of one per second.
pub const HISTORY_SAMPLES: usize = 900;
/// The most routes one sample lists (the busiest of the second).
pub const MAX_ROUTES: usize = 32;
/// The most plugin hooks one sample lists (the busiest of the second).
pub const MAX_HOOKS: usize = 64;

/// Latency percentiles over one second, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Percentiles {
    /// The median.
    pub p50: f64,
    /// The 95th percentile.
    pub p95: f64,
    /// The 99th percentile.
    pub p99: f64,
}

/// `seconds` in milliseconds, to the microsecond.
pub fn as_ms(seconds: f64) -> f64 {
    (seconds * 1e6).round() / 1e3
}

impl Percentiles {
    /// The percentiles of `h` (recorded in seconds); none when it is empty.
    pub fn of(h: &HistogramSnapshot) -> Option<Self> {
        let ms = |q| h.quantile(q).map(as_ms);
        Some(Percentiles {
            p50: ms(0.5)?,
            p95: ms(0.95)?,
            p99: ms(0.99)?,
        })
    }
}

/// One route's second.
#[derive(Debug, Clone, Serialize)]
pub struct RouteSample {
    /// The route's name.
    pub route: String,
    /// Requests answered in the second.
    pub requests: u64,
    /// Their latency.
    pub latency_ms: Option<Percentiles>,
}

/// One plugin hook's second.
#[derive(Debug, Clone, Serialize)]
pub struct HookSample {
    /// The plugin's name.
    pub plugin: String,
    /// The hook (`on-request`, `on-response`, ...).
    pub hook: String,
    /// Calls in the second.
    pub calls: u64,
    /// Their 99th percentile, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// What the gateway did in one second.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// The end of the second, in seconds since the Unix epoch.
    pub t: u64,
    /// Requests answered, by status class 1xx to 5xx.
    pub status: [u64; 5],
    /// Latency of every route's requests together.
    pub latency_ms: Option<Percentiles>,
    /// Requests between arrival and their response head at the end of the second.
    pub in_flight: u64,
    /// The busiest routes.
    pub routes: Vec<RouteSample>,
    /// The busiest plugin hooks.
    pub hooks: Vec<HookSample>,
    /// Plugin failures (traps, deadlines, ...) of any kind.
    pub plugin_failures: u64,
    /// HTTP cache lookups answered from the cache (fresh or stale).
    pub cache_hits: u64,
    /// HTTP cache lookups that went to the upstream (nothing usable, or a revalidation).
    pub cache_misses: u64,
    /// Entries evicted from the memory cache.
    pub cache_evictions: u64,
    /// Bytes of the memory cache at the end of the second.
    pub cache_bytes: u64,
    /// Entries of the memory cache at the end of the second.
    pub cache_entries: u64,
    /// Rate-limit decisions that let the request through.
    pub limits_allowed: u64,
    /// Rate-limit decisions that refused it.
    pub limits_denied: u64,
    /// Audited decisions with outcome `allow`, of every plugin.
    pub auth_allowed: u64,
    /// Audited decisions with any other outcome (`deny`, `error`, ...), of every plugin.
    pub auth_denied: u64,
    /// GPU requests waiting in the scheduler's queue at the end of the second.
    pub gpu_waiting: u64,
    /// Rows queued for Postgres at the end of the second.
    pub sink_queued: u64,
    /// Bytes spilled to disk while Postgres is away, at the end of the second.
    pub sink_spilled_bytes: u64,
}

/// The ring of samples, shared by the sampler and the admin API.
#[derive(Debug, Default)]
pub struct History {
    samples: Mutex<VecDeque<Arc<Sample>>>,
}

impl History {
    /// Adds a sample, dropping the oldest past [`HISTORY_SAMPLES`].
    pub fn push(&self, sample: Sample) {
        let mut samples = self.samples.lock();
        if samples.len() == HISTORY_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(Arc::new(sample));
    }

    /// The samples after `since` (seconds since the epoch; 0 for all), oldest first.
    pub fn since(&self, since: u64) -> Vec<Arc<Sample>> {
        let samples = self.samples.lock();
        samples.iter().filter(|s| s.t > since).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64) -> Sample {
        Sample {
            t,
            status: [0; 5],
            latency_ms: None,
            in_flight: 0,
            routes: vec![],
            hooks: vec![],
            plugin_failures: 0,
            cache_hits: 0,
            cache_misses: 0,
            cache_evictions: 0,
            cache_bytes: 0,
            cache_entries: 0,
            limits_allowed: 0,
            limits_denied: 0,
            auth_allowed: 0,
            auth_denied: 0,
            gpu_waiting: 0,
            sink_queued: 0,
            sink_spilled_bytes: 0,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_fifteen_minutes() {
        let history = History::default();
        for t in 1..=(HISTORY_SAMPLES as u64 + 100) {
            history.push(sample(t));
        }
        let all = history.since(0);
        assert_eq!(all.len(), HISTORY_SAMPLES);
        assert_eq!(all[0].t, 101);
        assert_eq!(history.since(995).len(), 5);
    }
}
