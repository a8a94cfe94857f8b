use super::*;
use crate::testutil::decide::*;
use crate::testutil::req;

#[test]
fn on_request_rfc9111_4_table() {
    let s = settings("{}");
    let fresh = stored(200, &[("cache-control", "max-age=60"), ("etag", "\"v1\"")]);
    let swr = stored(
        200,
        &[
            ("cache-control", "max-age=60, stale-while-revalidate=30"),
            ("etag", "\"v1\""),
        ],
    );
    let strict = stored(
        200,
        &[("cache-control", "max-age=60, must-revalidate"), ("etag", "\"v1\"")],
    );
    let aged = stored(200, &[("cache-control", "max-age=60"), ("age", "30")]);
    let invalid = stored(200, &[("cache-control", "max-age=abc")]);
    let star = stored(200, &[("cache-control", "max-age=60"), ("vary", "*")]);
    let heuristic = stored(200, &[("last-modified", &date(T0 - 1000 * S))]);
    let get = req("GET", "/a", &[]);
    let with = |headers: &[(&str, &str)]| req("GET", "/a", headers);
    let stale_hit = RequestAction::Hit {
        not_modified: false,
        age_s: 70,
        stale: true,
    };
    let swr_hit = RequestAction::HitStaleRevalidate {
        not_modified: false,
        age_s: 70,
        validators: vec![("if-none-match".into(), "\"v1\"".into())],
    };
    // (request, stored, now, action, Cache-Status)
    let cases: Vec<(RequestHead, Option<&StoredMeta>, u64, RequestAction, &str)> = vec![
        (
            req("POST", "/a", &[]),
            Some(&fresh),
            T0,
            RequestAction::Bypass { detail: "method" },
            "sluice; fwd=method; detail=method",
        ),
        // RFC 9110 §14: a Range request is a hit like any other (the host cuts the part).
        (
            with(&[("range", "bytes=0-1")]),
            Some(&fresh),
            T0 + 10 * S,
            hit(10),
            "sluice; hit; ttl=50",
        ),
        (
            with(&[("range", "bytes=0-1")]),
            None,
            T0,
            RequestAction::Miss,
            "sluice; fwd=uri-miss",
        ),
        (
            with(&[("if-match", "\"v1\"")]),
            None,
            T0,
            RequestAction::Bypass { detail: "precondition" },
            "sluice; fwd=bypass; detail=precondition",
        ),
        (get.clone(), None, T0, RequestAction::Miss, "sluice; fwd=uri-miss"),
        (
            with(&[("cache-control", "only-if-cached")]),
            None,
            T0,
            RequestAction::OnlyIfCachedMiss,
            "sluice; detail=only-if-cached",
        ),
        // §4.2: fresh → hit with the remaining TTL.
        (get.clone(), Some(&fresh), T0 + 10 * S, hit(10), "sluice; hit; ttl=50"),
        (
            req("HEAD", "/a", &[]),
            Some(&fresh),
            T0 + 10 * S,
            hit(10),
            "sluice; hit; ttl=50",
        ),
        // §5.2.1.5: a request no-store may still be answered from the cache.
        (
            with(&[("cache-control", "no-store")]),
            Some(&fresh),
            T0,
            hit(0),
            "sluice; hit; ttl=60",
        ),
        // §4.2.3: Age counts.
        (get.clone(), Some(&aged), T0 + 10 * S, hit(40), "sluice; hit; ttl=20"),
        // §4.2.2: heuristic 10% of 1000 s.
        (
            get.clone(),
            Some(&heuristic),
            T0 + 50 * S,
            hit(50),
            "sluice; hit; ttl=50",
        ),
        // §4.3: stale → revalidate with the stored ETag.
        (
            get.clone(),
            Some(&fresh),
            T0 + 70 * S,
            revalidate("\"v1\""),
            "sluice; fwd=stale; ttl=-10",
        ),
        (
            get.clone(),
            Some(&fresh),
            T0 + 60 * S,
            revalidate("\"v1\""),
            "sluice; fwd=stale; ttl=0",
        ),
        // §4.2.1: invalid max-age → stale at once.
        (
            get.clone(),
            Some(&invalid),
            T0,
            RequestAction::Revalidate { validators: vec![] },
            "sluice; fwd=stale; ttl=0",
        ),
        // §5.2.1.4 / §5.4: the client asks for validation.
        (
            with(&[("cache-control", "no-cache")]),
            Some(&fresh),
            T0 + 10 * S,
            revalidate("\"v1\""),
            "sluice; fwd=request; ttl=50",
        ),
        (
            with(&[("pragma", "no-cache")]),
            Some(&fresh),
            T0 + 10 * S,
            revalidate("\"v1\""),
            "sluice; fwd=request; ttl=50",
        ),
        (
            with(&[("cache-control", "max-age=5")]),
            Some(&fresh),
            T0 + 10 * S,
            revalidate("\"v1\""),
            "sluice; fwd=request; ttl=50",
        ),
        // RFC 5861 §3.
        (
            get.clone(),
            Some(&swr),
            T0 + 70 * S,
            swr_hit,
            "sluice; hit; ttl=-10; detail=stale-while-revalidate",
        ),
        (
            get.clone(),
            Some(&swr),
            T0 + 90 * S,
            revalidate("\"v1\""),
            "sluice; fwd=stale; ttl=-30",
        ),
        // §5.2.1.2 max-stale; §5.2.2.2 must-revalidate beats it.
        (
            with(&[("cache-control", "max-stale=20")]),
            Some(&fresh),
            T0 + 70 * S,
            stale_hit,
            "sluice; hit; ttl=-10; detail=max-stale",
        ),
        (
            with(&[("cache-control", "max-stale")]),
            Some(&strict),
            T0 + 70 * S,
            revalidate("\"v1\""),
            "sluice; fwd=stale; ttl=-10",
        ),
        // §5.2.1.7 only-if-cached.
        (
            with(&[("cache-control", "only-if-cached")]),
            Some(&fresh),
            T0,
            hit(0),
            "sluice; hit; ttl=60",
        ),
        (
            with(&[("cache-control", "only-if-cached")]),
            Some(&fresh),
            T0 + 70 * S,
            RequestAction::OnlyIfCachedMiss,
            "sluice; ttl=-10; detail=only-if-cached",
        ),
        // §4.1: a stored Vary: * matches nothing.
        (
            get.clone(),
            Some(&star),
            T0,
            RequestAction::Miss,
            "sluice; fwd=uri-miss",
        ),
    ];
    for (r, stored, now, action, cache_status) in cases {
        let got = on_request(&s, &r, stored, now);
        let label = format!(
            "{} {:?} {:?} at +{}s",
            r.method,
            r.headers,
            stored.map(|s| &s.headers),
            (now - T0) / 1000
        );
        assert_eq!(got.action, action, "{label}");
        assert_eq!(got.cache_status, cache_status, "{label}");
    }
}

#[test]
fn on_request_client_conditionals_get_304() {
    let s = settings("{}");
    let fresh = stored(200, &[("cache-control", "max-age=60"), ("etag", "\"v1\"")]);
    let r = req("GET", "/a", &[("if-none-match", "W/\"v1\"")]);
    let got = on_request(&s, &r, Some(&fresh), T0 + 5 * S);
    assert_eq!(
        got.action,
        RequestAction::Hit {
            not_modified: true,
            age_s: 5,
            stale: false
        }
    );
    let r = req("GET", "/a", &[("if-none-match", "\"v0\"")]);
    assert_eq!(on_request(&s, &r, Some(&fresh), T0 + 5 * S).action, hit(5));
}

#[test]
fn on_request_bypasses_credentials_only_when_configured() {
    let r = req("GET", "/a", &[("authorization", "Bearer x")]);
    let fresh = stored(200, &[("cache-control", "public, max-age=60")]);
    assert_eq!(on_request(&settings("{}"), &r, Some(&fresh), T0).action, hit(0));
    let closed = settings(r#"{"cache_authorized": false}"#);
    assert_eq!(
        on_request(&closed, &r, Some(&fresh), T0).action,
        RequestAction::Bypass { detail: "authorized" }
    );
}

#[test]
fn on_request_override_ignores_upstream_freshness() {
    let s = settings(r#"{"rules": [{"prefix": "/list", "ttl_s": 1800, "override": true}]}"#);
    let no_cache = stored(200, &[("cache-control", "no-cache, max-age=0")]);
    let got = on_request(&s, &req("GET", "/list?page=2", &[]), Some(&no_cache), T0 + 100 * S);
    assert_eq!(
        (got.action, got.cache_status.as_str()),
        (hit(100), "sluice; hit; ttl=1700")
    );
    // Elsewhere the upstream's word stands.
    let got = on_request(&s, &req("GET", "/other", &[]), Some(&no_cache), T0);
    assert_eq!(got.action, RequestAction::Revalidate { validators: vec![] });
}
