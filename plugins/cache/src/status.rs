//! The `Cache-Status` response field (RFC 9211): one list member for this cache, named
//! [`CACHE_NAME`], with the parameters `hit`, `fwd`, `fwd-status`, `ttl`, `stored` and
//! `detail`, in that order, e.g. `sluice; hit; ttl=376` or
//! `sluice; fwd=stale; fwd-status=304; ttl=60; stored`.

/// This cache's name in `Cache-Status`.
pub const CACHE_NAME: &str = "sluice";

/// Why the request went forward (RFC 9211 §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// The cache was configured not to handle this request.
    Bypass,
    /// The request method is not cacheable.
    Method,
    /// Nothing was stored for the URI.
    UriMiss,
    /// Something was stored for the URI, but no variant matched.
    VaryMiss,
    /// The request asked for a fresh answer (`no-cache`, `max-age`, `min-fresh`).
    Request,
    /// The stored response was stale (or needed validation).
    Stale,
}

impl Fwd {
    /// The token RFC 9211 gives it.
    pub fn token(self) -> &'static str {
        match self {
            Fwd::Bypass => "bypass",
            Fwd::Method => "method",
            Fwd::UriMiss => "uri-miss",
            Fwd::VaryMiss => "vary-miss",
            Fwd::Request => "request",
            Fwd::Stale => "stale",
        }
    }
}

/// The parameters of this cache's `Cache-Status` member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheStatus {
    /// Served from the cache without going forward.
    pub hit: bool,
    /// Why it went forward, when it did.
    pub fwd: Option<Fwd>,
    /// The status the next hop answered the forwarded request with.
    pub fwd_status: Option<u16>,
    /// The remaining freshness in seconds; negative when stale.
    pub ttl: Option<i64>,
    /// The response was stored.
    pub stored: bool,
    /// More detail (a reason such as `private` or `too-large`).
    pub detail: Option<String>,
}

/// Whether `s` can be written as a Structured Fields token (RFC 8941 §3.3.4).
fn is_sf_token(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'*')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b))
}

/// `s` as a Structured Fields string: quoted, `\` and `"` escaped, non-printable ASCII and
/// non-ASCII dropped.
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl CacheStatus {
    /// The field value of this member, e.g. `sluice; fwd=uri-miss; fwd-status=200; stored`.
    pub fn value(&self) -> String {
        let mut out = String::from(CACHE_NAME);
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(fwd) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(fwd.token());
        }
        if let Some(status) = self.fwd_status {
            out.push_str(&format!("; fwd-status={status}"));
        }
        if let Some(ttl) = self.ttl {
            out.push_str(&format!("; ttl={ttl}"));
        }
        if self.stored {
            out.push_str("; stored");
        }
        if let Some(detail) = &self.detail {
            out.push_str("; detail=");
            if is_sf_token(detail) {
                out.push_str(detail);
            } else {
                out.push_str(&sf_string(detail));
            }
        }
        out
    }
}

/// The `Cache-Status` to send: this cache's member after the upstream's (RFC 9211 §2: each
/// cache appends its member, the one nearest the client last).
pub fn append(upstream: Option<&str>, ours: &str) -> String {
    match upstream.map(str::trim).filter(|u| !u.is_empty()) {
        Some(u) => format!("{u}, {ours}"),
        None => ours.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc9211_members() {
        let s = |f: fn(&mut CacheStatus)| {
            let mut c = CacheStatus::default();
            f(&mut c);
            c.value()
        };
        assert_eq!(s(|_| {}), "sluice");
        assert_eq!(s(|c| (c.hit, c.ttl) = (true, Some(376))), "sluice; hit; ttl=376");
        assert_eq!(s(|c| (c.hit, c.ttl) = (true, Some(-12))), "sluice; hit; ttl=-12");
        assert_eq!(s(|c| c.fwd = Some(Fwd::UriMiss)), "sluice; fwd=uri-miss");
        assert_eq!(
            s(|c| (c.fwd, c.fwd_status, c.ttl, c.stored) = (Some(Fwd::Stale), Some(304), Some(60), true)),
            "sluice; fwd=stale; fwd-status=304; ttl=60; stored"
        );
        assert_eq!(
            s(|c| (c.fwd, c.detail) = (Some(Fwd::Bypass), Some("range".into()))),
            "sluice; fwd=bypass; detail=range"
        );
        assert_eq!(
            s(|c| c.detail = Some("a b\"\\\u{1}é".into())),
            r#"sluice; detail="a b\"\\""#
        );
        assert_eq!(s(|c| c.detail = Some("1xx".into())), r#"sluice; detail="1xx""#);
        for (fwd, token) in [
            (Fwd::Method, "method"),
            (Fwd::VaryMiss, "vary-miss"),
            (Fwd::Request, "request"),
        ] {
            assert_eq!(fwd.token(), token);
        }
    }

    #[test]
    fn rfc9211_2_our_member_goes_last() {
        assert_eq!(append(None, "sluice; hit"), "sluice; hit");
        assert_eq!(append(Some("  "), "sluice; hit"), "sluice; hit");
        assert_eq!(
            append(Some("OriginCache; hit"), "sluice; hit"),
            "OriginCache; hit, sluice; hit"
        );
    }
}
