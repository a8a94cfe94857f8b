//! Direct hits: fresh stored responses the host answers without calling the caching plugin.
//! A plugin stores a response with `direct` when its key is the URL alone (no identity, no
//! other headers); the host then indexes it by route, plugin, authority and path-and-query, and
//! answers simple requests for it from memory while it is fresh, with `Age` and
//! `Cache-Status`. Anything the plugin would judge differently (request directives, validators,
//! ranges, credentials) goes to the plugin as usual.

use std::sync::Arc;

use super::{HttpCache, StoredEntry};
use crate::capability::unix_ms;
use crate::runtime::bindings::RequestHead;
use crate::runtime::bindings::sluice::plugin::http_cache::ServeAs;
use crate::runtime::state::CacheServe;

/// Request fields that send a request to the plugin instead.
const PLUGIN_JUDGES: [&str; 10] = [
    "cache-control",
    "pragma",
    "authorization",
    "x-api-key",
    "range",
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
];

/// The direct-hit promise kept with a stored response.
#[derive(Debug, Clone)]
pub struct Direct {
    /// Until when it is fresh (ms since the epoch).
    pub until_ms: u64,
    /// Its age when it was stored, in seconds.
    pub age_s: u64,
    /// When it was stored (ms since the epoch).
    pub stored_ms: u64,
    /// Its key in the direct index ([`direct_key`]).
    pub index_key: String,
}

/// The direct index key of a request: route, plugin, authority and path-and-query, each
/// length-prefixed.
pub fn direct_key(route: &str, plugin: &str, authority: &str, path: &str) -> String {
    format!(
        "{}:{route}{}:{plugin}{}:{authority}{path}",
        route.len(),
        plugin.len(),
        authority.len()
    )
}

impl HttpCache {
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
        let key = direct_key(route, plugin, &head.authority, &head.path);
        let base = self.direct.get(&key)?;
        let entry = self.lookup_memory(&base, &head.headers)?;
        let direct = entry.direct.as_ref()?;
        let now = unix_ms();
        if direct.until_ms <= now || direct.index_key != key {
            return None;
        }
        let age_s = direct.age_s + now.saturating_sub(direct.stored_ms) / 1000;
        let ttl_s = (direct.until_ms - now) / 1000;
        self.metrics
            .counter(
                "sluice_http_cache_lookups_total",
                &[("route", route), ("result", "hit")],
            )
            .add(1);
        let edits = crate::runtime::bindings::HeaderEdits {
            set: vec![
                ("age".into(), age_s.to_string().into_bytes()),
                ("cache-status".into(), format!("sluice; hit; ttl={ttl_s}").into_bytes()),
            ],
            append: Vec::new(),
            remove: Vec::new(),
            context: Vec::new(),
        };
        Some(CacheServe {
            entry,
            how: ServeAs::Fresh,
            edits,
            base: base.to_string(),
        })
    }

    /// Indexes `entry` (stored under `base`) for direct hits when it carries the promise.
    pub(super) fn index_direct(&self, base: &str, entry: &Arc<StoredEntry>) {
        if let Some(direct) = &entry.direct {
            self.direct.insert(direct.index_key.clone(), Arc::from(base));
        }
    }
}
