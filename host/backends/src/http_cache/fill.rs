//! Stampede protection: one fill per key. The first request to miss claims the key (a short
//! Redis lock, `SET NX PX`, shared by every instance; in memory without Redis, or while Redis
//! fails); the others wait for the stored response, polling the cache, and go upstream on
//! their own when the wait runs out. The claim is a guard the request keeps: it ends when the
//! response was stored, or when the request ended without storing anything; then, for the rest
//! of the hold time, the key is marked "not stored" and requests for it go upstream at once
//! instead of queueing behind each other for an answer that will not be cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::entry::StoredEntry;
use super::state::{Claim, HttpCache, Mark};
use sluice_core::time::unix_ms;

/// How often a waiting request looks for the stored response.
const POLL: Duration = Duration::from_millis(10);

/// Local claims kept before expired ones are pruned.
const PRUNE_AT: usize = 10_000;

/// How long a key stays marked "stored" after its fill ended, at most: a request that missed
/// just before the answer was stored finds it instead of fetching again.
const STORED_MARK_MS: u64 = 2_000;

/// What claiming a fill gave.
#[derive(Debug)]
pub enum Fill {
    /// This request fills the key; the claim ends when the guard is dropped or finished.
    Lead(FillGuard),
    /// Another request stored it meanwhile.
    Stored(Arc<StoredEntry>),
    /// Nothing was stored within the wait, or the last fill stored nothing.
    GaveUp,
}

/// A fill claim held by a request.
#[derive(Debug)]
pub struct FillGuard {
    cache: Arc<HttpCache>,
    base: String,
    hold_ms: u64,
    ended: bool,
}

impl FillGuard {
    /// Ends the claim: `stored` says whether the response was stored.
    pub fn finish(mut self, stored: bool) {
        self.ended = true;
        self.cache.release_claim(&self.base, self.hold_ms, stored);
    }
}

impl Drop for FillGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.cache.release_claim(&self.base, self.hold_ms, false);
        }
    }
}

impl HttpCache {
    /// Claims the fill of `base` for `hold_ms`, or waits up to `wait_ms` for whoever holds
    /// it to store the response for `request`.
    pub async fn claim_fill(
        self: &Arc<Self>,
        base: &str,
        request: &[(String, Vec<u8>)],
        hold_ms: u64,
        wait_ms: u64,
    ) -> Fill {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        let lead = || {
            Fill::Lead(FillGuard {
                cache: self.clone(),
                base: base.to_string(),
                hold_ms,
                ended: false,
            })
        };
        loop {
            match self.try_claim(base, hold_ms).await {
                None => return lead(),
                Some(Mark::NotStored) => return Fill::GaveUp,
                Some(Mark::Stored) => {
                    // Stored since this request looked: it is there, unless it went since.
                    if let Some(entry) = self.lookup(base, request).await {
                        return Fill::Stored(entry);
                    }
                    self.force_claim(base, hold_ms).await;
                    return lead();
                }
                Some(Mark::Held) => {}
            }
            if Instant::now() >= deadline {
                return Fill::GaveUp;
            }
            tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
            if let Some(entry) = self.lookup(base, request).await {
                return Fill::Stored(entry);
            }
        }
    }

    /// Takes the claim on `base` when there is none; else the mark in place.
    async fn try_claim(&self, base: &str, hold_ms: u64) -> Option<Mark> {
        if let Some(shared) = &self.shared {
            match Box::pin(shared.claim_fill(base, hold_ms)).await {
                Ok(mark) => return mark.map(|m| Mark::from_redis(&m)),
                Err(e) => self.shared_failed("claim", &e),
            }
        }
        let now = unix_ms();
        let mut claims = self.claims.lock();
        if claims.len() > PRUNE_AT {
            claims.retain(|_, c| c.until > now);
        }
        match claims.get(base) {
            Some(c) if c.until > now => Some(c.mark),
            _ => {
                self.set_local(&mut claims, base, Mark::Held, hold_ms);
                None
            }
        }
    }

    fn set_local(&self, claims: &mut std::collections::HashMap<String, Claim>, base: &str, mark: Mark, ms: u64) {
        let until = unix_ms().saturating_add(ms);
        claims.insert(base.to_string(), Claim { until, mark });
    }

    /// Takes the claim on `base` whatever mark is in place.
    async fn force_claim(&self, base: &str, hold_ms: u64) {
        if let Some(shared) = &self.shared
            && let Err(e) = shared.force_claim(base, hold_ms).await
        {
            self.shared_failed("claim", &e);
        }
        self.set_local(&mut self.claims.lock(), base, Mark::Held, hold_ms);
    }

    /// Ends the claim on `base`, marking the key stored (briefly) or not stored (for
    /// `hold_ms`).
    fn release_claim(&self, base: &str, hold_ms: u64, stored: bool) {
        let (mark, ms) = if stored {
            (Mark::Stored, hold_ms.min(STORED_MARK_MS))
        } else {
            (Mark::NotStored, hold_ms)
        };
        self.set_local(&mut self.claims.lock(), base, mark, ms);
        let (Some(shared), Ok(runtime)) = (&self.shared, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (redis, base) = (shared.clone_handle(), base.to_string());
        runtime.spawn(async move {
            if let Err(e) = redis.release_fill(&base, ms, mark.redis()).await {
                tracing::warn!(error = %e, "http cache: could not end a fill claim in redis");
            }
        });
    }
}
