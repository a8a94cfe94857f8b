//! The key that identifies identical requests: a SHA-256 over the method, the path and query,
//! the caller's identity and the configured headers, each length-prefixed so that no two
//! different requests write the same bytes.

use sha2::{Digest, Sha256};
use sluice_plugin_sdk::{Headers, RequestExt, RequestHead};

/// Credential headers that identify a caller when no earlier plugin set a `subject`.
const CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "x-api-key"];

/// Conditional request headers, always part of the key: a 304 or 412 answers one caller's
/// validators, never another's.
const CONDITIONAL_HEADERS: [&str; 5] = [
    "if-none-match",
    "if-modified-since",
    "if-match",
    "if-unmodified-since",
    "if-range",
];

/// Who is asking, as far as the chain knows.
#[derive(Debug, PartialEq, Eq)]
pub enum Identity<'a> {
    /// The `subject` an earlier plugin (auth) put in the chain context.
    Subject(&'a str),
    /// The raw credential headers (hashed into the key, never stored as they are).
    Credential(Vec<(&'static str, &'a [u8])>),
    /// Nobody in particular.
    Anonymous,
}

/// The identity of `req`: the context `subject`, else the credential headers, else anonymous.
pub fn identity(req: &RequestHead) -> Identity<'_> {
    if let Some(subject) = req.context("subject") {
        return Identity::Subject(subject);
    }
    let credentials: Vec<_> = CREDENTIAL_HEADERS
        .iter()
        .flat_map(|name| req.headers.get_all(name).map(move |v| (*name, v)))
        .collect();
    if credentials.is_empty() {
        Identity::Anonymous
    } else {
        Identity::Credential(credentials)
    }
}

/// Feeds `bytes` with its length in front.
fn field(hash: &mut Sha256, bytes: &[u8]) {
    hash.update((bytes.len() as u64).to_le_bytes());
    hash.update(bytes);
}

/// The key of `req`: 64 hex characters, whatever the size of what went into it.
pub fn key(req: &RequestHead, headers: &[String]) -> String {
    let mut hash = Sha256::new();
    field(&mut hash, b"sluice-dedup-v1");
    field(&mut hash, req.method.as_bytes());
    field(&mut hash, req.path.as_bytes());
    match identity(req) {
        Identity::Subject(subject) => {
            field(&mut hash, b"subject");
            field(&mut hash, subject.as_bytes());
        }
        Identity::Credential(credentials) => {
            field(&mut hash, b"credential");
            for (name, value) in credentials {
                field(&mut hash, name.as_bytes());
                field(&mut hash, value);
            }
        }
        Identity::Anonymous => field(&mut hash, b"anonymous"),
    }
    let always = CONDITIONAL_HEADERS.iter().copied();
    for name in always.chain(headers.iter().map(String::as_str)) {
        field(&mut hash, name.as_bytes());
        let values: Vec<&[u8]> = req.headers.get_all(name).collect();
        hash.update((values.len() as u64).to_le_bytes());
        for value in values {
            field(&mut hash, value);
        }
    }
    hex::encode(hash.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn head(method: &str, path: &str, headers: &[(&str, &str)], context: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            method: method.into(),
            scheme: "http".into(),
            authority: "example".into(),
            path: path.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            client_ip: "127.0.0.1".into(),
            request_id: "r".into(),
            route: "demo".into(),
            context: context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn k(req: &RequestHead) -> String {
        key(req, &["accept".to_string()])
    }

    #[test]
    fn identical_requests_have_the_same_bounded_key() {
        let a = head("GET", "/a?x=1", &[("accept", "text/html")], &[]);
        let b = head(
            "GET",
            "/a?x=1",
            &[("accept", "text/html"), ("user-agent", "other")],
            &[],
        );
        assert_eq!(k(&a), k(&b), "headers not configured do not count");
        assert_eq!(k(&a).len(), 64);
        let huge = head(
            "GET",
            &format!("/{}", "x".repeat(100_000)),
            &[],
            &[("subject", &"s".repeat(10_000))],
        );
        assert_eq!(k(&huge).len(), 64);
    }

    #[test]
    fn method_path_query_and_configured_headers_tell_requests_apart() {
        let base = k(&head("GET", "/a?x=1", &[("accept", "text/html")], &[]));
        for other in [
            head("HEAD", "/a?x=1", &[("accept", "text/html")], &[]),
            head("GET", "/a?x=2", &[("accept", "text/html")], &[]),
            head("GET", "/b?x=1", &[("accept", "text/html")], &[]),
            head("GET", "/a?x=1", &[("accept", "application/json")], &[]),
            head("GET", "/a?x=1", &[], &[]),
            head(
                "GET",
                "/a?x=1",
                &[("accept", "text/html"), ("accept", "text/html")],
                &[],
            ),
            head(
                "GET",
                "/a?x=1",
                &[("accept", "text/html"), ("if-none-match", "\"v1\"")],
                &[],
            ),
        ] {
            assert_ne!(k(&other), base, "{} {} {:?}", other.method, other.path, other.headers);
        }
    }

    #[test]
    fn identities_never_share_a_key() {
        let alice = k(&head("GET", "/a", &[], &[("subject", "alice")]));
        let bob = k(&head("GET", "/a", &[], &[("subject", "bob")]));
        let anonymous = k(&head("GET", "/a", &[], &[]));
        let key_a = k(&head("GET", "/a", &[("x-api-key", "sk_a")], &[]));
        let key_b = k(&head("GET", "/a", &[("x-api-key", "sk_b")], &[]));
        let bearer = k(&head("GET", "/a", &[("authorization", "Bearer sk_a")], &[]));
        let all = [&alice, &bob, &anonymous, &key_a, &key_b, &bearer];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        // The subject wins over the credential it came from: one caller, one key.
        let via_key = k(&head("GET", "/a", &[("x-api-key", "sk_a")], &[("subject", "alice")]));
        assert_eq!(via_key, alice);
    }

    #[test]
    fn fields_cannot_run_into_each_other() {
        let a = k(&head("GET", "/ab", &[], &[("subject", "c")]));
        let b = k(&head("GET", "/a", &[], &[("subject", "bc")]));
        assert_ne!(a, b);
    }
}
