//! Invalidation: by request target, by target prefix and by tag, in memory and (with Redis)
//! everywhere, announced to every instance. Each invalidation moves the cache's generation and
//! is remembered for a while, so a fill that was in flight when its target was invalidated is
//! not stored (it may carry what the invalidation was about).

use std::sync::atomic::Ordering;

use super::state::{Dropped, HttpCache};
use crate::redis::RedisError;

/// How many invalidations are remembered for in-flight fills; a fill older than all of them
/// is not stored.
const REMEMBERED: usize = 1024;

impl HttpCache {
    /// Drops the responses stored for the request target `target`, everywhere; how many
    /// (the larger of what memory and Redis held).
    pub async fn invalidate_target(&self, target: &str) -> u64 {
        let local = self.drop_local(&format!("target\n{target}"));
        let Some(shared) = &self.shared else { return local };
        let dropped = shared.drop_target(target).await;
        self.announce(format!("target\n{target}")).await;
        self.settle("invalidate", dropped).max(local)
    }

    /// Drops the responses whose request target starts with `prefix`, everywhere; how many.
    pub async fn invalidate_prefix(&self, prefix: &str) -> u64 {
        let local = self.drop_local(&format!("prefix\n{prefix}"));
        let Some(shared) = &self.shared else { return local };
        let dropped = shared.drop_prefix(prefix).await;
        self.announce(format!("prefix\n{prefix}")).await;
        self.settle("invalidate", dropped).max(local)
    }

    /// Drops the responses stored with `tag`, everywhere; how many this instance held.
    pub async fn invalidate_tag(&self, tag: &str) -> u64 {
        let local = self.drop_local(&format!("tag\n{tag}"));
        let Some(shared) = &self.shared else { return local };
        let bumped = shared.bump_tag(tag).await;
        self.settle("invalidate", bumped.map(|()| 0));
        self.announce(format!("tag\n{tag}")).await;
        local
    }

    fn settle(&self, what: &str, result: Result<u64, RedisError>) -> u64 {
        result.unwrap_or_else(|e| {
            self.shared_failed(what, &e);
            0
        })
    }

    async fn announce(&self, what: String) {
        if let Some(shared) = &self.shared
            && let Err(e) = shared.announce(what).await
        {
            self.shared_failed("announce", &e);
        }
    }

    /// Applies an invalidation another instance (or this one) announced.
    pub(super) fn apply_announced(&self, message: &str) {
        self.drop_local(message);
    }

    /// Drops from memory what `what` (`target\n…`, `prefix\n…` or `tag\n…`) names; how many.
    fn drop_local(&self, what: &str) -> u64 {
        if let Some(dropped) = Dropped::parse(what) {
            self.remember(dropped);
        }
        let keys = match what.split_once('\n') {
            Some(("target", t)) => self.index.lock().by_target(t),
            Some(("prefix", p)) => self.index.lock().by_prefix(p),
            Some(("tag", t)) => self.index.lock().by_tag(t),
            _ => {
                tracing::warn!(
                    message = what,
                    "http cache: an invalidation of unknown form was ignored"
                );
                return 0;
            }
        };
        let mut dropped = 0;
        for key in keys {
            if self.entries.remove(&key).is_some() {
                dropped += 1;
            }
        }
        self.entries.run_pending_tasks();
        dropped
    }

    /// Drops everything held in memory (a shared level's invalidations may have been missed).
    pub fn clear(&self) {
        self.remember(Dropped::All);
        self.entries.invalidate_all();
        self.variants.invalidate_all();
    }

    /// The current generation (taken when a request goes upstream).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Whether nothing invalidated `target` (or `tags`) since `generation`; a flush of memory
    /// (messages may have been missed) counts as touching everything.
    pub(super) fn untouched_since(&self, generation: u64, target: &str, tags: &[String]) -> bool {
        self.untouched(generation, target, tags, true)
    }

    /// Whether no explicit invalidation (a flush of memory aside) named `target` or `tags`
    /// since `generation`.
    pub(super) fn not_invalidated_since(&self, generation: u64, target: &str, tags: &[String]) -> bool {
        self.untouched(generation, target, tags, false)
    }

    fn untouched(&self, generation: u64, target: &str, tags: &[String], flushes: bool) -> bool {
        let recent = self.recent.lock();
        if generation == self.generation() {
            return true;
        }
        let Some(&(oldest, _)) = recent.front() else {
            return true;
        };
        if oldest > generation + 1 {
            return false;
        }
        !recent.iter().any(|(g, dropped)| {
            *g > generation && (flushes || *dropped != Dropped::All) && dropped.covers(target, tags)
        })
    }

    fn remember(&self, dropped: Dropped) {
        let mut recent = self.recent.lock();
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        recent.push_back((generation, dropped));
        if recent.len() > REMEMBERED {
            recent.pop_front();
        }
    }
}
