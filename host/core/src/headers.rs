//! Header handling on the way through: hop-by-hop removal, forwarding headers, Host checks,
//! and conversion to and from the plugins' header lists.

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Whether `name` belongs to one connection and is never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    use hyper::header::{CONNECTION, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
    [
        &CONNECTION,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
        &UPGRADE,
        &PROXY_AUTHENTICATE,
        &PROXY_AUTHORIZATION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
    ]
    .contains(&name)
}

/// The `Via` value this gateway adds.
pub const VIA: &str = "1.1 sluice";

/// Why a request path must be refused (400) rather than routed: dot segments (`.` and `..`,
/// also percent-encoded) and encoded slashes or backslashes would let a request match one
/// route here and mean another path to the upstream once it normalises or decodes them.
pub fn unsafe_path(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    // The common path has no '%', no '\\' and no segment starting with '.': nothing to decode.
    let suspicious = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'%' || b == b'\\' || (b == b'.' && (i == 0 || bytes[i - 1] == b'/')));
    if !suspicious {
        return None;
    }
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || path.contains('\\') {
        return Some("the path contains an encoded slash or a backslash");
    }
    let dot = lower.split('/').any(|seg| {
        let decoded = seg.replace("%2e", ".");
        decoded == "." || decoded == ".."
    });
    dot.then_some("the path contains '.' or '..' segments")
}

/// Why a request's `Host` must be refused (400) rather than routed (RFC 9112 §3.2): an
/// HTTP/1.1 request without one, any request with more than one, or one whose value is not
/// `host[:port]` (a user-info part, a path, characters no host has). An empty value is valid
/// (a target with no authority); HTTP/1.0 and HTTP/2 requests may omit the field (HTTP/2
/// carries `:authority` instead).
pub fn bad_host(version: hyper::Version, headers: &HeaderMap) -> Option<&'static str> {
    let mut hosts = headers.get_all(hyper::header::HOST).iter();
    let Some(host) = hosts.next() else {
        return (version == hyper::Version::HTTP_11).then_some("an HTTP/1.1 request must carry a Host header");
    };
    if hosts.next().is_some() {
        return Some("the request carries more than one Host header");
    }
    let value = host.as_bytes();
    if value.is_empty() {
        return None;
    }
    (!is_host_and_port(value)).then_some("the Host header is not a host and optional port")
}

/// Whether `value` is `host[:port]` (RFC 3986 §3.2.2–3): an IP literal in brackets, or a name
/// or IPv4 address of unreserved characters, sub-delims and percent signs; then nothing, or a
/// colon and digits. Byte classes only: this runs on every request.
fn is_host_and_port(value: &[u8]) -> bool {
    let (host_ok, rest) = match value.strip_prefix(b"[") {
        Some(literal) => match literal.iter().position(|&b| b == b']') {
            Some(end) => (
                end > 0
                    && literal[..end]
                        .iter()
                        .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
                &literal[end + 1..],
            ),
            None => return false,
        },
        None => {
            let end = value.iter().position(|&b| b == b':').unwrap_or(value.len());
            let name = &value[..end];
            let allowed = |b: &u8| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=%".contains(b);
            (end > 0 && name.iter().all(allowed), &value[end..])
        }
    };
    host_ok && (rest.is_empty() || (rest[0] == b':' && rest[1..].iter().all(u8::is_ascii_digit)))
}

/// Removes hop-by-hop headers, including those the `Connection` header names. One pass over
/// the names; nothing is allocated when there is nothing to remove.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if !headers.keys().any(hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    let listed: Vec<HeaderName> = headers.keys().filter(|n| hop_by_hop(n)).cloned().collect();
    for name in listed {
        headers.remove(name);
    }
}

/// Sets `X-Forwarded-For` (appending the client), `-Proto`, `-Host` and `Via`.
pub fn add_forwarding(headers: &mut HeaderMap, client: IpAddr, proto: &str, host: Option<&str>) {
    let xff = match headers.get(&X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {}", ip_text(client)),
        None => ip_text(client),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    headers.insert(
        X_FORWARDED_PROTO.clone(),
        HeaderValue::from_static(if proto == "https" { "https" } else { "http" }),
    );
    if let Some(host) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert(X_FORWARDED_HOST.clone(), host);
    }
    headers.append(hyper::header::VIA, HeaderValue::from_static(VIA));
}

/// `ip` as text, as its `Display` writes it; an IPv4 address (every request's client on most
/// deployments) without the formatting machinery.
pub fn ip_text(ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(itoa::Buffer::new().format(octet));
    }
    text
}

/// The headers as a plugin sees them: lower-case names, raw values, wire order.
pub fn to_plugin(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str().to_string(), v.as_bytes().to_vec()))
        .collect()
}

/// A header map from a plugin's header list (already checked by the runtime; anything
/// invalid is skipped).
pub fn from_plugin(list: Vec<(String, Vec<u8>)>) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(list.len());
    for (name, value) in list {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(&value)) {
            map.append(n, v);
        }
    }
    map
}

/// Brings the fields named in `names` (lower case) of `map` in line with `list`, a plugin
/// header list made from `map` and then edited (its names lower case, as [`to_plugin`] and the
/// runtime's edits leave them): each named field is removed and appended again with the list's
/// values (none when the edits removed it). The other fields of `map` are kept as they are, so
/// a request the plugins edited is not rebuilt field by field.
pub fn sync_from_plugin(map: &mut HeaderMap, list: &[(String, Vec<u8>)], names: &[String]) {
    for name in names {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            continue;
        };
        map.remove(&name);
        for (_, value) in list.iter().filter(|(n, _)| n == name.as_str()) {
            if let Ok(value) = HeaderValue::from_bytes(value) {
                map.append(name.clone(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_text_is_what_display_writes() {
        for ip in [
            "127.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "10.20.3.40",
            "::1",
            "2001:db8::8a2e:370:7334",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn syncing_the_edited_names_gives_the_map_the_list_would() {
        let mut map = HeaderMap::new();
        for (n, v) in [("a", "1"), ("b", "2"), ("b", "3"), ("c", "4"), ("e", "5")] {
            map.append(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        // As plugins left it: `a` removed, `b` set once, `d` appended, `e` appended to.
        let mut list = to_plugin(&map);
        list.retain(|(n, _)| n != "a" && n != "b");
        for (n, v) in [("b", "6"), ("d", "7"), ("e", "8")] {
            list.push((n.to_string(), v.as_bytes().to_vec()));
        }
        let names: Vec<String> = ["a", "b", "d", "e"].map(String::from).into();
        sync_from_plugin(&mut map, &list, &names);
        let sorted = |m: &HeaderMap| {
            let mut all: Vec<(String, Vec<u8>)> = to_plugin(m);
            all.sort();
            all
        };
        assert_eq!(sorted(&map), sorted(&from_plugin(list)));
        assert_eq!(
            map.get_all("e").iter().collect::<Vec<_>>(),
            ["5", "8"],
            "order within a field kept"
        );
    }

    #[test]
    fn hosts_are_required_once_and_must_be_hosts() {
        use hyper::Version;
        let with = |values: &[&'static str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(hyper::header::HOST, HeaderValue::from_static(v));
            }
            h
        };
        for ok in [
            &["example.com"][..],
            &["example.com:8080"],
            &["127.0.0.1:1"],
            &["[::1]:80"],
            &[""],
        ] {
            assert_eq!(bad_host(Version::HTTP_11, &with(ok)), None, "{ok:?}");
        }
        assert!(bad_host(Version::HTTP_11, &with(&[])).is_some());
        assert_eq!(bad_host(Version::HTTP_10, &with(&[])), None);
        assert_eq!(bad_host(Version::HTTP_2, &with(&[])), None);
        for bad in [
            &["a.example", "b.example"][..],
            &["user@example.com"],
            &["example.com/path"],
            &["exa mple.com"],
            &["example.com:port"],
        ] {
            assert!(bad_host(Version::HTTP_11, &with(bad)).is_some(), "{bad:?}");
        }
        assert!(bad_host(Version::HTTP_10, &with(&["a", "b"])).is_some());
    }

    #[test]
    fn paths_that_mean_something_else_upstream_are_refused() {
        for bad in [
            "/api/../admin",
            "/api/./x",
            "/api/%2E%2e/admin",
            "/a/..",
            "/api%2Fadmin",
            "/a\\b",
        ] {
            assert!(unsafe_path(bad).is_some(), "{bad}");
        }
        for good in ["/", "/api/v1/items", "/a.b/c..d", "/file.tar.gz", "/.well-known/x"] {
            assert!(unsafe_path(good).is_none(), "{good}");
        }
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("connection", HeaderValue::from_static("keep-alive, x-secret"));
        h.insert("x-secret", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn forwarding_headers_append_the_client() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        add_forwarding(&mut h, "127.0.0.1".parse().unwrap(), "http", Some("api.example"));
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "api.example");
        assert_eq!(h["via"], VIA);
    }
}
