//! The store behind the `cache` interface: responses plugins build and read back by key, in
//! memory (moka), bounded by bytes, with invalidation by key, prefix and tag; with `[redis]`,
//! the first level in front of Redis (`cache_shared.rs`). Request coalescing keeps its short
//! replays here under [`RESERVED_PREFIX`]. (The HTTP cache's storage is `http_cache`: see
//! docs/architecture.md, "Two response stores, on purpose".)

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use sluice_bindings::sluice::plugin::cache::CachedResponse;
use sluice_core::time::unix_ms;

/// The largest response the cache stores, in bytes (body and headers).
pub const MAX_ENTRY: usize = 8 << 20;

/// Keys the host itself stores under (request coalescing's replay entries); a plugin may read
/// and invalidate them but not write them, so it cannot plant a response for other callers.
pub const RESERVED_PREFIX: &str = "dedup:";

struct UntilExpiresAt;

impl Expiry<String, Arc<CachedResponse>> for UntilExpiresAt {
    fn expire_after_create(&self, _k: &String, v: &Arc<CachedResponse>, _at: Instant) -> Option<Duration> {
        Some(Duration::from_millis(v.expires_at_ms.saturating_sub(unix_ms())))
    }

    fn expire_after_update(
        &self,
        k: &String,
        v: &Arc<CachedResponse>,
        at: Instant,
        _remaining: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, v, at)
    }
}

/// The in-memory store behind the `cache` interface and coalescing's replays.
pub struct ResponseCache {
    entries: Cache<String, Arc<CachedResponse>>,
}

impl std::fmt::Debug for ResponseCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

fn weight(key: &str, r: &CachedResponse) -> usize {
    key.len() + r.body.len() + r.headers.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() + 64
}

impl ResponseCache {
    /// A cache holding at most `max_bytes`.
    pub fn new(max_bytes: u64) -> Self {
        let entries = Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Arc<CachedResponse>| weight(k, v).min(u32::MAX as usize) as u32)
            .expire_after(UntilExpiresAt)
            .build();
        ResponseCache { entries }
    }

    /// The fresh response under `key`.
    pub fn lookup(&self, key: &str) -> Option<Arc<CachedResponse>> {
        self.entries.get(key).filter(|r| r.expires_at_ms > unix_ms())
    }

    /// Stores `response` under `key`; fails when it is larger than [`MAX_ENTRY`].
    pub fn insert(&self, key: String, response: CachedResponse) -> Result<(), String> {
        let size = weight(&key, &response);
        if size > MAX_ENTRY {
            return Err(format!("a response of {size} bytes is over the {MAX_ENTRY}-byte limit"));
        }
        self.entries.insert(key, Arc::new(response));
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn invalidate(&self, key: &str) -> bool {
        self.entries.remove(key).is_some()
    }

    /// Removes every entry matching `pred`; how many.
    pub fn invalidate_where(&self, pred: impl Fn(&str, &CachedResponse) -> bool) -> u64 {
        let doomed: Vec<Arc<String>> = self
            .entries
            .iter()
            .filter(|(k, v)| pred(k, v))
            .map(|(k, _)| k)
            .collect();
        doomed
            .iter()
            .filter(|k| self.entries.remove(k.as_str()).is_some())
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(body: &str, ttl_ms: u64, tags: &[&str]) -> CachedResponse {
        let now = unix_ms();
        CachedResponse {
            status: 200,
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: body.as_bytes().to_vec(),
            stored_at_ms: now,
            expires_at_ms: now + ttl_ms,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn invalidation_by_key_prefix_and_tag() {
        let c = ResponseCache::new(1 << 20);
        c.insert("/a/1".into(), response("1", 60_000, &["x"])).unwrap();
        c.insert("/a/2".into(), response("2", 60_000, &["y"])).unwrap();
        c.insert("/b/1".into(), response("3", 60_000, &["x"])).unwrap();
        assert_eq!(c.invalidate_where(|_, r| r.tags.iter().any(|t| t == "x")), 2);
        assert!(c.lookup("/a/2").is_some());
        assert_eq!(c.invalidate_where(|k, _| k.starts_with("/a/")), 1);
        assert!(!c.invalidate("/a/2"));
    }

    #[test]
    fn expired_entries_are_not_served_and_oversized_ones_are_refused() {
        let c = ResponseCache::new(1 << 20);
        c.insert("/old".into(), response("x", 0, &[])).unwrap();
        assert!(c.lookup("/old").is_none());
        assert!(
            c.insert("/big".into(), response(&"x".repeat(MAX_ENTRY), 1000, &[]))
                .is_err()
        );
    }
}
