//! Prefix affinity: which backend last served a prompt prefix (by the hash the router
//! computes), so a follow-up request whose prompt starts the same goes where the KV cache
//! already holds it. Bounded: the least recently used prefixes are forgotten first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// The prefix → backend index.
#[derive(Debug)]
pub struct PrefixIndex {
    capacity: usize,
    /// Prefix hash → (backend, use stamp).
    owners: HashMap<u64, (Arc<str>, u64)>,
    /// Use stamp → prefix hash, oldest first.
    by_use: BTreeMap<u64, u64>,
    stamp: u64,
}

impl PrefixIndex {
    /// An index remembering at most `capacity` prefixes (at least one).
    pub fn new(capacity: usize) -> Self {
        PrefixIndex {
            capacity: capacity.max(1),
            owners: HashMap::new(),
            by_use: BTreeMap::new(),
            stamp: 0,
        }
    }

    /// How many prefixes it remembers.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether it remembers none.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// The backend that last served `prefix`, if remembered (the use refreshes it).
    pub fn owner(&mut self, prefix: u64) -> Option<Arc<str>> {
        let stamp = self.next_stamp();
        let (backend, used) = self.owners.get_mut(&prefix)?;
        self.by_use.remove(used);
        *used = stamp;
        self.by_use.insert(stamp, prefix);
        Some(backend.clone())
    }

    /// Records that `backend` served `prefix`, forgetting the least recently used prefix
    /// when full.
    pub fn record(&mut self, prefix: u64, backend: Arc<str>) {
        let stamp = self.next_stamp();
        if let Some((_, used)) = self.owners.insert(prefix, (backend, stamp)) {
            self.by_use.remove(&used);
        }
        self.by_use.insert(stamp, prefix);
        while self.owners.len() > self.capacity {
            let Some((_, oldest)) = self.by_use.pop_first() else {
                break;
            };
            self.owners.remove(&oldest);
        }
    }

    /// Forgets every prefix `backend` held (it went away or lost its cache).
    pub fn forget_backend(&mut self, backend: &str) {
        let gone: Vec<(u64, u64)> = self
            .owners
            .iter()
            .filter(|(_, (b, _))| &**b == backend)
            .map(|(p, (_, used))| (*p, *used))
            .collect();
        for (prefix, used) in gone {
            self.owners.remove(&prefix);
            self.by_use.remove(&used);
        }
    }

    fn next_stamp(&mut self) -> u64 {
        self.stamp += 1;
        self.stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_owners_and_forgets_the_least_recently_used() {
        let mut index = PrefixIndex::new(2);
        index.record(1, Arc::from("a"));
        index.record(2, Arc::from("b"));
        assert_eq!(index.owner(1).as_deref(), Some("a"), "using 1 makes 2 the oldest");
        index.record(3, Arc::from("c"));
        assert_eq!(index.len(), 2);
        assert!(index.owner(2).is_none());
        assert_eq!(index.owner(1).as_deref(), Some("a"));
        assert_eq!(index.owner(3).as_deref(), Some("c"));
        index.record(1, Arc::from("c"));
        assert_eq!(index.owner(1).as_deref(), Some("c"), "the latest server owns it");
        index.forget_backend("c");
        assert!(index.is_empty());
    }
}
