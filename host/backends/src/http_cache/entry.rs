//! What the HTTP cache stores: a response with its times, tags and target, and the direct-hit
//! promise kept with it.

use std::sync::Arc;

use bytes::Bytes;
use sluice_bindings::HeaderEdits;
use sluice_bindings::sluice::plugin::http_cache::ServeAs;

/// A request answered from the cache.
#[derive(Debug)]
pub struct CacheServe {
    /// The stored response.
    pub entry: Arc<StoredEntry>,
    /// How it answers.
    pub how: ServeAs,
    /// Edits to its head.
    pub edits: HeaderEdits,
    /// The base key it was found under (for a background refresh).
    pub base: String,
}

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
    /// Whether (and until when) the host may answer from it without the plugin.
    pub direct: Option<Direct>,
    /// `headers` as a header map, built the first time a response is sent from it directly.
    pub built: std::sync::OnceLock<http::HeaderMap>,
}

impl StoredEntry {
    /// The stored header fields as a header map (without `Content-Length`; built once).
    pub fn header_map(&self) -> &http::HeaderMap {
        self.built.get_or_init(|| {
            let mut map = sluice_core::headers::from_plugin(self.headers.clone());
            map.remove(http::header::CONTENT_LENGTH);
            map
        })
    }

    /// The bytes it takes in memory, roughly.
    pub(super) fn weight(&self, key: &str) -> u64 {
        let fields: usize = self.headers.iter().map(|(n, v)| n.len() + v.len() + 16).sum();
        let tags: usize = self.tags.iter().map(|t| t.len() + 8).sum();
        (key.len() + self.target.len() + self.body.len() + fields + tags + 128) as u64
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

/// The direct-hit promise kept with a stored response.
#[derive(Debug, Clone)]
pub struct Direct {
    /// Until when it is fresh (ms since the epoch).
    pub until_ms: u64,
    /// Its age when it was stored, in seconds.
    pub age_s: u64,
    /// When it was stored (ms since the epoch).
    pub stored_ms: u64,
    /// The route, plugin, authority and path-and-query it answers.
    pub parts: (String, String, String, String),
}
