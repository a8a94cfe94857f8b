//! Which stored keys answer which request target and carry which tag, for invalidation by
//! target, by prefix of targets and by tag. Kept beside the entries: added on insert, removed
//! when an entry leaves (evicted, expired, invalidated).

use std::collections::{BTreeMap, HashMap, HashSet};

/// The keys by request target and by tag.
#[derive(Debug, Default)]
pub struct Index {
    by_target: BTreeMap<String, HashSet<String>>,
    by_tag: HashMap<String, HashSet<String>>,
}

impl Index {
    /// Records that `key` answers `target` and carries `tags`.
    pub fn add(&mut self, key: &str, target: &str, tags: &[String]) {
        self.by_target
            .entry(target.to_string())
            .or_default()
            .insert(key.to_string());
        for tag in tags {
            self.by_tag.entry(tag.clone()).or_default().insert(key.to_string());
        }
    }

    /// Forgets `key` (which answered `target` with `tags`).
    pub fn remove(&mut self, key: &str, target: &str, tags: &[String]) {
        if let Some(keys) = self.by_target.get_mut(target) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_target.remove(target);
            }
        }
        for tag in tags {
            if let Some(keys) = self.by_tag.get_mut(tag) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_tag.remove(tag);
                }
            }
        }
    }

    /// The keys answering exactly `target`.
    pub fn by_target(&self, target: &str) -> Vec<String> {
        self.by_target
            .get(target)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The keys answering a target that starts with `prefix`.
    pub fn by_prefix(&self, prefix: &str) -> Vec<String> {
        self.by_target
            .range(prefix.to_string()..)
            .take_while(|(target, _)| target.starts_with(prefix))
            .flat_map(|(_, keys)| keys.iter().cloned())
            .collect()
    }

    /// The keys carrying `tag`.
    pub fn by_tag(&self, tag: &str) -> Vec<String> {
        self.by_tag
            .get(tag)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn finds_by_target_prefix_and_tag_and_forgets_on_removal() {
        let mut index = Index::default();
        index.add("a", "/items?page=1", &["items".into()]);
        index.add("b", "/items?page=2", &["items".into(), "p2".into()]);
        index.add("c", "/itemsx", &[]);
        index.add("d", "/other", &["items".into()]);
        assert_eq!(index.by_target("/items?page=1"), vec!["a"]);
        assert_eq!(sorted(index.by_prefix("/items?")), vec!["a", "b"]);
        assert_eq!(sorted(index.by_prefix("/items")), vec!["a", "b", "c"]);
        assert_eq!(sorted(index.by_tag("items")), vec!["a", "b", "d"]);
        index.remove("b", "/items?page=2", &["items".into(), "p2".into()]);
        assert_eq!(sorted(index.by_prefix("/items?")), vec!["a"]);
        assert!(index.by_tag("p2").is_empty());
        assert!(index.by_target("/items?page=2").is_empty());
        assert!(index.by_prefix("/zzz").is_empty());
    }
}
