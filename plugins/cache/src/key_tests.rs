use super::*;
use crate::settings::Settings;
use crate::testutil::{req, with_context};

fn settings(json: &str) -> Settings {
    Settings::from_json(json).unwrap()
}

fn key(s: &Settings, r: &RequestHead) -> CacheKey {
    cache_key(&s.policy(r.path_only()), r)
}

#[test]
fn authority_normalization() {
    for (scheme, authority, want) in [
        ("https", "Example.COM:443", "example.com"),
        ("https", "example.com:80", "example.com:80"),
        ("http", "example.com:80", "example.com"),
        ("http", "[::1]:80", "[::1]"),
        ("http", ":80", ":80"),
        ("ftp", "Example.com:21", "example.com:21"),
    ] {
        assert_eq!(normalize_authority(scheme, authority), want, "{scheme} {authority}");
    }
}

#[test]
fn query_modes() {
    let only = |names: &[&str]| KeyQuery::Only(names.iter().map(|n| n.to_string()).collect());
    for (query, mode, want) in [
        (Some("b=2&a=1"), KeyQuery::All, Some("b=2&a=1")),
        (Some(""), KeyQuery::All, None),
        (None, KeyQuery::Sorted, None),
        (Some("b=2&a=1"), KeyQuery::Sorted, Some("a=1&b=2")),
        (Some("a=2&b&a=1&&"), KeyQuery::Sorted, Some("a=2&a=1&b")),
        (Some("utm=x&page=2&q=z"), only(&["page", "q"]), Some("page=2&q=z")),
        (Some("q=z&page=2"), only(&["page", "q"]), Some("page=2&q=z")),
        (Some("utm=x"), only(&["page"]), None),
        (Some("a=1"), only(&[]), None),
        (Some("Page=1"), only(&["page"]), None),
    ] {
        assert_eq!(normalize_query(query, &mode).as_deref(), want, "{query:?} {mode:?}");
    }
}

#[test]
fn the_url_key_is_plain_and_the_hash_bounded() {
    let s = settings(r#"{"key_query": "sorted"}"#);
    let k = key(&s, &req("GET", "/items?b=2&a=1", &[]));
    assert_eq!(k.url, "example.com/items?a=1&b=2");
    assert_eq!(k.hash.len(), 64);
    assert!(k.hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let huge = key(&s, &req("GET", &format!("/{}", "x".repeat(100_000)), &[]));
    assert_eq!(huge.hash.len(), 64);
}

#[test]
fn what_tells_keys_apart() {
    let s = settings(r#"{"key_headers": ["Accept"], "key_query": "sorted"}"#);
    let base = key(&s, &req("GET", "/a?x=1&y=2", &[("accept", "text/html")]));
    // Same key: HEAD shares GET's; sorted query; header whitespace; headers not configured.
    for same in [
        req("HEAD", "/a?x=1&y=2", &[("accept", "text/html")]),
        req("GET", "/a?y=2&x=1", &[("accept", "text/html")]),
        req("GET", "/a?x=1&y=2", &[("Accept", " text/html "), ("user-agent", "z")]),
    ] {
        assert_eq!(key(&s, &same), base, "{} {} {:?}", same.method, same.path, same.headers);
    }
    for other in [
        req("POST", "/a?x=1&y=2", &[("accept", "text/html")]),
        req("GET", "/a?x=1&y=3", &[("accept", "text/html")]),
        req("GET", "/b?x=1&y=2", &[("accept", "text/html")]),
        req("GET", "/a?x=1&y=2", &[("accept", "application/json")]),
        req("GET", "/a?x=1&y=2", &[]),
        req("GET", "/a?x=1&y=2", &[("accept", "")]),
    ] {
        assert_ne!(
            key(&s, &other).hash,
            base.hash,
            "{} {} {:?}",
            other.method,
            other.path,
            other.headers
        );
    }
    let mut elsewhere = req("GET", "/a?x=1&y=2", &[("accept", "text/html")]);
    elsewhere.authority = "other.example".into();
    assert_ne!(key(&s, &elsewhere), base);
}

#[test]
fn identity_is_in_the_key_by_default_only_for_callers_with_credentials() {
    let s = settings("{}");
    let anonymous = key(&s, &req("GET", "/a", &[]));
    let alice = key(
        &s,
        &with_context(req("GET", "/a", &[("x-api-key", "k1")]), &[("subject", "alice")]),
    );
    let bob = key(
        &s,
        &with_context(req("GET", "/a", &[("x-api-key", "k2")]), &[("subject", "bob")]),
    );
    let alice_other_key = key(
        &s,
        &with_context(req("GET", "/a", &[("x-api-key", "k3")]), &[("subject", "alice")]),
    );
    let bearer1 = key(&s, &req("GET", "/a", &[("authorization", "Bearer 1")]));
    let bearer2 = key(&s, &req("GET", "/a", &[("authorization", "Bearer 2")]));
    let all = [&anonymous, &alice, &bob, &bearer1, &bearer2];
    for (i, x) in all.iter().enumerate() {
        for y in &all[i + 1..] {
            assert_ne!(x.hash, y.hash);
        }
    }
    assert_eq!(alice, alice_other_key, "the subject, not the credential, identifies");
    assert_eq!(alice.url, anonymous.url, "invalidation by URL reaches every identity");
    // Explicitly off: a credentialed request shares the anonymous entry (the response must
    // still pass §3.5 to be stored).
    let shared = settings(r#"{"key_identity": false}"#);
    assert_eq!(
        key(&shared, &req("GET", "/a", &[("authorization", "Bearer 1")])),
        key(&shared, &req("GET", "/a", &[]))
    );
    // Explicitly on: anonymous callers have their own (anonymous) identity.
    let on = settings(r#"{"key_identity": true}"#);
    assert_ne!(key(&on, &req("GET", "/a", &[])), key(&shared, &req("GET", "/a", &[])));
}

#[test]
fn rfc9111_4_1_variant_keys() {
    let vary = vec!["accept-encoding".to_string()];
    let k = |pairs: &[(&str, &str)]| variant_key("base", &vary, &crate::testutil::h(pairs));
    assert!(k(&[]).starts_with("base "));
    assert_eq!(
        k(&[("accept-encoding", "gzip, br")]),
        k(&[("Accept-Encoding", "gzip,br")])
    );
    assert_ne!(k(&[("accept-encoding", "gzip")]), k(&[("accept-encoding", "br")]));
    assert_ne!(k(&[("accept-encoding", "")]), k(&[]));
}
