//! `Cache-Control` (RFC 9111 §5.2) for requests and responses, and `Pragma: no-cache` on
//! requests (§5.4).
//!
//! Every `Cache-Control` line is read and split on commas outside quoted strings. Directive
//! names compare case-insensitively; arguments may be tokens or quoted strings (§5.2).
//! Unknown directives are ignored. Where a directive is repeated or its argument is invalid,
//! the most restrictive reading is taken (§4.2.1: "the most restrictive directive should be
//! honored", invalid freshness is treated as stale):
//!
//! - `max-age`, `s-maxage`: invalid (`-1`, `1.5`, `abc`, missing) → 0; repeated with different
//!   values → 0; larger than 2^31 → 2^31 (§1.2.2);
//! - `min-fresh`: the largest; invalid is ignored;
//! - `max-stale`, `stale-while-revalidate`, `stale-if-error`: the smallest, a bare `max-stale`
//!   losing to a number; invalid is ignored (no staleness granted);
//! - `no-cache` and `private`: the unqualified form wins over field lists; lists are merged.

use sluice_plugin_sdk::Headers;

use crate::settings::is_token;

/// The greatest delta-seconds a cache keeps: larger values (and overflows) become this (RFC
/// 9111 §1.2.2).
pub const DELTA_MAX: u32 = 1 << 31;

/// Parses delta-seconds (`1*DIGIT`); more than [`DELTA_MAX`] is [`DELTA_MAX`]. `None` when it
/// is not digits.
pub fn parse_delta(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(
        s.parse::<u64>()
            .map_or(DELTA_MAX, |v| v.min(u64::from(DELTA_MAX)) as u32),
    )
}

/// The scope of `no-cache` or `private`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The whole response.
    All,
    /// Only these fields (lower-case, sorted, deduped).
    Fields(Vec<String>),
}

/// How much staleness a request accepts (`max-stale`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxStale {
    /// `max-stale` without a value: any staleness.
    Any,
    /// At most this many seconds.
    Seconds(u32),
}

/// The `Cache-Control` directives a cache acts on. Request and response directives share the
/// struct; each side reads its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheControl {
    /// `max-age` in seconds.
    pub max_age: Option<u32>,
    /// `s-maxage` in seconds (response; shared caches only).
    pub s_maxage: Option<u32>,
    /// `no-cache`, unqualified or with field names.
    pub no_cache: Option<Scope>,
    /// `no-store`.
    pub no_store: bool,
    /// `private`, unqualified or with field names (response).
    pub private: Option<Scope>,
    /// `public` (response).
    pub public: bool,
    /// `must-revalidate` (response).
    pub must_revalidate: bool,
    /// `proxy-revalidate` (response).
    pub proxy_revalidate: bool,
    /// `must-understand` (response).
    pub must_understand: bool,
    /// `max-stale` (request).
    pub max_stale: Option<MaxStale>,
    /// `min-fresh` in seconds (request).
    pub min_fresh: Option<u32>,
    /// `only-if-cached` (request).
    pub only_if_cached: bool,
    /// `stale-while-revalidate` in seconds (RFC 5861, response).
    pub stale_while_revalidate: Option<u32>,
    /// `stale-if-error` in seconds (RFC 5861, request or response).
    pub stale_if_error: Option<u32>,
    /// Read from a targeted field (RFC 9213), so `Expires` does not apply either.
    pub targeted: bool,
}

/// Splits `s` on commas that are not inside a quoted string.
fn split_list(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// The argument of a directive: a token, or a quoted string with its escapes undone. `None`
/// for an unterminated or malformed quoted string.
fn argument(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let Some(inner) = raw.strip_prefix('"') else {
        return Some(raw.to_string());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().trim().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

/// Merges a `no-cache` or `private` occurrence into what was seen; `fields` is the argument.
fn merge_scope(seen: Option<Scope>, fields: Option<&str>) -> Option<Scope> {
    let names: Option<Vec<String>> = fields.map(|f| {
        f.split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .filter(|n| is_token(n))
            .collect()
    });
    match (seen, names) {
        (Some(Scope::All), _) | (_, None) => Some(Scope::All),
        // `no-cache=""` or a list of nothing valid: read as the whole response.
        (_, Some(names)) if names.is_empty() => Some(Scope::All),
        (None, Some(names)) => Some(Scope::Fields(sorted(names))),
        (Some(Scope::Fields(mut old)), Some(names)) => {
            old.extend(names);
            Some(Scope::Fields(sorted(old)))
        }
    }
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names.dedup();
    names
}

/// A freshness delta where invalid means stale and disagreement means stale.
fn merge_strict(seen: Option<u32>, arg: Option<&str>) -> Option<u32> {
    let value = arg.and_then(parse_delta).unwrap_or(0);
    match seen {
        Some(old) if old != value => Some(0),
        _ => Some(value),
    }
}

/// A delta where invalid is ignored and repeats keep the value `pick` prefers.
fn merge_lenient(seen: Option<u32>, arg: Option<&str>, pick: fn(u32, u32) -> u32) -> Option<u32> {
    match (seen, arg.and_then(parse_delta)) {
        (Some(old), Some(new)) => Some(pick(old, new)),
        (old, new) => old.or(new),
    }
}

impl CacheControl {
    /// Parses every `Cache-Control` line of `headers`.
    pub fn parse(headers: &[(String, Vec<u8>)]) -> Self {
        let mut cc = CacheControl::default();
        for line in headers.get_all("cache-control") {
            cc.add(&String::from_utf8_lossy(line));
        }
        cc
    }

    /// The request's directives: `Cache-Control`, or, when the request has none, `Pragma:
    /// no-cache` read as `Cache-Control: no-cache` (RFC 9111 §5.4).
    pub fn parse_request(headers: &[(String, Vec<u8>)]) -> Self {
        if headers.get_bytes("cache-control").is_some() {
            return CacheControl::parse(headers);
        }
        let pragma_no_cache = headers.get_all("pragma").any(|line| {
            split_list(&String::from_utf8_lossy(line))
                .iter()
                .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
        });
        CacheControl {
            no_cache: pragma_no_cache.then_some(Scope::All),
            ..CacheControl::default()
        }
    }

    /// Adds the directives of one field line.
    pub(crate) fn add(&mut self, line: &str) {
        for item in split_list(line) {
            let (name, arg) = match item.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a)),
                None => (item.trim(), None),
            };
            if !is_token(name) {
                continue;
            }
            // A malformed quoted string counts as an invalid argument.
            let arg = arg.map(|a| argument(a).unwrap_or_else(|| "\u{0}".into()));
            let arg = arg.as_deref();
            match name.to_ascii_lowercase().as_str() {
                "max-age" => self.max_age = merge_strict(self.max_age, arg),
                "s-maxage" => self.s_maxage = merge_strict(self.s_maxage, arg),
                "min-fresh" => self.min_fresh = merge_lenient(self.min_fresh, arg, u32::max),
                "stale-while-revalidate" => {
                    self.stale_while_revalidate = merge_lenient(self.stale_while_revalidate, arg, u32::min)
                }
                "stale-if-error" => self.stale_if_error = merge_lenient(self.stale_if_error, arg, u32::min),
                "max-stale" => {
                    let new = match arg {
                        None => Some(MaxStale::Any),
                        Some(a) => parse_delta(a).map(MaxStale::Seconds),
                    };
                    self.max_stale = match (self.max_stale, new) {
                        (Some(MaxStale::Seconds(a)), Some(MaxStale::Seconds(b))) => Some(MaxStale::Seconds(a.min(b))),
                        (Some(MaxStale::Seconds(a)), _) | (_, Some(MaxStale::Seconds(a))) => Some(MaxStale::Seconds(a)),
                        (old, new) => old.or(new),
                    };
                }
                "no-cache" => self.no_cache = merge_scope(self.no_cache.take(), arg),
                "private" => self.private = merge_scope(self.private.take(), arg),
                "no-store" => self.no_store = true,
                "public" => self.public = true,
                "must-revalidate" => self.must_revalidate = true,
                "proxy-revalidate" => self.proxy_revalidate = true,
                "must-understand" => self.must_understand = true,
                "only-if-cached" => self.only_if_cached = true,
                _ => {}
            }
        }
    }

    /// Whether `no-cache` applies to the whole response.
    pub fn no_cache_all(&self) -> bool {
        self.no_cache == Some(Scope::All)
    }

    /// Whether `private` applies to the whole response.
    pub fn private_all(&self) -> bool {
        self.private == Some(Scope::All)
    }

    /// Whether the response forbids a shared cache from serving it stale: `must-revalidate`,
    /// `proxy-revalidate`, `s-maxage` (RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10) or unqualified
    /// `no-cache`, which allows no use without validation (§5.2.2.4, §4.2.4).
    pub fn forbids_stale(&self) -> bool {
        self.must_revalidate || self.proxy_revalidate || self.s_maxage.is_some() || self.no_cache_all()
    }

    /// The fields named by `private="…"` and `no-cache="…"`: a shared cache stores the
    /// response without them (RFC 9111 §5.2.2.4, §5.2.2.7).
    pub fn fields_to_strip(&self) -> Vec<String> {
        let mut out = Vec::new();
        for scope in [&self.private, &self.no_cache] {
            if let Some(Scope::Fields(names)) = scope {
                out.extend(names.iter().cloned());
            }
        }
        sorted(out)
    }
}

#[cfg(test)]
#[path = "directives_tests.rs"]
mod tests;
