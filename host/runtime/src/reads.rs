//! What an instance declared it reads of the request head (`head.reads`, from `init`), and the
//! borrowed view of a head with only that, which the instance lowers instead of the whole head.

use sluice_bindings::sluice::plugin::head::MemoKey;
use sluice_bindings::{RequestHead, RequestHeadView};

/// The most names either list of a declaration may hold.
pub const MAX_READS: usize = 64;

/// The request headers (names, matched without regard to case) and context entries (keys) an
/// instance's hooks read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reads {
    headers: Vec<String>,
    context: Vec<String>,
}

impl Reads {
    /// A declaration of `headers` (any case) and `context` keys.
    pub fn new(headers: Vec<String>, context: Vec<String>) -> Self {
        Reads { headers, context }
    }

    /// Whether the declaration names header `name` (matched without regard to case).
    pub fn reads_header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether the declaration names context entry `key`.
    pub fn reads_context(&self, key: &str) -> bool {
        self.context.iter().any(|k| k == key)
    }

    /// `req` as the instance is passed it: every field but the headers and context entries
    /// the declaration leaves out, borrowed, in the order `req` has them.
    pub fn view<'a>(&self, req: &'a RequestHead) -> RequestHeadView<'a> {
        RequestHeadView {
            method: &req.method,
            scheme: &req.scheme,
            authority: &req.authority,
            path: &req.path,
            headers: req
                .headers
                .iter()
                .filter(|(name, _)| self.reads_header(name))
                .map(|(name, value)| (name.as_str(), value.as_slice()))
                .collect(),
            client_ip: &req.client_ip,
            request_id: &req.request_id,
            route: &req.route,
            context: req
                .context
                .iter()
                .filter(|(key, _)| self.reads_context(key))
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect(),
        }
    }

    /// Appends to `out` what a reused verdict (`head.memo`) is keyed by: the values of the
    /// declared headers and context entries, each name's in the order `req` has them, then the
    /// parts of the head `key` names. Every value is length-prefixed and every name's values
    /// closed, so two different heads never give the same bytes.
    pub fn memo_key(&self, req: &RequestHead, key: MemoKey, out: &mut Vec<u8>) {
        fn push(out: &mut Vec<u8>, value: &[u8]) {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        const END: [u8; 4] = u32::MAX.to_le_bytes();
        for name in &self.headers {
            for (_, value) in req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)) {
                push(out, value);
            }
            out.extend_from_slice(&END);
        }
        for wanted in &self.context {
            for (_, value) in req.context.iter().filter(|(k, _)| k == wanted) {
                push(out, value.as_bytes());
            }
            out.extend_from_slice(&END);
        }
        for (flag, part) in [
            (MemoKey::METHOD, &req.method),
            (MemoKey::AUTHORITY, &req.authority),
            (MemoKey::PATH, &req.path),
            (MemoKey::CLIENT_IP, &req.client_ip),
        ] {
            if key.contains(flag) {
                push(out, part.as_bytes());
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A head with four headers (one name twice) and two context entries.
    pub(crate) fn head() -> RequestHead {
        RequestHead {
            method: "GET".into(),
            scheme: "https".into(),
            authority: "api.example".into(),
            path: "/v1?q=1".into(),
            headers: vec![
                ("accept".into(), b"*/*".to_vec()),
                ("x-api-key".into(), b"sk_1".to_vec()),
                ("cookie".into(), b"a=1".to_vec()),
                ("x-api-key".into(), b"sk_2".to_vec()),
            ],
            client_ip: "10.0.0.9".into(),
            request_id: "req-1".into(),
            route: "api".into(),
            context: vec![("tier".into(), "gold".into()), ("subject".into(), "ann".into())],
        }
    }

    #[test]
    fn a_view_keeps_the_declared_headers_and_entries_in_order_and_every_other_field() {
        let reads = Reads::new(vec!["X-API-Key".into(), "absent".into()], vec!["tier".into()]);
        let req = head();
        let view = reads.view(&req);
        assert_eq!(
            view.headers,
            vec![("x-api-key", &b"sk_1"[..]), ("x-api-key", &b"sk_2"[..])]
        );
        assert_eq!(view.context, vec![("tier", "gold")]);
        assert_eq!(
            (view.method, view.scheme, view.authority, view.path),
            ("GET", "https", "api.example", "/v1?q=1")
        );
        assert_eq!(
            (view.client_ip, view.request_id, view.route),
            ("10.0.0.9", "req-1", "api")
        );
    }

    #[test]
    fn an_empty_declaration_passes_no_headers_or_entries() {
        let req = head();
        let view = Reads::new(Vec::new(), Vec::new()).view(&req);
        assert!(view.headers.is_empty() && view.context.is_empty());
        assert_eq!(view.path, "/v1?q=1");
    }
}
