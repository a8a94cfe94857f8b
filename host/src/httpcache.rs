//! The HTTP response cache behind the `http-cache` interface: the storage of a shared cache
//! whose RFC 9111 policy is the cache plugin's. Responses are kept in memory (moka, bounded
//! by bytes; its TinyLFU admission weighs an entry's size against the entries it would push
//! out, and responses over a share of the memory never enter it), keyed by the plugin's key
//! namespaced by route and plugin plus the variant the stored `Vary` names select. An index
//! by request target and by tag serves invalidation (`index.rs`); bodies are stored as they
//! stream to the client (`store_body.rs`).

mod index;
mod store_body;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use moka::notification::RemovalCause;
use moka::sync::Cache;
use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use crate::capability::unix_ms;
use crate::config::HttpCacheSettings;
use crate::telemetry::metrics::Registry;
use index::Index;

pub use store_body::{StoreBody, Storing};

/// Header fields as plugins see them.
pub type Fields = Vec<(String, Vec<u8>)>;

/// One stored response.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// The status.
    pub status: u16,
    /// The header fields, as stored.
    pub headers: Fields,
    /// The body.
    pub body: Bytes,
    /// When the request that produced it was sent upstream (ms since the epoch).
    pub request_time_ms: u64,
    /// When its head arrived (ms since the epoch).
    pub response_time_ms: u64,
    /// When the cache drops it (ms since the epoch).
    pub keep_until_ms: u64,
    /// Its invalidation tags.
    pub tags: Vec<String>,
    /// The request target (path and query) it answered.
    pub target: String,
}

impl StoredEntry {
    /// The bytes it takes in memory, roughly.
    fn weight(&self, key: &str) -> u64 {
        let fields: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 16).sum();
        let tags: usize = self.tags.iter().map(|t| t.len() + 8).sum();
        (key.len() + self.target.len() + self.body.len() + fields + tags + 128) as u64
    }
}

struct UntilKeepUntil;

impl Expiry<String, Arc<StoredEntry>> for UntilKeepUntil {
    fn expire_after_create(&self, _k: &String, v: &Arc<StoredEntry>, _at: Instant) -> Option<Duration> {
        Some(Duration::from_millis(v.keep_until_ms.saturating_sub(unix_ms())))
    }

    fn expire_after_update(
        &self,
        k: &String,
        v: &Arc<StoredEntry>,
        at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, v, at)
    }
}

/// Why a response was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// It is larger than `[http_cache] max_object_bytes`.
    #[error("the response has {size} bytes, over the cache's {limit}-byte limit per object")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// The gateway's HTTP response cache.
pub struct HttpCache {
    entries: Cache<String, Arc<StoredEntry>>,
    /// The `Vary` names last stored under each base key.
    variants: Cache<String, Arc<[String]>>,
    index: Arc<Mutex<Index>>,
    /// Keys whose background refresh (stale-while-revalidate) is running.
    refreshing: Mutex<std::collections::HashSet<String>>,
    settings: HttpCacheSettings,
    metrics: Arc<Registry>,
}

impl std::fmt::Debug for HttpCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpCache")
            .field("entries", &self.entries.entry_count())
            .field("bytes", &self.entries.weighted_size())
            .finish()
    }
}

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
    /// An empty cache sized by `settings`, counting into `metrics`.
    pub fn new(settings: &HttpCacheSettings, metrics: Arc<Registry>) -> Arc<Self> {
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
            .build();
        let variants = Cache::builder()
            .max_capacity(1 << 20)
            .time_to_idle(Duration::from_secs(24 * 3600))
            .build();
        Arc::new(HttpCache {
            entries,
            variants,
            index,
            refreshing: Mutex::default(),
            settings: settings.clone(),
            metrics,
        })
    }

    /// The key a response to `request` is stored under, below the base key `base`.
    fn full_key(&self, base: &str, request: &[(String, Vec<u8>)]) -> String {
        let vary = self.variants.get(base);
        let variant = vary.map_or_else(String::new, |v| variant_of(&v, request));
        format!("{base}#{variant}")
    }

    /// The live response stored under `base` for a request with `request` header fields.
    pub fn lookup(&self, base: &str, request: &[(String, Vec<u8>)]) -> Option<Arc<StoredEntry>> {
        let key = self.full_key(base, request);
        self.entries.get(&key).filter(|e| e.keep_until_ms > unix_ms())
    }

    /// Stores `entry` under `base` for the variant `vary` selects from `request`.
    pub fn insert(
        &self,
        base: &str,
        vary: &[String],
        request: &[(String, Vec<u8>)],
        entry: StoredEntry,
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
        self.variants.insert(base.to_string(), Arc::from(names));
        if size > self.settings.memory_object_limit() {
            // Too large for memory; the shared level (when there is one) keeps it.
            return Ok(());
        }
        self.index.lock().add(&key, &entry.target, &entry.tags);
        self.metrics
            .counter("sluice_http_cache_stored_bytes_total", &[])
            .add(size);
        self.entries.insert(key, Arc::new(entry));
        self.metrics
            .gauge("sluice_http_cache_memory_bytes", &[])
            .set(self.entries.weighted_size() as f64);
        Ok(())
    }

    /// Replaces the head and times of the response stored under `base` (for `request`'s
    /// variant) after a revalidation, keeping it `keep_ms` more; the updated entry.
    pub fn refresh(
        &self,
        base: &str,
        request: &[(String, Vec<u8>)],
        headers: Fields,
        times: (u64, u64),
        keep_ms: u64,
    ) -> Option<Arc<StoredEntry>> {
        let key = self.full_key(base, request);
        let old = self.entries.get(&key)?;
        let entry = Arc::new(StoredEntry {
            headers,
            request_time_ms: times.0,
            response_time_ms: times.1,
            keep_until_ms: unix_ms().saturating_add(keep_ms),
            ..StoredEntry::clone(&old)
        });
        self.index.lock().add(&key, &entry.target, &entry.tags);
        self.entries.insert(key, entry.clone());
        Some(entry)
    }

    /// Drops the responses stored for the request target `target`; how many.
    pub fn invalidate_target(&self, target: &str) -> u64 {
        let keys = self.index.lock().by_target(target);
        self.drop_keys(keys)
    }

    /// Drops the responses whose request target starts with `prefix`; how many.
    pub fn invalidate_prefix(&self, prefix: &str) -> u64 {
        let keys = self.index.lock().by_prefix(prefix);
        self.drop_keys(keys)
    }

    /// Drops the responses stored with `tag`; how many.
    pub fn invalidate_tag(&self, tag: &str) -> u64 {
        let keys = self.index.lock().by_tag(tag);
        self.drop_keys(keys)
    }

    /// Drops everything (a shared level's invalidations may have been missed).
    pub fn clear(&self) {
        self.entries.invalidate_all();
    }

    fn drop_keys(&self, keys: Vec<String>) -> u64 {
        let mut dropped = 0;
        for key in keys {
            if self.entries.remove(&key).is_some() {
                dropped += 1;
            }
        }
        self.entries.run_pending_tasks();
        dropped
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
