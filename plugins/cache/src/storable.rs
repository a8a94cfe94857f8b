//! Whether a shared cache may store a response (RFC 9111 §3, §3.1, §3.5), and which header
//! fields it must leave out when it does. Every "no" has a short reason, used as the
//! `Cache-Status` `detail` (RFC 9211 §2.8).
//!
//! Choices beyond the RFC: responses to `HEAD` are not stored (they carry no body to serve a
//! later `GET`); `206` is not stored (ranges are cut from stored complete responses); a response carrying
//! `Set-Cookie` is not stored unless the route sets `store_set_cookie`, in which case it is
//! stored with every `Set-Cookie` removed (the client that caused the fetch still gets its
//! cookie; later clients get none); `X-Api-Key` counts as `Authorization` for §3.5.

use sluice_plugin_sdk::{Headers, RequestHead};

use crate::directives::CacheControl;
use crate::freshness::heuristically_cacheable;
use crate::policy::Policy;
use crate::variants::Vary;

/// Fields a cache never stores (§3.1: hop-by-hop and proxy-specific fields), plus
/// `set-cookie`, which this cache never stores either.
pub const NEVER_STORED: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authentication-info",
    "set-cookie",
];

/// Status codes whose caching rules this cache implements, for `must-understand` (§5.2.2.3).
pub const UNDERSTOOD_STATUSES: [u16; 21] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 400, 403, 404, 405, 410, 414, 451, 500, 501, 502, 503, 504,
];

/// Credential headers: a request with one is "authorized" for §3.5.
pub const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "x-api-key"];

/// Whether `req` carries credentials (`Authorization` or `X-Api-Key`).
pub fn is_authorized(req: &RequestHead) -> bool {
    CREDENTIAL_HEADERS.iter().any(|h| req.headers.get_bytes(h).is_some())
}

/// What a storable response is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storable {
    /// Lower-case names of the fields to remove before storing: [`NEVER_STORED`], the fields
    /// the response's `Connection` names, and those of `private="…"` and `no-cache="…"`.
    pub strip_headers: Vec<String>,
    /// The response's `Vary` names (lower-case, sorted).
    pub vary: Vec<String>,
}

/// The declared body size: `Ok(None)` without `Content-Length`, `Err` when it is garbage or
/// its lines disagree.
fn content_length(headers: &[(String, Vec<u8>)]) -> Result<Option<u64>, ()> {
    let mut seen = None;
    for line in headers.get_all("content-length") {
        for member in line.split(|&b| b == b',') {
            let text = std::str::from_utf8(member.trim_ascii()).map_err(drop)?;
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            let n = text.parse::<u64>().unwrap_or(u64::MAX);
            if seen.is_some_and(|s| s != n) {
                return Err(());
            }
            seen = Some(n);
        }
    }
    Ok(seen)
}

/// May a shared cache store `status` + `headers`, the response to `req`? (§3, §3.5). `req_cc`
/// and `resp_cc` are the parsed directives of each. The freshness the response ends up with
/// is the caller's concern: a response that is never fresh and never usable stale is pointless
/// to store even when this says yes.
pub fn check(
    policy: &Policy,
    req: &RequestHead,
    req_cc: &CacheControl,
    status: u16,
    headers: &[(String, Vec<u8>)],
    resp_cc: &CacheControl,
) -> Result<Storable, &'static str> {
    match req.method.as_str() {
        "GET" => {}
        "HEAD" => return Err("head-response"),
        _ => return Err("method"),
    }
    if req_cc.no_store {
        return Err("request-no-store");
    }
    let understood = UNDERSTOOD_STATUSES.contains(&status);
    if resp_cc.must_understand {
        if !understood {
            return Err("must-understand");
        }
    } else if resp_cc.no_store {
        return Err("no-store");
    }
    if !(200..=599).contains(&status) || status == 206 || status == 304 {
        return Err("status");
    }
    if resp_cc.private_all() {
        return Err("private");
    }
    if is_authorized(req) {
        if !policy.cache_authorized {
            return Err("authorized");
        }
        if !(resp_cc.public || resp_cc.s_maxage.is_some() || resp_cc.must_revalidate) {
            return Err("authorization");
        }
    }
    if headers.get_bytes("set-cookie").is_some() && !policy.store_set_cookie {
        return Err("set-cookie");
    }
    let vary = match Vary::parse(headers) {
        Vary::Fields(names) => names,
        Vary::Star => return Err("vary-star"),
        Vary::Invalid => return Err("vary-invalid"),
    };
    let explicit = resp_cc.public
        || resp_cc.max_age.is_some()
        || resp_cc.s_maxage.is_some()
        || (headers.get_bytes("expires").is_some() && !resp_cc.targeted);
    if !explicit && !heuristically_cacheable(status) {
        return Err("uncacheable-status");
    }
    match content_length(headers) {
        Err(()) => return Err("content-length"),
        Ok(Some(n)) if n > policy.max_object_bytes => return Err("too-large"),
        Ok(_) => {}
    }
    let mut strip: Vec<String> = NEVER_STORED.iter().map(|s| s.to_string()).collect();
    for line in headers.get_all("connection") {
        strip.extend(
            String::from_utf8_lossy(line)
                .split(',')
                .map(|n| n.trim().to_ascii_lowercase())
                .filter(|n| !n.is_empty()),
        );
    }
    strip.extend(resp_cc.fields_to_strip());
    strip.sort();
    strip.dedup();
    Ok(Storable {
        strip_headers: strip,
        vary,
    })
}

#[cfg(test)]
#[path = "storable_tests.rs"]
mod tests;
