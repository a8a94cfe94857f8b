//! The cache key.
//!
//! A key has two parts: the **URL key**, `authority + path + ?query` in plain text (the
//! authority lower-cased without a default port, the query as `key_query` selects it), and a
//! SHA-256 (hex) over, each length-prefixed: the method class (`GET` and `HEAD` share one),
//! the URL parts, the caller's identity when `key_identity` says so, and the values of the
//! `key_headers`. The plugin stores and looks up under the hash; the host keeps each stored
//! response's request target (path and query) beside it, which is what invalidation by
//! target and by prefix matches.

use sha2::{Digest, Sha256};
use sluice_plugin_sdk::{RequestExt, RequestHead};

use crate::policy::Policy;
use crate::settings::KeyQuery;
use crate::storable::{CREDENTIAL_HEADERS, is_authorized};
use crate::variants::normalized_value;

/// A request's cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey {
    /// The URL key, `authority + path + ?query`: what invalidation by URL and prefix matches.
    pub url: String,
    /// 64 hex characters over everything that selects the entry.
    pub hash: String,
}

/// `authority` lower-cased, without the default port of `scheme` (`:80` for http, `:443` for
/// https), so `Example.com:443` over https and `example.com` share entries.
pub fn normalize_authority(scheme: &str, authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return lower,
    };
    match lower.strip_suffix(default) {
        Some(host) if !host.is_empty() => host.to_string(),
        _ => lower,
    }
}

/// The query as the key sees it: as received (`All`), or its parameters (all or only the
/// listed ones, matched by their raw name) sorted by name, equal names keeping their order.
/// `None` when nothing is left.
pub fn normalize_query(query: Option<&str>, mode: &KeyQuery) -> Option<String> {
    let query = query.filter(|q| !q.is_empty())?;
    let keep: Option<&[String]> = match mode {
        KeyQuery::All => return Some(query.to_string()),
        KeyQuery::Sorted => None,
        KeyQuery::Only(names) => Some(names),
    };
    let name = |p: &str| p.split_once('=').map_or(p, |(n, _)| n).to_string();
    let mut params: Vec<&str> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| keep.is_none_or(|names| names.contains(&name(p))))
        .collect();
    params.sort_by_key(|p| name(p));
    (!params.is_empty()).then(|| params.join("&"))
}

/// The URL key of an authority (already normalized), a path and a query (already normalized).
pub fn url_key(authority: &str, path: &str, query: Option<&str>) -> String {
    match query {
        Some(q) => format!("{authority}{path}?{q}"),
        None => format!("{authority}{path}"),
    }
}

/// Whether the key includes who is asking: `key_identity`, or by default when the request
/// carries credentials or an earlier plugin set `subject`.
pub fn identity_in_key(policy: &Policy, req: &RequestHead) -> bool {
    policy
        .key_identity
        .unwrap_or_else(|| is_authorized(req) || req.context("subject").is_some())
}

/// Feeds `bytes` with its length in front.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

/// Feeds an optional value: a presence byte, then the value.
fn optional(hash: &mut Sha256, value: Option<&[u8]>) {
    match value {
        Some(v) => {
            hash.update([1]);
            field(hash, v);
        }
        None => hash.update([0]),
    }
}

/// The key of `req` under `policy`.
pub fn cache_key(policy: &Policy, req: &RequestHead) -> CacheKey {
    let authority = normalize_authority(&req.scheme, &req.authority);
    let path = req.path_only();
    let query = normalize_query(req.query(), policy.key_query);
    let mut hash = Sha256::new();
    field(&mut hash, b"sluice-cache-v1");
    let method = match req.method.as_str() {
        "GET" | "HEAD" => "GET",
        other => other,
    };
    field(&mut hash, method.as_bytes());
    field(&mut hash, authority.as_bytes());
    field(&mut hash, path.as_bytes());
    optional(&mut hash, query.as_deref().map(str::as_bytes));
    if identity_in_key(policy, req) {
        if let Some(subject) = req.context("subject") {
            field(&mut hash, b"subject");
            field(&mut hash, subject.as_bytes());
        } else {
            field(&mut hash, b"credentials");
            for name in CREDENTIAL_HEADERS {
                optional(&mut hash, normalized_value(&req.headers, name).as_deref());
            }
        }
    } else {
        field(&mut hash, b"shared");
    }
    for name in policy.key_headers {
        field(&mut hash, name.as_bytes());
        optional(&mut hash, normalized_value(&req.headers, name).as_deref());
    }
    CacheKey {
        url: url_key(&authority, path, query.as_deref()),
        hash: hex::encode(hash.finalize()),
    }
}

/// The key of one variant of a response that has `Vary` (§4.1): `base` (a storage key)
/// followed by a hash of the request's normalized values of the `vary` names. A cache that
/// keys variants itself stores the `Vary` names under `base` and the response under this.
pub fn variant_key(base: &str, vary: &[String], headers: &[(String, Vec<u8>)]) -> String {
    let mut hash = Sha256::new();
    for name in vary {
        field(&mut hash, name.to_ascii_lowercase().as_bytes());
        optional(&mut hash, normalized_value(headers, name).as_deref());
    }
    format!("{base} {}", hex::encode(hash.finalize()))
}

#[cfg(test)]
#[path = "key_tests.rs"]
mod tests;
