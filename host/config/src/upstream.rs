//! `[upstreams.NAME]`: where routes send requests, and how.

use serde::Deserialize;

/// An upstream: one or more targets, reached over keep-alive connections each request worker
/// keeps for itself.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamDef {
    /// Targets as `host:port` (plain HTTP/1.1 or h2c) or `http://host:port` base URLs.
    pub targets: Vec<String>,
    /// How requests spread over targets. Default `round_robin`.
    #[serde(default)]
    pub balance: Balance,
    /// Time to establish a connection. Default 2 s (502 when it fails).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time for the response head to arrive. Default 30 s (504 after it).
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Idle keep-alive connections kept per target. Default 64.
    #[serde(default = "default_max_idle")]
    pub max_idle_per_target: usize,
    /// How long an idle connection is kept. Default 90 s.
    #[serde(default = "default_idle_timeout_ms")]
    pub idle_timeout_ms: u64,
    /// Speak HTTP/2 (prior knowledge) to the targets. Default false.
    #[serde(default)]
    pub http2: bool,
    /// Consecutive failures that open a target's circuit breaker (0 disables it). Default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long an open breaker keeps a target out before one probe. Default 5 s.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// Retries on another target for requests without a body: after a connect failure for
    /// any method, after a reset for idempotent methods. Default 1.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Retries allowed as a percentage of requests (plus 10), so retries never multiply load
    /// on a failing upstream. Default 20.
    #[serde(default = "default_retry_budget_percent")]
    pub retry_budget_percent: u32,
    /// Active health checks: a GET of `path` on every target each interval; a target that
    /// fails it is skipped until it passes again.
    #[serde(default)]
    pub health_check: Option<HealthCheck>,
}

/// Active health checking of an upstream's targets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    /// The path to GET; a 2xx answer is healthy.
    pub path: String,
    /// How often to check. Default 2 s.
    #[serde(default = "default_health_interval_ms")]
    pub interval_ms: u64,
    /// How long a check may take. Default 1 s.
    #[serde(default = "default_health_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    5_000
}
fn default_retries() -> u32 {
    1
}
fn default_retry_budget_percent() -> u32 {
    20
}
fn default_health_interval_ms() -> u64 {
    2_000
}
fn default_health_timeout_ms() -> u64 {
    1_000
}

/// Load balancing over an upstream's targets.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    /// Each target in turn.
    #[default]
    RoundRobin,
    /// The target with the fewest requests in flight.
    LeastInFlight,
}

fn default_connect_timeout_ms() -> u64 {
    2_000
}
fn default_request_timeout_ms() -> u64 {
    30_000
}
fn default_max_idle() -> usize {
    64
}
fn default_idle_timeout_ms() -> u64 {
    90_000
}

impl UpstreamDef {
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.targets.is_empty() {
            return Err("targets must name at least one target".into());
        }
        for t in &self.targets {
            let hostport = t.strip_prefix("http://").unwrap_or(t).trim_end_matches('/');
            if hostport.is_empty()
                || hostport.contains('/')
                || !hostport.contains(':')
                || hostport.parse::<http::uri::Authority>().is_err()
            {
                return Err(format!("target '{t}' must be host:port or http://host:port"));
            }
        }
        if self.connect_timeout_ms == 0 || self.request_timeout_ms == 0 {
            return Err("timeouts must be at least 1 ms".into());
        }
        if let Some(hc) = &self.health_check
            && (!hc.path.starts_with('/') || hc.interval_ms == 0 || hc.timeout_ms == 0)
        {
            return Err("health_check needs a path starting with '/' and non-zero interval_ms and timeout_ms".into());
        }
        Ok(())
    }
}
