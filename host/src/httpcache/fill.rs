//! Stampede protection: one fill per key. The first request to miss claims the key (a short
//! Redis lock, `SET NX PX`, shared by every instance; in memory without Redis, or while Redis
//! fails); the others wait for the stored response, polling the cache, and go upstream on
//! their own when the wait runs out. A claim ends when the response is stored or when its
//! hold time passes (a response that was not stored never blocks anyone longer than that).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{HttpCache, StoredEntry};
use crate::capability::unix_ms;

/// How often a waiting request looks for the stored response.
const POLL: Duration = Duration::from_millis(10);

/// Local claims kept before expired ones are pruned.
const PRUNE_AT: usize = 10_000;

/// What claiming a fill gave.
#[derive(Debug)]
pub enum Fill {
    /// This request fills the key.
    Lead,
    /// Another request stored it meanwhile.
    Stored(Arc<StoredEntry>),
    /// Nothing was stored within the wait.
    GaveUp,
}

impl HttpCache {
    /// Claims the fill of `base` for `hold_ms`, or waits up to `wait_ms` for whoever holds
    /// it to store the response for `request`.
    pub async fn claim_fill(&self, base: &str, request: &[(String, Vec<u8>)], hold_ms: u64, wait_ms: u64) -> Fill {
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        loop {
            if self.try_claim(base, hold_ms).await {
                return Fill::Lead;
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

    /// Takes the claim on `base` when nobody holds it; whether this caller got it.
    async fn try_claim(&self, base: &str, hold_ms: u64) -> bool {
        if let Some(shared) = &self.shared {
            match shared.claim_fill(base, hold_ms).await {
                Ok(got) => return got,
                Err(e) => self.shared_failed("claim", &e),
            }
        }
        let now = unix_ms();
        let mut claims = self.claims.lock();
        if claims.len() > PRUNE_AT {
            claims.retain(|_, until| *until > now);
        }
        match claims.get(base) {
            Some(until) if *until > now => false,
            _ => {
                claims.insert(base.to_string(), now.saturating_add(hold_ms));
                true
            }
        }
    }
}
