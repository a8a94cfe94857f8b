//! Storing a response as its body streams to the client: a body wrapper that keeps a copy of
//! every frame (up to the cache's per-object limit) and stores the whole response when the
//! body ended cleanly. A body that fails, outgrows the limit, or is dropped before its end
//! (the client went away) is not stored.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use hyper::body::Body;

use super::entry::{Fields, StoredEntry};
use super::fill::FillGuard;
use super::state::HttpCache;
use sluice_core::body::{BoxError, End, Observer, ProxyBody, Tap};

/// A response to store once its body has streamed.
#[derive(Debug)]
pub struct Storing {
    /// The cache to store into.
    pub cache: Arc<HttpCache>,
    /// The base key (route- and plugin-scoped).
    pub base: String,
    /// The request header names that select the variant.
    pub vary: Vec<String>,
    /// The request's header fields (for the variant).
    pub request: Fields,
    /// The entry, its body still empty.
    pub entry: StoredEntry,
    /// The fill claim the request holds, ended when the response was stored (or not).
    pub fill: Option<FillGuard>,
    /// The cache's generation when the request went upstream: an invalidation of this target
    /// since then means the response may predate it, and it is not stored.
    pub generation: u64,
}

impl Storing {
    /// Stores the entry with `body`; a refusal is logged.
    fn store(mut self, body: Bytes) {
        self.entry.body = body;
        let target = self.entry.target.clone();
        if !self.cache.untouched_since(self.generation, &target, &self.entry.tags) {
            tracing::info!(%target, "http cache: not stored: invalidated while it was fetched");
            return;
        }
        if let Err(e) = self
            .cache
            .insert(&self.base, &self.vary, &self.request, self.entry, self.fill)
        {
            tracing::info!(%target, "http cache: not stored: {e}");
        }
    }
}

/// A body that is stored in the cache as it streams.
pub type StoreBody = Tap<Store>;

/// Wraps `inner` so that `storing` runs when it ends cleanly within `limit` bytes.
pub fn store_body(inner: ProxyBody, storing: Storing, limit: u64) -> StoreBody {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let expected = inner.size_hint().exact().and_then(|n| usize::try_from(n).ok());
    let store = Store {
        copy: BytesMut::with_capacity(expected.unwrap_or(0).min(limit)),
        limit,
        expected,
        storing: Some(storing),
    };
    Tap::new(inner, store)
}

/// The observer of a [`StoreBody`]: keeps a copy of the body and stores it at a clean end.
pub struct Store {
    copy: BytesMut,
    limit: usize,
    /// The body's length when it was declared: the body is whole once that much arrived,
    /// even when the server never polls it to its end (it knows the length too).
    expected: Option<usize>,
    storing: Option<Storing>,
}

impl Store {
    fn abandon(&mut self, why: &str) {
        if let Some(storing) = self.storing.take() {
            tracing::debug!(target = %storing.entry.target, "http cache: not stored: {why}");
        }
        self.copy = BytesMut::new();
    }
}

impl Observer for Store {
    fn data(&mut self, chunk: &Bytes) -> bool {
        if self.storing.is_some() {
            if self.copy.len() + chunk.len() > self.limit {
                let limit = self.limit;
                self.abandon(&format!("the body grew past the {limit}-byte limit per object"));
            } else {
                self.copy.extend_from_slice(chunk);
            }
        }
        self.expected == Some(self.copy.len())
    }

    fn end(&mut self, end: End, _: Option<&BoxError>) {
        match end {
            End::Complete => {
                if let Some(storing) = self.storing.take() {
                    storing.store(std::mem::take(&mut self.copy).freeze());
                }
            }
            End::Failed => self.abandon("the body failed"),
            End::Dropped => self.abandon("the client went away before the body ended"),
        }
    }
}
