//! `[redis]`: the gateway's Redis client pool and the Lua scripts plugins may be granted.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The Redis backend. Absent: plugins' redis calls answer `not-configured`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// Where Redis is, and which deployment: `redis://host:6379/0` (standalone),
    /// `redis-cluster://host:7000?node=host2:7001` (Cluster), or
    /// `redis-sentinel://host:26379/0?sentinelServiceName=mymaster&node=host2:26379` (Sentinel).
    pub url: String,
    /// Connections in the pool, used round robin. Default 4.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// The time budget of one plugin call, in ms; past it the call fails with `timeout`.
    /// Default 50.
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// How long one connection attempt may take, in ms. Default 1000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// The longest wait between reconnection attempts (they back off exponentially from
    /// 100 ms), in ms. Default 2000.
    #[serde(default = "default_reconnect_max_ms")]
    pub reconnect_max_ms: u32,
    /// Consecutive failed calls that open the circuit breaker; while open, calls fail at once
    /// with `unavailable`. Default 5.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the breaker stays open before one probe call, in ms. Default 1000.
    #[serde(default = "default_breaker_open_ms")]
    pub breaker_open_ms: u64,
    /// The prefix of every key and channel: plugin keys are `PREFIX:{plugin}:key`, channels
    /// `PREFIX:channel`. Default `sluice`.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Whether the `kv` capability keeps its values in Redis (shared by every gateway
    /// instance, with memory as a short-lived first level) instead of in memory only.
    /// Default true.
    #[serde(default = "default_true")]
    pub shared_kv: bool,
    /// Whether the `cache` capability keeps responses in Redis (shared by every instance, with
    /// memory in front, invalidations published to all). Default true.
    #[serde(default = "default_true")]
    pub shared_cache: bool,
    /// How long a value read from or written to Redis is served from memory without asking
    /// Redis again, in ms: the most another instance's write can go unseen. Default 1000.
    #[serde(default = "default_kv_memory_ms")]
    pub kv_memory_ms: u64,
    /// Values larger than this are stored zstd-compressed. Default 1024.
    #[serde(default = "default_compress_above_bytes")]
    pub compress_above_bytes: usize,
    /// Lua scripts plugins may be granted by name (`grants.redis.scripts`): name → source.
    /// Each is loaded once and run with EVALSHA (reloaded after a SCRIPT FLUSH or a restart).
    #[serde(default)]
    pub scripts: BTreeMap<String, String>,
}

fn default_pool_size() -> usize {
    4
}
fn default_call_timeout_ms() -> u64 {
    50
}
fn default_connect_timeout_ms() -> u64 {
    1_000
}
fn default_reconnect_max_ms() -> u32 {
    2_000
}
fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open_ms() -> u64 {
    1_000
}
fn default_true() -> bool {
    true
}
fn default_kv_memory_ms() -> u64 {
    1_000
}
fn default_compress_above_bytes() -> usize {
    1_024
}
fn default_prefix() -> String {
    "sluice".into()
}

impl RedisSettings {
    pub(super) fn validate(&self) -> Result<(), String> {
        let schemes = ["redis://", "rediss://", "redis-cluster://", "redis-sentinel://"];
        if !schemes.iter().any(|s| self.url.starts_with(s)) {
            return Err(format!("redis.url must start with one of {}", schemes.join(", ")));
        }
        if !(1..=256).contains(&self.pool_size) {
            return Err("redis.pool_size must be 1..=256".into());
        }
        if self.call_timeout_ms == 0 || self.connect_timeout_ms == 0 || self.breaker_open_ms == 0 {
            return Err("redis: call_timeout_ms, connect_timeout_ms and breaker_open_ms must be at least 1".into());
        }
        if self.prefix.is_empty() || self.prefix.contains(['{', '}', ' ']) {
            return Err("redis.prefix must be non-empty, without braces or spaces".into());
        }
        if let Some((name, _)) = self.scripts.iter().find(|(_, src)| src.trim().is_empty()) {
            return Err(format!("redis.scripts.{name} is empty"));
        }
        Ok(())
    }
}
