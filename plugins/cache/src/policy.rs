//! The settings that apply to one request: the top level with the longest matching rule laid
//! over it.

use crate::settings::{KeyQuery, Rule, Settings};

/// The settings that apply to one request path: the top level with the longest matching
/// rule laid over it.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy<'a> {
    /// Freshness for responses without explicit freshness (rule `ttl_s`, else `default_ttl_s`).
    pub default_ttl_s: Option<u32>,
    /// With `override`: the lifetime that replaces the upstream's freshness.
    pub override_ttl_s: Option<u32>,
    /// The cap on heuristic freshness.
    pub max_heuristic_ttl_s: u32,
    /// The rule's stale-while-revalidate window.
    pub stale_while_revalidate_s: Option<u32>,
    /// The rule's stale-if-error window.
    pub stale_if_error_s: Option<u32>,
    /// Invalidation tags.
    pub tags: &'a [String],
    /// Header names in the key.
    pub key_headers: &'a [String],
    /// Query parameters in the key.
    pub key_query: &'a KeyQuery,
    /// Identity in the key (`None`: automatic).
    pub key_identity: Option<bool>,
    /// Per-object size limit.
    pub max_object_bytes: u64,
    /// Store responses with `Set-Cookie` (stripped).
    pub store_set_cookie: bool,
    /// Let requests with credentials use the cache.
    pub cache_authorized: bool,
    /// The targeted fields (RFC 9213) this cache follows, first match wins: the gateway's own
    /// `target_field`, then `cdn-cache-control` unless turned off.
    pub targets: Targets<'a>,
}

/// The targeted cache-control fields a cache follows, in order (RFC 9213 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets<'a> {
    /// The gateway's own field, consumed (removed before the response goes downstream).
    pub own: Option<&'a str>,
    /// Whether `CDN-Cache-Control` is followed.
    pub cdn: bool,
}

/// Whether `path` is `prefix` or below it on a segment boundary.
pub fn under_prefix(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    }
}

impl Settings {
    /// The rule with the longest prefix of `path` (the path without its query), if any.
    /// Prefixes match on segment boundaries, as route `path_prefix` does: `/api/list` covers
    /// `/api/list` and `/api/list/7`, not `/api/listing`.
    pub fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.rules
            .iter()
            .filter(|r| under_prefix(path, &r.prefix))
            .max_by_key(|r| r.prefix.len())
    }

    /// The policy for `path` (without query).
    pub fn policy(&self, path: &str) -> Policy<'_> {
        let rule = self.rule_for(path);
        let overriding = rule.is_some_and(|r| r.override_freshness);
        Policy {
            default_ttl_s: rule.and_then(|r| r.ttl_s).or(self.default_ttl_s),
            override_ttl_s: rule.filter(|_| overriding).and_then(|r| r.ttl_s),
            max_heuristic_ttl_s: self.max_heuristic_ttl_s,
            stale_while_revalidate_s: rule.and_then(|r| r.stale_while_revalidate_s),
            stale_if_error_s: rule.and_then(|r| r.stale_if_error_s),
            tags: rule.map_or(&[][..], |r| r.tags.as_slice()),
            key_headers: rule.and_then(|r| r.key_headers.as_deref()).unwrap_or(&self.key_headers),
            key_query: rule.and_then(|r| r.key_query.as_ref()).unwrap_or(&self.key_query),
            key_identity: rule.and_then(|r| r.key_identity).or(self.key_identity),
            max_object_bytes: self.max_object_bytes,
            store_set_cookie: self.store_set_cookie,
            cache_authorized: self.cache_authorized,
            targets: Targets {
                own: self.target_field.as_deref(),
                cdn: self.cdn_cache_control,
            },
        }
    }
}
