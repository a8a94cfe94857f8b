//! The plugin's config (the route's `config` table, as JSON), checked by
//! [`Settings::validate`]; [`crate::policy`] resolves them for one request path. Every key is
//! described in `plugins/cache/README.md`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

/// The longest TTL or stale window accepted: one year, in seconds.
pub const MAX_TTL_S: u32 = 365 * 86_400;
/// The largest object the host's cache holds (body and headers), and so the largest
/// `max_object_bytes` accepted.
pub const MAX_OBJECT_BYTES: u64 = 8 << 20;
/// The most rules a config may have.
const MAX_RULES: usize = 256;
/// The most header names, query parameters or tags one list may have.
const MAX_LIST: usize = 32;

/// Which query parameters are part of the cache key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum KeyQuery {
    /// The query exactly as received (`"all"`, the default): `?a=1&b=2` and `?b=2&a=1` differ.
    #[default]
    All,
    /// Every parameter, sorted by name (`"sorted"`); parameters of the same name keep their order.
    Sorted,
    /// Only these parameters, sorted by name (a JSON list; `[]` or `"none"` ignores the query).
    Only(Vec<String>),
}

impl<'de> Deserialize<'de> for KeyQuery {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyQueryVisitor;

        impl<'de> Visitor<'de> for KeyQueryVisitor {
            type Value = KeyQuery;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(r#""all", "sorted", "none" or a list of query parameter names"#)
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyQuery, E> {
                match v {
                    "all" => Ok(KeyQuery::All),
                    "sorted" => Ok(KeyQuery::Sorted),
                    "none" => Ok(KeyQuery::Only(Vec::new())),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<KeyQuery, A::Error> {
                let mut names = Vec::new();
                while let Some(name) = seq.next_element::<String>()? {
                    names.push(name);
                }
                Ok(KeyQuery::Only(names))
            }
        }

        deserializer.deserialize_any(KeyQueryVisitor)
    }
}

/// One per-path-prefix rule; the longest matching `prefix` wins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The path prefix (without query) the rule applies to; starts with `/`.
    pub prefix: String,
    /// The freshness lifetime given to responses without explicit freshness (or to every
    /// response, with `override`), in seconds.
    #[serde(default)]
    pub ttl_s: Option<u32>,
    /// How long a stale response may be served while it is refreshed in the background
    /// (RFC 5861), when the response does not say.
    #[serde(default)]
    pub stale_while_revalidate_s: Option<u32>,
    /// How long a stale response may be served when the upstream fails (RFC 5861), when the
    /// response does not say.
    #[serde(default)]
    pub stale_if_error_s: Option<u32>,
    /// Invalidation tags given to responses stored under this prefix.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Replaces the top-level `key_headers` under this prefix.
    #[serde(default)]
    pub key_headers: Option<Vec<String>>,
    /// Replaces the top-level `key_query` under this prefix.
    #[serde(default)]
    pub key_query: Option<KeyQuery>,
    /// Replaces the top-level `key_identity` under this prefix.
    #[serde(default)]
    pub key_identity: Option<bool>,
    /// Use `ttl_s` and the rule's stale windows whatever the upstream's freshness directives say.
    #[serde(default, rename = "override")]
    pub override_freshness: bool,
}

/// The longest fill hold, in ms (the host's limit).
const MAX_FILL_MS: u32 = 60_000;

/// What the operator configured, checked by [`Settings::validate`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Freshness lifetime for heuristically cacheable responses without explicit freshness and
    /// without a usable `Last-Modified`, in seconds; none by default.
    pub default_ttl_s: Option<u32>,
    /// The cap on heuristic freshness (10% of the time since `Last-Modified`), in seconds.
    pub max_heuristic_ttl_s: u32,
    /// Responses whose `Content-Length` is larger are not stored.
    pub max_object_bytes: u64,
    /// Store responses that carry `Set-Cookie`, with `Set-Cookie` removed; otherwise they are
    /// not stored.
    pub store_set_cookie: bool,
    /// Whether requests with `Authorization` or `X-Api-Key` use the cache at all.
    pub cache_authorized: bool,
    /// Request header names whose values are part of the key (lower-cased at load).
    pub key_headers: Vec<String>,
    /// Which query parameters are part of the key.
    pub key_query: KeyQuery,
    /// Whether the caller's identity is part of the key; `None`: when the request carries
    /// credentials or an earlier plugin set `subject`.
    pub key_identity: Option<bool>,
    /// Per-path-prefix rules.
    pub rules: Vec<Rule>,
    /// How long a response with a validator (`ETag`, `Last-Modified`) is kept after it went
    /// stale, in seconds, so a 304 can refresh it; 0 keeps only what its freshness and stale
    /// windows allow. Default 3600.
    pub revalidate_keep_s: u32,
    /// Stampede protection: how long the first request to miss a key holds the fill (across
    /// instances with Redis), in ms. 0 turns it off. Default 5000.
    pub fill_hold_ms: u32,
    /// How long the other requests for that key wait for the fill before going upstream on
    /// their own, in ms (at most `fill_hold_ms`; the host also caps it at half the hook's
    /// wall-clock limit, 500 ms by default). Default 500.
    pub fill_wait_ms: u32,
    /// Whether `CDN-Cache-Control` (RFC 9213) directs this cache: when the response has a
    /// valid one it replaces `Cache-Control` and `Expires` here, and goes downstream unchanged.
    /// Default true.
    pub cdn_cache_control: bool,
    /// The gateway's own targeted field (for example `sluice-cache-control`), read before
    /// `CDN-Cache-Control` in the same way, and removed from the response before it goes
    /// downstream or is stored. None by default (lower-cased at load).
    pub target_field: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            default_ttl_s: None,
            max_heuristic_ttl_s: 86_400,
            max_object_bytes: MAX_OBJECT_BYTES,
            store_set_cookie: false,
            cache_authorized: true,
            key_headers: Vec::new(),
            key_query: KeyQuery::All,
            key_identity: None,
            rules: Vec::new(),
            revalidate_keep_s: 3_600,
            fill_hold_ms: 5_000,
            fill_wait_ms: 500,
            cdn_cache_control: true,
            target_field: None,
        }
    }
}

/// Whether `s` is an HTTP token (header names, directive names).
pub fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn check_ttl(what: &str, value: Option<u32>) -> Result<(), String> {
    match value {
        Some(v) if v > MAX_TTL_S => Err(format!(
            "invalid config: {what} = {v} is longer than a year ({MAX_TTL_S} s)"
        )),
        _ => Ok(()),
    }
}

fn check_headers(what: &str, names: &mut [String]) -> Result<(), String> {
    if names.len() > MAX_LIST {
        return Err(format!(
            "invalid config: {what} has {} names; at most {MAX_LIST}",
            names.len()
        ));
    }
    for name in names.iter_mut() {
        if !is_token(name) {
            return Err(format!(
                "invalid config: {what} has {name:?}, which is not a header name"
            ));
        }
        name.make_ascii_lowercase();
    }
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("invalid config: {what} lists {:?} twice", w[0]));
    }
    Ok(())
}

fn check_query(what: &str, query: &mut KeyQuery) -> Result<(), String> {
    if let KeyQuery::Only(names) = query {
        if names.len() > MAX_LIST {
            return Err(format!(
                "invalid config: {what} has {} names; at most {MAX_LIST}",
                names.len()
            ));
        }
        if let Some(bad) = names.iter().find(|n| n.is_empty() || n.contains(['&', '=', '#', ' '])) {
            return Err(format!(
                "invalid config: {what} has {bad:?}, which is not a query parameter name"
            ));
        }
        names.sort();
        names.dedup();
    }
    Ok(())
}

impl Rule {
    fn validate(&mut self) -> Result<(), String> {
        let p = &self.prefix;
        if !p.starts_with('/') || p.contains(['?', '#']) || p.chars().any(char::is_whitespace) {
            return Err(format!(
                "invalid config: rule prefix {p:?} must be a path starting with `/` (no query, no spaces)"
            ));
        }
        let at = format!("rule {p:?}");
        check_ttl(&format!("{at}: ttl_s"), self.ttl_s)?;
        check_ttl(
            &format!("{at}: stale_while_revalidate_s"),
            self.stale_while_revalidate_s,
        )?;
        check_ttl(&format!("{at}: stale_if_error_s"), self.stale_if_error_s)?;
        if self.override_freshness && self.ttl_s.is_none() {
            return Err(format!("invalid config: {at} sets `override` without `ttl_s`"));
        }
        if self.tags.len() > MAX_LIST {
            return Err(format!(
                "invalid config: {at} has {} tags; at most {MAX_LIST}",
                self.tags.len()
            ));
        }
        if let Some(bad) = self
            .tags
            .iter()
            .find(|t| t.is_empty() || t.len() > 128 || t.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(format!(
                "invalid config: {at} has tag {bad:?}; tags are 1-128 characters without spaces"
            ));
        }
        if let Some(names) = &mut self.key_headers {
            check_headers(&format!("{at}: key_headers"), names)?;
        }
        if let Some(query) = &mut self.key_query {
            check_query(&format!("{at}: key_query"), query)?;
        }
        Ok(())
    }
}

impl Settings {
    /// Parses and validates the JSON config, with a message naming the key on error.
    pub fn from_json(json: &str) -> Result<Self, String> {
        serde_json::from_str::<Settings>(json)
            .map_err(|e| format!("invalid config: {e}"))?
            .validate()
    }

    /// The settings with names normalized, or a message saying what is wrong.
    pub fn validate(mut self) -> Result<Self, String> {
        check_ttl("default_ttl_s", self.default_ttl_s)?;
        check_ttl("max_heuristic_ttl_s", Some(self.max_heuristic_ttl_s))?;
        if !(1..=MAX_OBJECT_BYTES).contains(&self.max_object_bytes) {
            return Err(format!(
                "invalid config: max_object_bytes = {} must be 1..={MAX_OBJECT_BYTES} (the host cache's entry limit)",
                self.max_object_bytes
            ));
        }
        check_headers("key_headers", &mut self.key_headers)?;
        check_query("key_query", &mut self.key_query)?;
        check_ttl("revalidate_keep_s", Some(self.revalidate_keep_s))?;
        if self.fill_hold_ms > MAX_FILL_MS || self.fill_wait_ms > self.fill_hold_ms {
            return Err(format!(
                "invalid config: fill_wait_ms = {} must be at most fill_hold_ms = {}, itself at most {MAX_FILL_MS}",
                self.fill_wait_ms, self.fill_hold_ms
            ));
        }
        if let Some(field) = &mut self.target_field {
            field.make_ascii_lowercase();
            if !is_token(field) || ["cache-control", "cdn-cache-control", "expires", "pragma"].contains(&field.as_str())
            {
                return Err(format!(
                    "invalid config: target_field = {field:?} must be a header name of the gateway's own \
                     (not Cache-Control, CDN-Cache-Control, Expires or Pragma)"
                ));
            }
        }
        if self.rules.len() > MAX_RULES {
            return Err(format!(
                "invalid config: {} rules; at most {MAX_RULES}",
                self.rules.len()
            ));
        }
        for rule in &mut self.rules {
            rule.validate()?;
        }
        let mut prefixes: Vec<&str> = self.rules.iter().map(|r| r.prefix.as_str()).collect();
        prefixes.sort_unstable();
        if let Some(w) = prefixes.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("invalid config: two rules have the prefix {:?}", w[0]));
        }
        Ok(self)
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
