//! Conditional requests around a stored response: answering a client's own `If-None-Match` /
//! `If-Modified-Since` (RFC 9111 §4.3.2), the validators sent upstream to revalidate
//! (§4.3.1), and freshening a stored response with a 304 (§3.2, §4.3.4).

use sluice_plugin_sdk::{Headers, RequestHead};

use crate::dates::parse_http_date;
use crate::directives::CacheControl;
use crate::storable::NEVER_STORED;

/// Fields a 304 never replaces in a stored response (§3.2): the stored body's own framing and
/// coding, plus what is never stored.
const KEPT_ON_UPDATE: [&str; 3] = ["content-length", "content-encoding", "content-range"];

/// Fields a 304 generated from a stored 200 carries (RFC 9110 §15.4.5).
const NOT_MODIFIED_FIELDS: [&str; 6] = ["cache-control", "content-location", "date", "etag", "expires", "vary"];

/// An entity-tag: whether it is weak, and its opaque-tag with the quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// `W/` in front.
    pub weak: bool,
    /// The quoted opaque tag, e.g. `"v1"`.
    pub opaque: &'a str,
}

impl EntityTag<'_> {
    /// Weak comparison (RFC 9110 §8.8.3.2): the opaque tags are equal.
    pub fn weak_eq(&self, other: &EntityTag) -> bool {
        self.opaque == other.opaque
    }

    /// Strong comparison: neither is weak and the opaque tags are equal.
    pub fn strong_eq(&self, other: &EntityTag) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }
}

/// Parses a comma-separated list of entity-tags; `None` when any member is malformed.
pub fn parse_etags(value: &str) -> Option<Vec<EntityTag<'_>>> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(out);
        }
        let weak = rest.starts_with("W/");
        let tag = if weak { &rest[2..] } else { rest };
        let inner = tag.strip_prefix('"')?;
        let end = inner.find('"')?;
        if inner[..end].bytes().any(|b| b < 0x21 || b == 0x7f) {
            return None;
        }
        out.push(EntityTag {
            weak,
            opaque: &tag[..end + 2],
        });
        rest = &tag[end + 2..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t', ','])) {
            return None;
        }
    }
}

fn text(v: &[u8]) -> Option<&str> {
    std::str::from_utf8(v).ok()
}

/// The stored response's `ETag`, when it is exactly one valid entity-tag.
fn stored_etag(headers: &[(String, Vec<u8>)]) -> Option<EntityTag<'_>> {
    let tags = parse_etags(text(headers.get_bytes("etag")?)?)?;
    match tags[..] {
        [tag] => Some(tag),
        _ => None,
    }
}

/// Whether the client's own conditional lets the cache answer 304 from the stored response
/// (§4.3.2): `If-None-Match` (`*` or a list, weak comparison) when present — malformed means
/// no match — else `If-Modified-Since` compared with the stored `Last-Modified`, else its
/// `Date`, else the time it was received. Only `GET` / `HEAD` and a stored 200 qualify.
pub fn client_not_modified(
    req: &RequestHead,
    stored_status: u16,
    stored: &[(String, Vec<u8>)],
    stored_response_time_ms: u64,
    now_s: i64,
) -> bool {
    if !matches!(req.method.as_str(), "GET" | "HEAD") || stored_status != 200 {
        return false;
    }
    let inm: Vec<&[u8]> = req.headers.get_all("if-none-match").collect();
    if !inm.is_empty() {
        let joined = inm.iter().filter_map(|v| text(v)).collect::<Vec<_>>().join(",");
        if joined.trim() == "*" {
            return true;
        }
        let (Some(wanted), Some(have)) = (parse_etags(&joined), stored_etag(stored)) else {
            return false;
        };
        return wanted.iter().any(|t| t.weak_eq(&have));
    }
    let Some(since) = req
        .headers
        .get_bytes("if-modified-since")
        .and_then(text)
        .and_then(|v| parse_http_date(v, now_s))
    else {
        return false;
    };
    let date_of = |name: &str| {
        stored
            .get_bytes(name)
            .and_then(text)
            .and_then(|v| parse_http_date(v, now_s))
    };
    let modified = date_of("last-modified")
        .or_else(|| date_of("date"))
        .unwrap_or((stored_response_time_ms / 1000) as i64);
    modified <= since
}

/// The conditional headers to send upstream to revalidate a stored response (§4.3.1):
/// `if-none-match` with its `ETag`, `if-modified-since` with its `Last-Modified` (when a valid
/// date). They replace whatever conditionals the client sent. Empty when it has neither: the
/// request then goes upstream unconditionally.
pub fn revalidation_headers(stored: &[(String, Vec<u8>)], now_s: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(tag) = stored_etag(stored) {
        let value = if tag.weak {
            format!("W/{}", tag.opaque)
        } else {
            tag.opaque.to_string()
        };
        out.push(("if-none-match".to_string(), value));
    }
    if let Some(lm) = stored.get_bytes("last-modified").and_then(text).map(str::trim)
        && parse_http_date(lm, now_s).is_some()
    {
        out.push(("if-modified-since".to_string(), lm.to_string()));
    }
    out
}

/// Whether a 304 can freshen the stored response (§4.3.4): when the 304 has an `ETag` it must
/// match the stored one (strongly if it is strong, weakly if weak); a 304 without an `ETag` is
/// taken to answer the validators this cache sent.
pub fn validators_agree(stored: &[(String, Vec<u8>)], not_modified: &[(String, Vec<u8>)]) -> bool {
    let Some(new) = not_modified.get_bytes("etag") else {
        return true;
    };
    let new = text(new).and_then(parse_etags);
    match (new.as_deref(), stored_etag(stored)) {
        (Some([new]), Some(old)) if new.weak => new.weak_eq(&old),
        (Some([new]), Some(old)) => new.strong_eq(&old),
        _ => false,
    }
}

/// The stored header fields freshened with a 304's (§3.2, §4.3.4): every field the 304 has
/// replaces all stored lines of that name, except `Content-Length`, `Content-Encoding`,
/// `Content-Range`, hop-by-hop fields, fields the 304's `Connection` names and `Set-Cookie`;
/// then the fields the result's `private="…"` / `no-cache="…"` name are removed.
pub fn merge_not_modified(stored: &[(String, Vec<u8>)], not_modified: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let mut skip: Vec<String> = KEPT_ON_UPDATE
        .iter()
        .chain(NEVER_STORED.iter())
        .map(|s| s.to_string())
        .collect();
    for line in not_modified.get_all("connection") {
        skip.extend(
            String::from_utf8_lossy(line)
                .split(',')
                .map(|n| n.trim().to_ascii_lowercase()),
        );
    }
    let updates: Vec<&(String, Vec<u8>)> = not_modified
        .iter()
        .filter(|(n, _)| !skip.contains(&n.to_ascii_lowercase()))
        .collect();
    let replaced = |name: &str| updates.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut merged: Vec<(String, Vec<u8>)> = stored.iter().filter(|(n, _)| !replaced(n)).cloned().collect();
    merged.extend(updates.into_iter().cloned());
    let strip = CacheControl::parse(&merged).fields_to_strip();
    merged.retain(|(n, _)| !strip.contains(&n.to_ascii_lowercase()));
    merged
}

/// The fields of a stored response that a 304 answering a client carries (RFC 9110 §15.4.5):
/// `Cache-Control`, `Content-Location`, `Date`, `ETag`, `Expires`, `Vary`. The caller adds
/// `Age` and `Cache-Status`.
pub fn not_modified_headers(stored: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    stored
        .iter()
        .filter(|(n, _)| NOT_MODIFIED_FIELDS.contains(&n.to_ascii_lowercase().as_str()))
        .cloned()
        .collect()
}

#[cfg(test)]
#[path = "conditional_tests.rs"]
mod tests;
