//! Everything the host connects to or keeps for plugins and for the gateway itself (floor 3,
//! over `sluice-core`): one pooled client or store per gateway, shared by every plugin, with
//! metrics and a state for readiness. No wasmtime types: the runtime's Host impls call in here.
//!
//! - [`postgres`]: the sqlx pool, the embedded migrations, typed statements with a timeout
//!   and a row cap.
//! - [`redis`]: the fred pool, namespaced keys, the command allow-list, scripts, a time budget
//!   and a breaker per call.
//! - [`http_client`]: the pooled outbound HTTP client (rustls), with a budget and a body cap.
//! - [`rate_limit`] and [`gcra`]: GCRA rate limits in one Redis script per request, with an
//!   in-memory fallback while Redis is down.
//! - [`sink`]: the background writer of telemetry, audit and inference rows, with a spill
//!   file while Postgres is down.
//! - [`kv`] and [`kv_shared`]: the plugins' key/value store, in memory and in Redis.
//! - [`cache`] and [`cache_shared`]: the `cache` interface's response store (also where
//!   request coalescing keeps its short replays), in memory and in Redis.
//! - [`http_cache`]: the HTTP cache's storage (the cache plugin's `http-cache` interface).
//! - [`gpu`]: the GPU fleet and its scheduler; [`keys`]: API-key storage for `sluice keys`;
//!   [`metrics`]: each plugin's own metric series; [`crypto`]: signature verification.

pub mod cache;
pub mod cache_shared;
pub mod crypto;
pub mod gcra;
pub mod gpu;
pub mod http_cache;
pub mod http_client;
pub mod keys;
pub mod kv;
pub mod kv_shared;
pub mod metrics;
pub mod postgres;
mod postgres_types;
pub mod rate_limit;
pub mod redis;
pub mod sink;
mod sink_queue;
mod sink_rows;
mod sink_spill;

use std::sync::Arc;

use cache::ResponseCache;
use cache_shared::SharedCache;
use http_cache::HttpCache;
use http_client::{OutboundError, OutboundHttp};
use kv::KvStore;
use kv_shared::SharedKv;
use postgres::{PostgresBackend, PostgresError};
use rate_limit::RateLimiter;
use redis::{RedisBackend, RedisError};
use sink::Sinks;
use sluice_config::{GatewayConfig, HttpCacheSettings};
use sluice_core::telemetry::metrics::Registry;

/// Backends shared by every plugin of a gateway.
#[derive(Debug, Clone)]
pub struct Backends {
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
    /// configured, else to memory); absent in [`Backends::in_memory`].
    pub sinks: Option<Arc<Sinks>>,
    /// The outbound HTTP client behind `http-client`; absent in [`Backends::in_memory`].
    pub http_client: Option<Arc<OutboundHttp>>,
    /// The rate limiter behind `rate-limit` (in Redis when configured, else in memory).
    pub rate_limit: Arc<RateLimiter>,
    /// The HTTP response cache behind `http-cache` (sized by `[http_cache]`).
    pub http_cache: Arc<HttpCache>,
    /// The GPU fleet behind `gpu` (`[gpu]`), if configured.
    pub gpu: Option<Arc<gpu::GpuFleet>>,
}

impl Backends {
    /// In-memory backends with default sizes (64 MiB kv, 256 MiB cache) and a new registry.
    pub fn in_memory() -> Self {
        let metrics = Arc::new(Registry::new());
        Backends {
            kv: Arc::new(KvStore::new(64 << 20)),
            cache: Arc::new(ResponseCache::new(256 << 20)),
            metrics: metrics.clone(),
            postgres: None,
            redis: None,
            shared_kv: None,
            shared_cache: None,
            sinks: None,
            http_client: None,
            rate_limit: Arc::new(RateLimiter::new(None, metrics.clone())),
            http_cache: HttpCache::new(&HttpCacheSettings::default(), metrics.clone(), None),
            gpu: None,
        }
    }

    /// In-memory kv and cache, plus the backends `config` configures (a lazily connecting
    /// Postgres pool, a Redis pool) and the row writer. Must be called on a tokio runtime.
    pub fn for_config(config: &GatewayConfig) -> Result<Self, BackendError> {
        let mut backends = Self::in_memory();
        let shared_level = config
            .redis
            .as_ref()
            .filter(|r| r.shared_cache)
            .map(|r| RedisBackend::connect(r, &backends.metrics))
            .transpose()?;
        backends.http_cache = HttpCache::new(&config.http_cache, backends.metrics.clone(), shared_level);
        if let Some(settings) = &config.postgres {
            backends.postgres = Some(PostgresBackend::connect_lazy(settings, &backends.metrics)?);
        }
        if let Some(settings) = &config.redis {
            let redis = RedisBackend::connect_for_workers(
                settings,
                &backends.metrics,
                sluice_core::workers::resolve_count(config.server.workers),
            )?;
            if settings.shared_kv {
                backends.shared_kv = Some(Arc::new(SharedKv::new(redis.clone())));
            }
            if settings.shared_cache {
                backends.shared_cache = Some(SharedCache::start(redis.clone(), backends.cache.clone()));
            }
            backends.rate_limit = Arc::new(RateLimiter::new(Some(redis.clone()), backends.metrics.clone()));
            backends.redis = Some(redis);
        }
        let http = &config.http_client;
        let ca_file = http.ca_file.as_ref().map(|p| config.resolve(p));
        backends.http_client = Some(OutboundHttp::new(http, ca_file.as_deref(), &backends.metrics)?);
        let sinks = &config.sinks;
        backends.sinks = Some(Sinks::start(
            sinks,
            config.resolve(&sinks.spill_path),
            sinks.jsonl_path.as_ref().map(|p| config.resolve(p)),
            backends.postgres.clone(),
            backends.metrics.clone(),
        ));
        if let Some(gpu) = config.gpu.as_ref().filter(|g| !g.backends.is_empty()) {
            let persist = backends
                .postgres
                .clone()
                .map(|pg| gpu::persist::Persist::new(pg, backends.sinks.clone()));
            backends.gpu = Some(gpu::GpuFleet::new(gpu, &backends.metrics, persist));
        }
        Ok(backends)
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
