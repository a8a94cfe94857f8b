//! Direct hits: fresh stored responses the host answers without calling the caching plugin.
//! A plugin stores a response with `direct` when its key is the URL alone (no identity, no
//! other headers); the host then indexes it by route, plugin, authority and path-and-query, and
//! answers simple requests for it from memory while it is fresh, with `Age` and
//! `Cache-Status` (a `Range` cut from them as the plugin's own serve would be). Anything the
//! plugin would judge differently (request directives, validators, credentials) goes to the
//! plugin as usual.

use std::sync::Arc;

use super::entry::{CacheServe, StoredEntry};
use super::state::{HttpCache, Slot};
use sluice_bindings::RequestHead;
use sluice_bindings::sluice::plugin::http_cache::ServeAs;
use sluice_core::time::unix_ms;

/// Request fields that send a request to the plugin instead. `Range` and `If-Range` are not
/// among them: the host cuts ranges from stored responses itself (`sluice_core::range`).
/// `Upgrade` is: a protocol switch is never answered from the cache (the `http-cache` calls
/// find nothing for it).
const PLUGIN_JUDGES: [&str; 9] = [
    "upgrade",
    "cache-control",
    "pragma",
    "authorization",
    "x-api-key",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
];

impl HttpCache {
    /// The hash the direct index is keyed by (no allocation per request); the slot keeps the
    /// parts to check a hit against.
    fn slot_hash(&self, route: &str, plugin: &str, authority: &str, path: &str) -> u64 {
        use std::hash::BuildHasher;
        self.slot_hasher.hash_one((route, plugin, authority, path))
    }

    /// The fresh stored response `plugin` on `route` vouched for answering `head`, served as
    /// that plugin would serve it; None when the plugin must judge.
    pub fn direct_serve(&self, route: &str, plugin: &str, head: &RequestHead) -> Option<CacheServe> {
        if !matches!(head.method.as_str(), "GET" | "HEAD") {
            return None;
        }
        if head
            .headers
            .iter()
            .any(|(n, _)| PLUGIN_JUDGES.iter().any(|j| n.eq_ignore_ascii_case(j)))
        {
            return None;
        }
        self.direct_hit(route, plugin, &head.authority, &head.path, |base| {
            self.lookup_memory(base, &head.headers)
        })
    }

    /// [`direct_serve`](Self::direct_serve) for a request as hyper has it, before any request
    /// head is built for plugins: `path` with its query. Responses stored with `Vary` are not
    /// found this way (their variant is picked from the plugins' header list).
    pub fn direct_serve_request(
        &self,
        route: &str,
        plugin: &str,
        method: &str,
        authority: &str,
        path: &str,
        headers: &http::HeaderMap,
    ) -> Option<CacheServe> {
        // The request's few names against the list (looking each listed name up in the map
        // parses and hashes it: eight lookups cost more than the rest of the hit).
        if !matches!(method, "GET" | "HEAD") || headers.keys().any(|k| PLUGIN_JUDGES.contains(&k.as_str())) {
            return None;
        }
        self.direct_hit(route, plugin, authority, path, |_| None)
    }

    /// The direct hit for `authority` + `path` on `route`, if the slot is fresh; `by_vary`
    /// picks the variant of a response stored with `Vary` from its base key.
    fn direct_hit(
        &self,
        route: &str,
        plugin: &str,
        authority: &str,
        path: &str,
        by_vary: impl FnOnce(&str) -> Option<Arc<StoredEntry>>,
    ) -> Option<CacheServe> {
        let slot = self.direct.get(&self.slot_hash(route, plugin, authority, path))?;
        if !slot.matches(route, plugin, authority, path) {
            return None;
        }
        let entry = match &slot.key {
            Some(key) => self.entries.get(key.as_str())?,
            None => by_vary(&slot.base)?,
        };
        let direct = entry.direct.as_ref()?;
        let now = unix_ms();
        if direct.until_ms <= now || entry.keep_until_ms <= now {
            return None;
        }
        let age_s = direct.age_s + now.saturating_sub(direct.stored_ms) / 1000;
        let ttl_s = (direct.until_ms - now) / 1000;
        let mut status = Vec::with_capacity(40);
        status.extend_from_slice(b"sluice; hit; ttl=");
        status.extend_from_slice(itoa::Buffer::new().format(ttl_s).as_bytes());
        self.hit_counter(route).add(1);
        let edits = sluice_bindings::HeaderEdits {
            set: vec![
                ("age".into(), itoa::Buffer::new().format(age_s).as_bytes().to_vec()),
                ("cache-status".into(), status),
            ],
            append: Vec::new(),
            remove: Vec::new(),
            context: Vec::new(),
        };
        Some(CacheServe {
            entry,
            how: ServeAs::Fresh,
            edits,
            base: slot.base.to_string(),
        })
    }

    /// The `hit` counter of `route`'s lookups (kept, not looked up by labels per hit).
    fn hit_counter(&self, route: &str) -> Arc<sluice_core::telemetry::metrics::Counter> {
        if let Some(counter) = self.hit_counters.read().get(route) {
            return counter.clone();
        }
        let counter = self.metrics.counter(
            "sluice_http_cache_lookups_total",
            &[("route", route), ("result", "hit")],
        );
        self.hit_counters.write().insert(route.to_string(), counter.clone());
        counter
    }

    /// Indexes `entry` (stored under `key`, a variant of `base`) for direct hits when it
    /// carries the promise.
    pub(super) fn index_direct(&self, base: &str, key: &str, vary: bool, entry: &Arc<StoredEntry>) {
        let Some(direct) = &entry.direct else { return };
        let parts = &direct.parts;
        let slot = Slot {
            route: parts.0.clone(),
            plugin: parts.1.clone(),
            authority: parts.2.clone(),
            path: parts.3.clone(),
            base: Arc::from(base),
            key: (!vary).then(|| key.to_string()),
        };
        let hash = self.slot_hash(&slot.route, &slot.plugin, &slot.authority, &slot.path);
        self.direct.insert(hash, Arc::new(slot));
    }
}
