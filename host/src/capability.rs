//! The host side of every WIT interface a plugin imports, one module per interface, each of
//! the same shape: the generated `Host` trait implemented for [`HostState`], a grant check at
//! the top of every call, and (where there is one) a backend type.
//!
//! log, metrics and clock are always granted. kv and cache run in memory (moka). postgres
//! and redis run on the gateway's pools when `[postgres]` and `[redis]` are configured.
//! http-client and gpu are checked against the grant and then answer `not-configured` until
//! their backends exist.

mod audit;
mod body;
mod cache;
mod cache_shared;
mod clock;
mod crypto;
mod gpu;
mod http;
mod http_cache;
mod kv;
mod kv_shared;
mod log;
mod metrics;
mod postgres;
mod ratelimit;
mod redis;

use std::sync::Arc;

use crate::backend::http_out::{OutboundError, OutboundHttp};
use crate::backend::postgres::{PostgresBackend, PostgresError};
use crate::backend::ratelimit::RateLimiter;
use crate::backend::redis::{RedisBackend, RedisError};
use crate::backend::sink::Sinks;
use crate::config::{GatewayConfig, Grants, HttpCacheSettings};
use crate::httpcache::HttpCache;
use crate::runtime::bindings::HostError;
use crate::runtime::state::HostState;
use crate::telemetry::metrics::Registry;

pub use cache::{MAX_ENTRY as MAX_CACHE_ENTRY, RESERVED_PREFIX as HOST_CACHE_PREFIX, ResponseCache};
pub use cache_shared::SharedCache;
pub(crate) use clock::unix_ms;
pub use kv::KvStore;
pub use kv_shared::SharedKv;
pub use metrics::PluginMetrics;

/// Backends shared by every plugin of a gateway.
#[derive(Debug, Clone)]
pub struct Capabilities {
    /// The in-memory key/value store behind `kv`.
    pub kv: Arc<KvStore>,
    /// The in-memory response cache behind `cache`.
    pub cache: Arc<ResponseCache>,
    /// The gateway's metrics registry.
    pub metrics: Arc<Registry>,
    /// The Postgres pool, when `[postgres]` is configured.
    pub postgres: Option<Arc<PostgresBackend>>,
    /// The Redis pool, when `[redis]` is configured.
    pub redis: Option<Arc<RedisBackend>>,
    /// `kv` in Redis with `kv` (memory) in front, when `[redis] shared_kv`.
    pub shared_kv: Option<Arc<SharedKv>>,
    /// `cache` in Redis with `cache` (memory) in front, when `[redis] shared_cache`.
    pub shared_cache: Option<Arc<SharedCache>>,
    /// The background writer of telemetry, audit and inference rows (to Postgres when
    /// configured, else to memory); absent in [`Capabilities::in_memory`].
    pub sinks: Option<Arc<Sinks>>,
    /// The outbound HTTP client behind `http-client`; absent in [`Capabilities::in_memory`].
    pub http: Option<Arc<OutboundHttp>>,
    /// The rate limiter behind `rate-limit` (in Redis when configured, else in memory).
    pub ratelimit: Arc<RateLimiter>,
    /// The HTTP response cache behind `http-cache` (sized by `[http_cache]`).
    pub http_cache: Arc<HttpCache>,
    /// The GPU fleet behind `gpu` (`[gpu]`), if configured.
    pub gpu: Option<Arc<crate::gpu::GpuFleet>>,
}

impl Capabilities {
    /// In-memory backends with default sizes (64 MiB kv, 256 MiB cache) and a new registry.
    pub fn in_memory() -> Self {
        let metrics = Arc::new(Registry::new());
        Capabilities {
            kv: Arc::new(KvStore::new(64 << 20)),
            cache: Arc::new(ResponseCache::new(256 << 20)),
            metrics: metrics.clone(),
            postgres: None,
            redis: None,
            shared_kv: None,
            shared_cache: None,
            sinks: None,
            http: None,
            ratelimit: Arc::new(RateLimiter::new(None, metrics.clone())),
            http_cache: HttpCache::new(&HttpCacheSettings::default(), metrics.clone(), None),
            gpu: None,
        }
    }

    /// In-memory kv and cache, plus the backends `config` configures (a lazily connecting
    /// Postgres pool, a Redis pool) and the row writer. Must be called on a tokio runtime.
    pub fn for_config(config: &GatewayConfig) -> Result<Self, BackendError> {
        let mut caps = Self::in_memory();
        let shared_level = config
            .redis
            .as_ref()
            .filter(|r| r.shared_cache)
            .map(|r| RedisBackend::connect(r, &caps.metrics))
            .transpose()?;
        caps.http_cache = HttpCache::new(&config.http_cache, caps.metrics.clone(), shared_level);
        if let Some(settings) = &config.postgres {
            caps.postgres = Some(PostgresBackend::connect_lazy(settings, &caps.metrics)?);
        }
        if let Some(settings) = &config.redis {
            let redis = RedisBackend::connect(settings, &caps.metrics)?;
            if settings.shared_kv {
                caps.shared_kv = Some(Arc::new(SharedKv::new(redis.clone())));
            }
            if settings.shared_cache {
                caps.shared_cache = Some(SharedCache::start(redis.clone(), caps.cache.clone()));
            }
            caps.ratelimit = Arc::new(RateLimiter::new(Some(redis.clone()), caps.metrics.clone()));
            caps.redis = Some(redis);
        }
        let http = &config.http_client;
        let ca_file = http.ca_file.as_ref().map(|p| config.resolve(p));
        caps.http = Some(OutboundHttp::new(http, ca_file.as_deref(), &caps.metrics)?);
        let sinks = &config.sinks;
        caps.sinks = Some(Sinks::start(
            sinks,
            config.resolve(&sinks.spill_path),
            sinks.jsonl_path.as_ref().map(|p| config.resolve(p)),
            caps.postgres.clone(),
            caps.metrics.clone(),
        ));
        if let Some(gpu) = config.gpu.as_ref().filter(|g| !g.backends.is_empty()) {
            let persist = caps
                .postgres
                .clone()
                .map(|pg| crate::gpu::persist::Persist::new(pg, caps.sinks.clone()));
            caps.gpu = Some(crate::gpu::GpuFleet::new(gpu, &caps.metrics, persist));
        }
        Ok(caps)
    }
}

/// Why a configured backend could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Postgres.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// The outbound HTTP client.
    #[error(transparent)]
    Http(#[from] OutboundError),
    /// Redis.
    #[error(transparent)]
    Redis(#[from] RedisError),
}

/// What one configured plugin may use: its name, grants and handles to the backends.
#[derive(Debug)]
pub struct PluginContext {
    /// The plugin's name (the `[plugins.NAME]` key).
    pub name: Arc<str>,
    /// What the config grants it.
    pub grants: Grants,
    /// The shared backends.
    pub caps: Capabilities,
    /// The plugin's own metric series.
    pub metrics: PluginMetrics,
}

impl PluginContext {
    /// A context for plugin `name` with `grants` over `caps`.
    pub fn new(name: &str, grants: Grants, caps: Capabilities) -> Self {
        let name: Arc<str> = Arc::from(name);
        let metrics = PluginMetrics::new(name.clone(), caps.metrics.clone());
        PluginContext {
            name,
            grants,
            caps,
            metrics,
        }
    }

    /// `Ok` when `granted`, otherwise the `denied` error naming the plugin and `capability`.
    pub(crate) fn require(&self, granted: bool, capability: &str) -> Result<(), HostError> {
        if granted {
            Ok(())
        } else {
            Err(HostError::Denied(format!(
                "{capability}: plugin '{}' is not granted {capability} (add it to the plugin's grants)",
                self.name
            )))
        }
    }

    /// The `not-configured` error for `capability`, naming the plugin.
    pub(crate) fn not_configured(&self, capability: &str) -> HostError {
        HostError::NotConfigured(format!(
            "{capability}: no {capability} backend is configured on this gateway (plugin '{}')",
            self.name
        ))
    }

    /// The `invalid` error for `capability`, naming the plugin.
    pub(crate) fn invalid(&self, capability: &str, why: impl std::fmt::Display) -> HostError {
        HostError::Invalid(format!("{capability}: {why} (plugin '{}')", self.name))
    }
}

impl crate::runtime::bindings::sluice::plugin::types::Host for HostState {}

/// Plugin keys longer than this are hashed in [`scoped_key`].
const MAX_SCOPED_KEY: usize = 256;

/// A host-side key for a plugin's `key`: `prefix` + route + plugin + key, each length-prefixed
/// (so no route's or plugin's keys can spell another's), the plugin's key hashed when longer
/// than 256 bytes.
pub fn scoped_key(prefix: &str, route: &str, plugin: &str, key: &str) -> String {
    use sha2::Digest;
    let key = if key.len() > MAX_SCOPED_KEY {
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(key.as_bytes())))
    } else {
        key.to_string()
    };
    format!("{prefix}{}:{route}:{}:{plugin}:{key}", route.len(), plugin.len())
}
