//! Header handling on the way through: hop-by-hop removal, forwarding headers, request ids,
//! and conversion to and from the plugins' header lists.

use std::net::IpAddr;

use hyper::HeaderMap;
use hyper::header::{HeaderName, HeaderValue};

/// Headers that belong to one connection and are never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
    "proxy-authorization",
];

/// The longest client-supplied request id that is kept.
const MAX_REQUEST_ID: usize = 128;

/// The `Via` value this gateway adds.
pub const VIA: &str = "1.1 sluice";

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
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
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn valid_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The request's id: the client's `X-Correlation-ID` or `X-Request-ID` when it is at most 128
/// safe characters (`[A-Za-z0-9._:-]`), otherwise a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    ["x-correlation-id", "x-request-id"]
        .iter()
        .filter_map(|n| headers.get(*n))
        .filter_map(|v| v.to_str().ok())
        .find(|v| valid_request_id(v))
        .map_or_else(generate_id, str::to_string)
}

/// A new random request id: 32 hex characters.
pub fn generate_id() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// Sets `X-Forwarded-For` (appending the client), `-Proto`, `-Host` and `Via`.
pub fn add_forwarding(headers: &mut HeaderMap, client: IpAddr, proto: &str, host: Option<&str>) {
    let xff = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {client}"),
        None => client.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&xff) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if proto == "https" { "https" } else { "http" }),
    );
    if let Some(host) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
        headers.insert("x-forwarded-host", host);
    }
    headers.append(hyper::header::VIA, HeaderValue::from_static(VIA));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_request_ids_are_kept_only_when_safe() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", HeaderValue::from_static("abc-123.x:y_z"));
        assert_eq!(request_id(&h), "abc-123.x:y_z");
        h.insert("x-correlation-id", HeaderValue::from_static("corr-1"));
        assert_eq!(request_id(&h), "corr-1", "X-Correlation-ID wins");
        h.insert("x-correlation-id", HeaderValue::from_static("has space"));
        assert_eq!(request_id(&h), "abc-123.x:y_z");
        h.insert("x-request-id", HeaderValue::from_str(&"a".repeat(129)).unwrap());
        h.remove("x-correlation-id");
        let id = request_id(&h);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
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
