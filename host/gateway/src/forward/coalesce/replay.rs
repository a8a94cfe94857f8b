//! Short replay: a successful shared response kept in the gateway's response cache for the
//! plugin's `replay-ttl-ms`, so that an identical request soon after is answered without
//! going upstream. In memory (the `cache` capability's moka cache), and in Redis too when the
//! gateway has `[redis] shared_cache`, so that every instance replays what any one fetched.

use std::sync::Arc;

use bytes::Bytes;
use hyper::header::{AGE, CACHE_CONTROL, HeaderValue, SET_COOKIE, VARY};
use hyper::{Response, Version};

use super::state::SharedHead;
use sluice_backends::cache::ResponseCache;
use sluice_backends::cache_shared::SharedCache;
use sluice_bindings::sluice::plugin::cache::CachedResponse;
use sluice_core::body::{ProxyBody, full};
use sluice_core::headers;

/// Where replayed responses live.
#[derive(Debug)]
pub struct Replay {
    memory: Arc<ResponseCache>,
    shared: Option<Arc<SharedCache>>,
}

/// Whether a response may be replayed to other requests: a 2xx whose `Cache-Control` does
/// not say `no-store`, `private` or `no-cache`, that sets no cookie and does not vary on
/// everything.
pub fn replayable(head: &SharedHead) -> bool {
    if !head.status.is_success() || head.headers.contains_key(SET_COOKIE) {
        return false;
    }
    let forbidden = head
        .headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().split('=').next().unwrap_or_default().to_ascii_lowercase())
        .any(|d| matches!(d.as_str(), "no-store" | "private" | "no-cache"));
    let varies_on_all = head
        .headers
        .get_all(VARY)
        .iter()
        .any(|v| v.to_str().is_ok_and(|v| v.split(',').any(|n| n.trim() == "*")));
    !forbidden && !varies_on_all
}

impl Replay {
    /// Replay over the gateway's response cache, and its Redis level when there is one.
    pub fn new(memory: Arc<ResponseCache>, shared: Option<Arc<SharedCache>>) -> Self {
        Replay { memory, shared }
    }

    /// The response kept under `key`, with an `Age` header, if there is a fresh one. A Redis
    /// that cannot be reached counts as a miss.
    pub async fn lookup(&self, key: &str) -> Option<Response<ProxyBody>> {
        let entry = match &self.shared {
            Some(shared) => match shared.lookup(key).await {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::debug!(?error, "replay lookup in Redis failed; going upstream");
                    self.memory.lookup(key).map(|r| (*r).clone())
                }
            },
            None => self.memory.lookup(key).map(|r| (*r).clone()),
        }?;
        let mut resp = Response::new(full(entry.body));
        *resp.status_mut() = hyper::StatusCode::from_u16(entry.status).ok()?;
        *resp.headers_mut() = headers::from_plugin(entry.headers);
        *resp.version_mut() = Version::HTTP_11;
        let age = sluice_core::time::unix_ms().saturating_sub(entry.stored_at_ms) / 1000;
        resp.headers_mut().insert(AGE, HeaderValue::from(age));
        Some(resp)
    }

    /// Keeps a complete response in memory for `ttl_ms` when it is replayable and within the
    /// cache's entry limit; returns the entry to [`Replay::share`] afterwards.
    pub fn keep_in_memory(
        &self,
        key: &str,
        head: &SharedHead,
        chunks: &[Bytes],
        ttl_ms: u64,
    ) -> Option<CachedResponse> {
        if ttl_ms == 0 || !replayable(head) {
            return None;
        }
        let size: usize = chunks.iter().map(Bytes::len).sum();
        if size > sluice_backends::cache::MAX_ENTRY {
            return None;
        }
        let mut body = Vec::with_capacity(size);
        for chunk in chunks {
            body.extend_from_slice(chunk);
        }
        let mut stored_headers = head.headers.clone();
        stored_headers.remove(AGE);
        let now = sluice_core::time::unix_ms();
        let entry = CachedResponse {
            status: head.status.as_u16(),
            headers: headers::to_plugin(&stored_headers),
            body,
            stored_at_ms: now,
            expires_at_ms: now.saturating_add(ttl_ms),
            tags: Vec::new(),
        };
        match self.memory.insert(key.to_string(), entry.clone()) {
            Ok(()) => Some(entry),
            Err(why) => {
                tracing::debug!(%why, "response not kept for replay");
                None
            }
        }
    }

    /// Stores `entry` in Redis too, when the cache is shared. A Redis that cannot be reached
    /// leaves the entry in this instance's memory only.
    pub async fn share(&self, key: &str, entry: CachedResponse) {
        if let Some(shared) = &self.shared
            && let Err(error) = shared.insert(key.to_string(), entry).await
        {
            tracing::debug!(?error, "replay entry kept in memory only");
        }
    }
}
