//! The simulated KV cache: remembered prompt prefixes with LRU eviction.

/// One remembered prompt (its tokens) for one model.
struct Entry {
    model: String,
    tokens: Vec<String>,
    last_used: u64,
}

/// Prompt token sequences kept for prefix reuse, bounded by a token capacity.
pub(crate) struct KvCache {
    capacity: usize,
    entries: Vec<Entry>,
    tick: u64,
}

impl KvCache {
    /// An empty cache holding at most `capacity` tokens.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Vec::new(),
            tick: 0,
        }
    }

    /// Tokens currently cached.
    pub(crate) fn used(&self) -> usize {
        self.entries.iter().map(|e| e.tokens.len()).sum()
    }

    /// Fraction of the capacity in use, from 0 to 1.
    pub(crate) fn usage(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            self.used() as f64 / self.capacity as f64
        }
    }

    /// Looks up the longest cached prefix of `tokens` for `model`, then remembers `tokens`
    /// (truncated to the capacity), evicting least recently used entries. Returns the number
    /// of leading tokens that were already cached.
    pub(crate) fn admit(&mut self, model: &str, tokens: &[String]) -> usize {
        self.tick += 1;
        let tick = self.tick;
        let mut best: Option<(usize, usize)> = None;
        for (i, entry) in self.entries.iter().enumerate().filter(|(_, e)| e.model == model) {
            let common = entry.tokens.iter().zip(tokens).take_while(|(a, b)| a == b).count();
            if common > 0 && best.is_none_or(|(_, len)| common > len) {
                best = Some((i, common));
            }
        }
        if let Some((i, _)) = best {
            self.entries[i].last_used = tick;
        }
        let hit = best.map_or(0, |(_, len)| len);

        let keep = tokens.len().min(self.capacity);
        if keep > hit {
            let stored = &tokens[..keep];
            // Entries that are prefixes of the new one are subsumed by it.
            self.entries
                .retain(|e| !(e.model == model && stored.starts_with(&e.tokens)));
            self.entries.push(Entry {
                model: model.to_owned(),
                tokens: stored.to_vec(),
                last_used: tick,
            });
            self.evict();
        }
        hit
    }

    fn evict(&mut self) {
        while self.used() > self.capacity {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(i, _)| i)
            else {
                return;
            };
            self.entries.remove(oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::tokenize;

    #[test]
    fn prefix_hits_and_lru_eviction() {
        let mut kv = KvCache::new(10);
        assert_eq!(kv.admit("m", &tokenize("a b c d")), 0);
        assert_eq!(kv.admit("m", &tokenize("a b c d e f")), 4);
        assert_eq!(kv.used(), 6, "the shorter prefix is subsumed");
        assert_eq!(kv.admit("other", &tokenize("a b c")), 0, "caches are per model");
        assert_eq!(kv.used(), 9);
        // Needs 4 more tokens: the least recently used entry ("a b c d e f") goes.
        assert_eq!(kv.admit("m", &tokenize("x y z w")), 0);
        assert_eq!(kv.used(), 7);
        assert_eq!(kv.admit("m", &tokenize("a b")), 0);
        assert!((kv.usage() - 0.9).abs() < 1e-9);
    }
}
