//! Invalidation by unsafe methods (RFC 9111 §4.4): a 2xx or 3xx answer to a method other than
//! `GET`, `HEAD`, `OPTIONS` and `TRACE` (unknown methods included) invalidates the target URI,
//! and the `Location` and `Content-Location` URIs when they have the same authority (the key
//! does not include the scheme, so `http` and `https` count alike).
//!
//! The result is storage-key prefixes for the host's `invalidate-prefix` (see [`crate::key`]):
//! each URI yields `"{authority}{path} "` and `"{authority}{path}?"`, so every query variant
//! of the path goes too — more than the RFC requires, which it allows.

use sluice_plugin_sdk::{Headers, RequestExt, RequestHead};

use crate::key::normalize_authority;

/// Methods defined as safe (RFC 9110 §9.2.1); every other method is unsafe.
const SAFE_METHODS: [&str; 4] = ["GET", "HEAD", "OPTIONS", "TRACE"];

/// `path` with `.` and `..` segments removed (RFC 3986 §5.2.4); `path` starts with `/`.
pub fn remove_dot_segments(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *segment {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// Resolves a `Location` / `Content-Location` reference against the request; returns the
/// normalized authority and path (without query and fragment), or `None` for a reference this
/// cache cannot place (another scheme, userinfo, garbage).
pub fn resolve(req: &RequestHead, reference: &str) -> Option<(String, String)> {
    let reference = reference.trim();
    let reference = reference.split('#').next().unwrap_or("");
    let reference = reference.split('?').next().unwrap_or("");
    if reference
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    let (scheme, rest) = match reference.split_once("://") {
        Some((scheme, rest)) if !scheme.contains('/') => (scheme.to_ascii_lowercase(), Some(rest)),
        _ => (req.scheme.to_ascii_lowercase(), reference.strip_prefix("//")),
    };
    let first_segment = reference.split('/').next().unwrap_or("");
    if rest.is_none() && first_segment.contains(':') {
        // `mailto:x`, `urn:y`: another scheme.
        return None;
    }
    if !matches!(scheme.as_str(), "http" | "https") {
        return None;
    }
    if let Some(rest) = rest {
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| (&rest[..i], &rest[i..]));
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        return Some((normalize_authority(&scheme, authority), remove_dot_segments(path)));
    }
    let authority = normalize_authority(&req.scheme, &req.authority);
    let base = req.path_only();
    let path = if reference.starts_with('/') {
        reference.to_string()
    } else if reference.is_empty() {
        base.to_string()
    } else {
        let dir = base.rfind('/').map_or("/", |i| &base[..=i]);
        format!("{dir}{reference}")
    };
    Some((authority, remove_dot_segments(&path)))
}

/// The paths (without query) a response with `status` and `headers` to `req` invalidates:
/// the target's, and the same-origin `Location` and `Content-Location`. Each path's stored
/// responses go, whatever their query (the host's `invalidate-target` on the path and
/// `invalidate-prefix` on the path and `?`).
pub fn invalidations(req: &RequestHead, status: u16, headers: &[(String, Vec<u8>)]) -> Vec<String> {
    if SAFE_METHODS.contains(&req.method.as_str()) || !(200..400).contains(&status) {
        return Vec::new();
    }
    let own = normalize_authority(&req.scheme, &req.authority);
    let mut targets = vec![(own.clone(), remove_dot_segments(req.path_only()))];
    for name in ["location", "content-location"] {
        let resolved = headers
            .get_str(name)
            .and_then(|v| resolve(req, v))
            .filter(|(authority, _)| *authority == own);
        targets.extend(resolved);
    }
    let mut out: Vec<String> = targets.into_iter().map(|(_, path)| path).collect();
    let mut seen = Vec::new();
    out.retain(|p| {
        let fresh = !seen.contains(p);
        seen.push(p.clone());
        fresh
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{h, req};

    #[test]
    fn rfc3986_5_2_4_dot_segments() {
        for (input, want) in [
            ("/", "/"),
            ("/a/b/c", "/a/b/c"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/../c", "/a/c"),
            ("/../../x", "/x"),
            ("/a/.", "/a/"),
            ("/a//b", "/a//b"),
        ] {
            assert_eq!(remove_dot_segments(input), want, "{input}");
        }
    }

    #[test]
    fn references_resolve_against_the_request() {
        let r = req("POST", "/items/5/edit?x=1", &[]);
        for (reference, want) in [
            ("/items/5", Some(("example.com", "/items/5"))),
            ("https://EXAMPLE.com:443/items/6?y#z", Some(("example.com", "/items/6"))),
            ("http://example.com/a", Some(("example.com", "/a"))),
            ("//example.com/b", Some(("example.com", "/b"))),
            ("https://other.example/items", Some(("other.example", "/items"))),
            ("https://example.com", Some(("example.com", "/"))),
            ("view", Some(("example.com", "/items/5/view"))),
            ("../6", Some(("example.com", "/items/6"))),
            ("", Some(("example.com", "/items/5/edit"))),
            ("ftp://example.com/a", None),
            ("https://user@example.com/a", None),
            ("/a b", None),
            ("mailto:a@example.com", None),
        ] {
            let got = resolve(&r, reference);
            let got = got.as_ref().map(|(a, p)| (a.as_str(), p.as_str()));
            assert_eq!(got, want, "{reference:?}");
        }
    }

    #[test]
    fn rfc9111_4_4_unsafe_methods_invalidate() {
        let headers = h(&[
            ("location", "/items/9"),
            ("content-location", "https://other.example/x"),
        ]);
        let got = invalidations(&req("POST", "/items?page=2", &[]), 201, &headers);
        assert_eq!(got, ["/items", "/items/9"]);
        for method in ["PUT", "PATCH", "DELETE", "PURGE", "FROBNICATE"] {
            let got = invalidations(&req(method, "/a", &[]), 204, &[]);
            assert_eq!(got, ["/a"], "{method}");
        }
        // Same-origin Content-Location equal to the target is not listed twice.
        let got = invalidations(&req("PUT", "/a", &[]), 200, &h(&[("content-location", "/a")]));
        assert_eq!(got, ["/a"]);
    }

    #[test]
    fn rfc9111_4_4_safe_methods_and_errors_do_not() {
        for method in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(invalidations(&req(method, "/a", &[]), 200, &[]).is_empty(), "{method}");
        }
        for status in [100, 199, 400, 404, 500, 503] {
            assert!(
                invalidations(&req("POST", "/a", &[]), status, &[]).is_empty(),
                "{status}"
            );
        }
        assert_eq!(invalidations(&req("POST", "/a", &[]), 399, &[]), ["/a"]);
    }
}
