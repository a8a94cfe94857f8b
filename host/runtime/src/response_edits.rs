//! The edits request hooks ask for with `response.edit`: kept by the place in the route of
//! the plugin that asked, applied to the response where that plugin's response hook runs
//! (reverse route order, just before the hook), whether the plugin has one or not.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::verdict;
use sluice_bindings::HeaderEdits;

/// A request's `response.edit` edits, by plugin index, in the order they were asked for.
/// The request chain fills it; the response chain (or, when no plugin that ran has a response
/// hook, the gateway directly on the response's header map) applies it.
#[derive(Debug, Default, Clone)]
pub struct ResponseEdits(Vec<(usize, HeaderEdits)>);

impl ResponseEdits {
    /// Whether no plugin asked for any.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps the edits the plugin at `index` asked for in one hook call, if any.
    pub(crate) fn record(&mut self, index: usize, edits: Option<HeaderEdits>) {
        if let Some(edits) = edits {
            self.0.push((index, edits));
        }
    }

    /// Applies the edits of the plugin at `index` to a plugin-shaped header list.
    pub(crate) fn apply(&self, index: usize, headers: &mut Vec<(String, Vec<u8>)>) {
        for (_, edits) in self.0.iter().filter(|(i, _)| *i == index) {
            verdict::apply_edits(headers, edits.clone());
        }
    }

    /// Applies the edits of the first `ran` plugins to `map`, last plugin first, as the
    /// response chain would: remove, then set (replacing), then append. The edits were checked
    /// when they were asked for; a name or value `http` still refuses is skipped.
    pub fn apply_to_map(&self, ran: usize, map: &mut HeaderMap) {
        for index in (0..ran).rev() {
            for (_, edits) in self.0.iter().filter(|(i, _)| *i == index) {
                apply_one(edits, map);
            }
        }
    }
}

fn apply_one(edits: &HeaderEdits, map: &mut HeaderMap) {
    for name in edits.remove.iter().chain(edits.set.iter().map(|(n, _)| n)) {
        if let Ok(name) = HeaderName::from_bytes(name.as_bytes()) {
            map.remove(name);
        }
    }
    for (name, value) in edits.set.iter().chain(&edits.append) {
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            map.append(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edits(set: &[(&str, &str)], append: &[(&str, &str)], remove: &[&str]) -> HeaderEdits {
        let list = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect()
        };
        HeaderEdits {
            set: list(set),
            append: list(append),
            remove: remove.iter().map(|r| r.to_string()).collect(),
            context: Vec::new(),
        }
    }

    fn replies() -> ResponseEdits {
        let mut r = ResponseEdits::default();
        r.record(0, Some(edits(&[("x-order", "first")], &[("x-seen", "0")], &["server"])));
        r.record(1, Some(edits(&[("x-order", "second")], &[("x-seen", "1")], &[])));
        r.record(1, None);
        r.record(1, Some(edits(&[], &[("x-seen", "1b")], &[])));
        r
    }

    #[test]
    fn the_map_and_the_list_get_the_same_edits_in_reverse_route_order() {
        let replies = replies();
        let mut map = HeaderMap::new();
        map.insert("server", HeaderValue::from_static("origin"));
        map.insert("x-order", HeaderValue::from_static("origin"));
        replies.apply_to_map(2, &mut map);
        let mut list = vec![
            ("server".to_string(), b"origin".to_vec()),
            ("x-order".to_string(), b"origin".to_vec()),
        ];
        replies.apply(1, &mut list);
        replies.apply(0, &mut list);
        let from_list = sluice_core::headers::from_plugin(list);
        assert_eq!(map, from_list);
        assert_eq!(
            map.get("x-order").unwrap(),
            "first",
            "the earlier plugin's set is applied last"
        );
        let seen: Vec<_> = map.get_all("x-seen").iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(seen, ["1", "1b", "0"]);
        assert!(!map.contains_key("server"));
    }

    #[test]
    fn only_the_plugins_that_ran_have_their_edits_applied() {
        let mut map = HeaderMap::new();
        replies().apply_to_map(1, &mut map);
        assert_eq!(map.get("x-order").unwrap(), "first");
        assert_eq!(map.get_all("x-seen").iter().count(), 1);
        let mut map = HeaderMap::new();
        replies().apply_to_map(0, &mut map);
        assert!(map.is_empty());
        assert!(ResponseEdits::default().is_empty());
    }
}
