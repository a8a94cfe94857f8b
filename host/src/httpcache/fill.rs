//! Stampede protection: one fill per key. The first request to miss claims the key (a short
//! Redis lock, `SET NX PX`, shared by every instance; in memory without Redis, or while Redis
//! fails); the others wait for the stored response, polling the cache, and go upstream on
//! their own when the wait runs out. The claim is a guard the request keeps: it ends when the
//! response was stored, or when the request ended without storing anything; then, for the rest
//! of the hold time, the key is marked "not stored" and requests for it go upstream at once
//! instead of queueing behind each other for an answer that will not be cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{HttpCache, StoredEntry};
use crate::capability::unix_ms;

/// How often a waiting request looks for the stored response.
const POLL: Duration = Duration::from_millis(10);

/// Local claims kept before expired ones are pruned.
const PRUNE_AT: usize = 10_000;

/// A claim in this instance's table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Claim {
    /// Until when it holds (ms since the epoch).
    until: u64,
    /// Held by a request filling the key (else: the last fill stored nothing).
    held: bool,
}

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

/// What trying to take a claim found.
enum Tried {
    Got,
    Held,
    NotStored,
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
        loop {
            match self.try_claim(base, hold_ms).await {
                Tried::Got => {
                    return Fill::Lead(FillGuard {
                        cache: self.clone(),
                        base: base.to_string(),
                        hold_ms,
                        ended: false,
                    });
                }
                Tried::NotStored => return Fill::GaveUp,
                Tried::Held => {}
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

    async fn try_claim(&self, base: &str, hold_ms: u64) -> Tried {
        if let Some(shared) = &self.shared {
            match shared.claim_fill(base, hold_ms).await {
                Ok(None) => return Tried::Got,
                Ok(Some(held)) => return if held { Tried::Held } else { Tried::NotStored },
                Err(e) => self.shared_failed("claim", &e),
            }
        }
        let now = unix_ms();
        let mut claims = self.claims.lock();
        if claims.len() > PRUNE_AT {
            claims.retain(|_, c| c.until > now);
        }
        match claims.get(base) {
            Some(c) if c.until > now && c.held => Tried::Held,
            Some(c) if c.until > now => Tried::NotStored,
            _ => {
                let claim = Claim {
                    until: now.saturating_add(hold_ms),
                    held: true,
                };
                claims.insert(base.to_string(), claim);
                Tried::Got
            }
        }
    }

    /// Ends the claim on `base`: gone when the response was stored, else marked "not
    /// stored" for `hold_ms`.
    fn release_claim(&self, base: &str, hold_ms: u64, stored: bool) {
        {
            let mut claims = self.claims.lock();
            if stored {
                claims.remove(base);
            } else {
                let until = unix_ms().saturating_add(hold_ms);
                claims.insert(base.to_string(), Claim { until, held: false });
            }
        }
        let (Some(shared), Ok(runtime)) = (&self.shared, tokio::runtime::Handle::try_current()) else {
            return;
        };
        let (redis, base) = (shared.clone_handle(), base.to_string());
        runtime.spawn(async move {
            if let Err(e) = redis.release_fill(&base, hold_ms, stored).await {
                tracing::warn!(error = %e, "http cache: could not end a fill claim in redis");
            }
        });
    }
}
