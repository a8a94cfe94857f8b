//! Builders shared by the unit tests.

use sluice_plugin_sdk::RequestHead;

/// A header list from `(name, value)` pairs.
pub fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec())).collect()
}

/// A request to `https://example.com{path}`.
pub fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
    RequestHead {
        method: method.into(),
        scheme: "https".into(),
        authority: "example.com".into(),
        path: path.into(),
        headers: h(headers),
        client_ip: "127.0.0.1".into(),
        request_id: "r".into(),
        route: "demo".into(),
        context: Vec::new(),
    }
}

/// `req` with chain context entries.
pub fn with_context(mut r: RequestHead, context: &[(&str, &str)]) -> RequestHead {
    r.context = context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    r
}
