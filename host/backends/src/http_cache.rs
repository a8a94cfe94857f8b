//! The HTTP response cache behind the `http-cache` interface: the storage of a shared cache
//! whose RFC 9111 policy is the cache plugin's. Responses are kept in memory (moka, bounded
//! by bytes; its TinyLFU admission weighs an entry's size against the entries it would push
//! out, and responses over a share of the memory never enter it), keyed by the plugin's key
//! namespaced by route and plugin plus the variant the stored `Vary` names select. An index
//! by request target and by tag serves invalidation (`index.rs`); bodies are stored as they
//! stream to the client (`store_body.rs`); with Redis, a shared level behind memory
//! (`shared.rs`) and stampede protection across instances (`fill.rs`).

mod direct;
mod entry;
mod fill;
mod index;
mod invalidate;
mod shared;
mod state;
mod store_body;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::notification::RemovalCause;
use moka::sync::Cache;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::redis::{RedisBackend, RedisError};
use index::Index;
use shared::Shared;
use sluice_config::HttpCacheSettings;
use sluice_core::telemetry::metrics::{Registry, label};
use sluice_core::time::unix_ms;
use state::{Fast, UntilKeepUntil};

/// The prefix every `http-cache` key is scoped under ([`scoped_key`](crate::scoped_key)).
pub const KEY_PREFIX: &str = "http:";

pub use entry::{CacheServe, Direct, Fields, StoreError, StoredEntry};
pub use fill::{Fill, FillGuard};
/// Reads an entry as the Redis level stored it (the fuzz target `redis_entry` runs it on
/// arbitrary bytes): the entry and its tags' generations, or why the bytes are not one.
pub use shared::decode as decode_redis_entry;
pub use state::HttpCache;
pub use store_body::{Store, StoreBody, Storing, store_body};

/// The variant part of a key: the request's values of the `vary` names, hashed.
fn variant_of(vary: &[String], request: &[(String, Vec<u8>)]) -> String {
    if vary.is_empty() {
        return String::new();
    }
    let mut hash = Sha256::new();
    for name in vary {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        for (_, v) in request.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
            hash.update((v.len() as u64).to_le_bytes());
            hash.update(v);
        }
        hash.update(u64::MAX.to_le_bytes());
    }
    hex::encode(&hash.finalize()[..12])
}

impl HttpCache {
    /// An empty cache sized by `settings`, counting into `metrics`, with a shared level on
    /// `redis` when given (it subscribes to invalidations: call on a tokio runtime).
    pub fn new(settings: &HttpCacheSettings, metrics: Arc<Registry>, redis: Option<Arc<RedisBackend>>) -> Arc<Self> {
        let index = Arc::new(Mutex::new(Index::default()));
        let on_removal = index.clone();
        let evictions = metrics.counter("sluice_http_cache_evictions_total", &[]);
        let entries = Cache::builder()
            .max_capacity(settings.memory_bytes)
            .weigher(|k: &String, v: &Arc<StoredEntry>| v.weight(k).min(u64::from(u32::MAX)) as u32)
            .expire_after(UntilKeepUntil)
            .eviction_listener(move |key: Arc<String>, entry: Arc<StoredEntry>, cause| {
                if cause == RemovalCause::Size {
                    evictions.add(1);
                }
                // A replaced entry's key now holds the new one, which the index already has.
                if cause != RemovalCause::Replaced {
                    on_removal.lock().remove(&key, &entry.target, &entry.tags);
                }
            })
            .build_with_hasher(Fast::default());
        let variants = Cache::builder()
            .max_capacity(1 << 20)
            .time_to_idle(Duration::from_secs(24 * 3600))
            .build();
        let direct = Cache::builder()
            .max_capacity(1 << 20)
            .time_to_idle(Duration::from_secs(3600))
            .build_with_hasher(Fast::default());
        let tag_hints = Cache::builder()
            .max_capacity(1 << 20)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        let hit_counters = parking_lot::RwLock::default();
        let cache = Arc::new(HttpCache {
            hit_counters,
            entries,
            variants,
            tag_hints,
            direct,
            slot_hasher: Fast::default(),
            index,
            refreshing: Mutex::default(),
            claims: Mutex::default(),
            shared: redis.map(Shared::new),
            generation: AtomicU64::new(0),
            recent: Mutex::default(),
            settings: settings.clone(),
            metrics,
        });
        if let Some(shared) = &cache.shared {
            let (on_message, on_lost) = (Arc::downgrade(&cache), Arc::downgrade(&cache));
            let channel = shared.redis().host_channel(shared::CHANNEL);
            shared.redis().subscribe(
                &channel,
                move |message| {
                    if let Some(cache) = on_message.upgrade() {
                        cache.apply_announced(&message);
                    }
                },
                move || {
                    if let Some(cache) = on_lost.upgrade() {
                        cache.clear();
                    }
                },
            );
        }
        cache
    }

    /// Counts a failed Redis call; the cache goes on with memory alone.
    fn shared_failed(&self, what: &str, e: &RedisError) {
        tracing::warn!(error = %e, "http cache: redis {what} failed; serving from memory alone");
        self.metrics
            .counter("sluice_http_cache_shared_errors_total", &[("op", what)])
            .add(1);
    }

    /// The `Vary` names stored for `base`: known in memory, else from Redis.
    async fn vary_names(&self, base: &str) -> Option<Arc<[String]>> {
        if let Some(names) = self.variants.get(base) {
            return Some(names);
        }
        let shared = self.shared.as_ref()?;
        match Box::pin(shared.vary(base)).await {
            Ok(Some(names)) => {
                let names: Arc<[String]> = Arc::from(names);
                self.variants.insert(base.to_string(), names.clone());
                Some(names)
            }
            Ok(None) => None,
            Err(e) => {
                self.shared_failed("lookup", &e);
                None
            }
        }
    }

    /// The live response stored in memory under `base` for a request with `request` header
    /// fields.
    pub fn lookup_memory(&self, base: &str, request: &[(String, Vec<u8>)]) -> Option<Arc<StoredEntry>> {
        let names = self.variants.get(base)?;
        let key = format!("{base}#{}", variant_of(&names, request));
        self.entries.get(&key).filter(|e| e.keep_until_ms > unix_ms())
    }

    /// The live response stored under `base` for a request with `request` header fields:
    /// from memory, else from Redis (then kept in memory).
    pub async fn lookup(&self, base: &str, request: &[(String, Vec<u8>)]) -> Option<Arc<StoredEntry>> {
        let names = self.vary_names(base).await?;
        let key = format!("{base}#{}", variant_of(&names, request));
        if let Some(hit) = self.entries.get(&key).filter(|e| e.keep_until_ms > unix_ms()) {
            return Some(hit);
        }
        let shared = self.shared.as_ref()?;
        let before = self.generation.load(Ordering::SeqCst);
        let max = usize::try_from(self.settings.max_object_bytes).unwrap_or(usize::MAX) + (1 << 20);
        let hint = self.tag_hints.get(&key).unwrap_or_else(|| Arc::from(Vec::new()));
        match Box::pin(shared.get(&key, max, &hint)).await {
            Ok(Some(entry)) => {
                if *entry.tags != *hint {
                    self.tag_hints.insert(key.clone(), Arc::from(entry.tags.clone()));
                }
                let entry = Arc::new(entry);
                if self.generation.load(Ordering::SeqCst) == before {
                    self.keep_in_memory(key, entry.clone());
                }
                Some(entry)
            }
            Ok(None) => None,
            Err(e) => {
                self.shared_failed("lookup", &e);
                None
            }
        }
    }

    /// Puts `entry` in memory under `key` when it is small enough for it.
    fn keep_in_memory(&self, key: String, entry: Arc<StoredEntry>) {
        if entry.body.len() as u64 > self.settings.memory_object_limit() {
            return;
        }
        self.index.lock().add(&key, &entry.target, &entry.tags);
        let (base, variant) = key.rsplit_once('#').unwrap_or((key.as_str(), ""));
        self.index_direct(base, &key, !variant.is_empty(), &entry);
        self.entries.insert(key, entry);
    }

    /// Sets `sluice_http_cache_memory_bytes` and `_entries` to what the in-memory tier holds
    /// now ([`memory_usage`](Self::memory_usage)), and each route's
    /// `sluice_http_cache_hit_ratio` (answers from the cache, fresh or stale, over all counted
    /// lookups, the fast path's hits included). Called at each `/metrics` scrape, so evictions
    /// and invalidations show too.
    pub fn export_gauges(&self) {
        let (bytes, entries) = self.memory_usage();
        let mut by_route: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (labels, n) in self.metrics.counters_named("sluice_http_cache_lookups_total") {
            let (Some(route), Some(result)) = (label(&labels, "route"), label(&labels, "result")) else {
                continue;
            };
            let (served, total) = by_route.entry(route.to_string()).or_default();
            *total += n;
            if result == "hit" || result == "stale" {
                *served += n;
            }
        }
        for (route, (served, total)) in by_route.into_iter().filter(|(_, (_, total))| *total > 0) {
            self.metrics
                .gauge("sluice_http_cache_hit_ratio", &[("route", &route)])
                .set(served as f64 / total as f64);
        }
        self.metrics
            .gauge("sluice_http_cache_memory_bytes", &[])
            .set(bytes as f64);
        self.metrics
            .gauge("sluice_http_cache_memory_entries", &[])
            .set(entries as f64);
    }

    /// The bytes and entries the in-memory tier holds now, its pending housekeeping run
    /// first so the figures are exact (moka updates them only then).
    pub fn memory_usage(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.weighted_size(), self.entries.entry_count())
    }

    /// Stores `entry` under `base` for the variant `vary` selects from `request`: in memory
    /// now, in Redis in the background; the fill claim `fill` ends once it is stored
    /// everywhere.
    pub fn insert(
        self: &Arc<Self>,
        base: &str,
        vary: &[String],
        request: &[(String, Vec<u8>)],
        entry: StoredEntry,
        fill: Option<FillGuard>,
    ) -> Result<(), StoreError> {
        let size = entry.body.len() as u64;
        let limit = self.settings.max_object_bytes;
        if size > limit {
            return Err(StoreError::TooLarge { size, limit });
        }
        let mut names: Vec<String> = vary.iter().map(|n| n.to_ascii_lowercase()).collect();
        names.sort();
        names.dedup();
        let key = format!("{base}#{}", variant_of(&names, request));
        let entry = Arc::new(entry);
        self.metrics
            .counter("sluice_http_cache_stored_bytes_total", &[])
            .add(size);
        self.keep_in_memory(key.clone(), entry.clone());
        self.variants.insert(base.to_string(), Arc::from(names.clone()));
        if self.shared.is_none() {
            if let Some(fill) = fill {
                fill.finish(true);
            }
        } else {
            let cache = self.clone();
            let base = base.to_string();
            let generation = self.generation();
            tokio::spawn(async move {
                let Some(shared) = &cache.shared else { return };
                let put = shared.put(&base, &names, &key, &entry).await;
                if let Err(e) = &put {
                    cache.shared_failed("store", e);
                }
                // An invalidation that arrived while the put was on its way missed it.
                if put.is_ok()
                    && !cache.not_invalidated_since(generation, &entry.target, &entry.tags)
                    && let Err(e) = shared.delete(&key).await
                {
                    cache.shared_failed("invalidate", &e);
                }
                if let Some(fill) = fill {
                    fill.finish(put.is_ok());
                }
            });
        }
        Ok(())
    }

    /// Replaces the head and times of the response stored under `base` (for `request`'s
    /// variant) after a revalidation, keeping it `keep_ms` more; the updated entry.
    pub async fn refresh(
        self: &Arc<Self>,
        base: &str,
        request: &[(String, Vec<u8>)],
        headers: Fields,
        times: (u64, u64),
        keep_ms: u64,
    ) -> Option<Arc<StoredEntry>> {
        let old = self.lookup(base, request).await?;
        let entry = StoredEntry {
            headers,
            request_time_ms: times.0,
            response_time_ms: times.1,
            keep_until_ms: unix_ms().saturating_add(keep_ms),
            direct: None,
            built: Default::default(),
            ..StoredEntry::clone(&old)
        };
        let vary = self.variants.get(base).map(|v| v.to_vec()).unwrap_or_default();
        self.insert(base, &vary, request, entry, None).ok()?;
        self.lookup(base, request).await
    }

    /// Marks `key` as being refreshed in the background; None when a refresh of it runs
    /// already. The refresh ends when the guard drops.
    pub fn begin_refresh(self: &Arc<Self>, key: &str) -> Option<RefreshGuard> {
        if !self.refreshing.lock().insert(key.to_string()) {
            return None;
        }
        Some(RefreshGuard {
            cache: self.clone(),
            key: key.to_string(),
        })
    }

    /// The largest response stored, in bytes.
    pub fn max_object_bytes(&self) -> u64 {
        self.settings.max_object_bytes
    }

    /// Whether a Redis level is configured.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// How many responses are held in memory and their bytes.
    pub fn size(&self) -> (u64, u64) {
        self.entries.run_pending_tasks();
        (self.entries.entry_count(), self.entries.weighted_size())
    }
}

/// A background refresh in progress; dropping it ends it.
#[derive(Debug)]
pub struct RefreshGuard {
    cache: Arc<HttpCache>,
    key: String,
}

impl Drop for RefreshGuard {
    fn drop(&mut self) {
        self.cache.refreshing.lock().remove(&self.key);
    }
}

#[cfg(test)]
mod tests;
