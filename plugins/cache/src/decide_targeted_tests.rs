//! The decisions with targeted fields (RFC 9213) and the stale-forbidding directives.
use super::*;
use crate::testutil::decide::*;
use crate::testutil::req;

#[test]
fn rfc9213_2_2_cdn_cache_control_replaces_cache_control_and_expires() {
    let s = settings("{}");
    let get = req("GET", "/a", &[]);
    let d = date(T0);
    let cases = [
        // The CDN field makes a no-store response storable for 60 s.
        (
            vec![
                ("date", d.as_str()),
                ("cache-control", "no-store"),
                ("cdn-cache-control", "max-age=60"),
            ],
            "sluice; fwd=uri-miss; fwd-status=200; ttl=60; stored",
        ),
        // And a public max-age=600 one private here.
        (
            vec![
                ("cache-control", "public, max-age=600"),
                ("cdn-cache-control", "private"),
            ],
            "sluice; fwd=uri-miss; fwd-status=200; detail=private",
        ),
        (
            vec![("cache-control", "max-age=600"), ("cdn-cache-control", "no-store")],
            "sluice; fwd=uri-miss; fwd-status=200; detail=no-store",
        ),
        // Expires is ignored with a targeted field: `no-cache` alone gives no freshness.
        (
            vec![
                ("date", d.as_str()),
                ("expires", "Thu, 01 Jan 2026 01:00:00 GMT"),
                ("cdn-cache-control", "must-revalidate"),
            ],
            "sluice; fwd=uri-miss; fwd-status=200; detail=no-freshness",
        ),
        // An invalid CDN field is ignored: Cache-Control applies.
        (
            vec![
                ("date", d.as_str()),
                ("cache-control", "max-age=30"),
                ("cdn-cache-control", "max-age=60,,"),
            ],
            "sluice; fwd=uri-miss; fwd-status=200; ttl=30; stored",
        ),
    ];
    for (headers, want) in cases {
        let got = on_response(&s, &get, &resp(200, &headers), T0, T0, None);
        assert_eq!(got.cache_status, want, "{headers:?}");
    }
    // Turned off, or overridden by the gateway's own field.
    let off = settings(r#"{"cdn_cache_control": false}"#);
    let headers = [("cache-control", "no-store"), ("cdn-cache-control", "max-age=60")];
    let got = on_response(&off, &get, &resp(200, &headers), T0, T0, None);
    assert_eq!(
        got.cache_status,
        "sluice; fwd=uri-miss; fwd-status=200; detail=no-store"
    );
    let own = settings(r#"{"target_field": "Sluice-Cache-Control"}"#);
    let headers = [
        ("date", d.as_str()),
        ("cdn-cache-control", "no-store"),
        ("sluice-cache-control", "max-age=90"),
    ];
    let got = on_response(&own, &get, &resp(200, &headers), T0, T0, None);
    assert_eq!(got.cache_status, "sluice; fwd=uri-miss; fwd-status=200; ttl=90; stored");
}

#[test]
fn rfc9213_2_2_a_stored_response_is_judged_by_its_targeted_field() {
    let s = settings("{}");
    let get = req("GET", "/a", &[]);
    let old = stored(
        200,
        &[("cache-control", "max-age=10"), ("cdn-cache-control", "max-age=100")],
    );
    let got = on_request(&s, &get, Some(&old), T0 + 50 * S);
    assert_eq!(got.action, hit(50));
}

#[test]
fn rfc9111_4_2_4_no_cache_forbids_serving_stale_on_error() {
    let s = settings(r#"{"rules": [{"prefix": "/", "stale_if_error_s": 600}]}"#);
    let get = req("GET", "/a", &[]);
    let later = T0 + 100 * S;
    let allowed = stored(200, &[("cache-control", "max-age=60"), ("etag", "\"v\"")]);
    let got = on_response(&s, &get, &resp(502, &[]), later, later, Some(&allowed));
    assert_eq!(got.action, ResponseAction::UseStaleOnError { age_s: 100 });
    for cc in [
        "no-cache, stale-if-error=600",
        "max-age=60, must-revalidate, stale-if-error=600",
        "max-age=60, proxy-revalidate",
        "s-maxage=60, stale-if-error=600",
    ] {
        let strict = stored(200, &[("cache-control", cc), ("etag", "\"v\"")]);
        let got = on_response(&s, &get, &resp(504, &[]), later, later, Some(&strict));
        assert!(
            !matches!(got.action, ResponseAction::UseStaleOnError { .. }),
            "{cc}: {:?}",
            got.action
        );
        // The same directives in CDN-Cache-Control forbid it too.
        let targeted = stored(200, &[("cdn-cache-control", cc), ("etag", "\"v\"")]);
        let got = on_response(&s, &get, &resp(504, &[]), later, later, Some(&targeted));
        assert!(!matches!(got.action, ResponseAction::UseStaleOnError { .. }), "{cc}");
    }
}

#[test]
fn rfc9111_4_3_2_a_miss_whose_client_conditional_matches_the_new_response_is_304() {
    let s = settings("{}");
    let fresh = [("cache-control", "max-age=60"), ("etag", "\"v2\"")];
    let matching = req("GET", "/a", &[("if-none-match", "\"v1\", \"v2\"")]);
    let got = on_response(&s, &matching, &resp(200, &fresh), T0, T0, None);
    assert!(
        matches!(got.action, ResponseAction::Store { not_modified: true, .. }),
        "{:?}",
        got.action
    );
    let other = req("GET", "/a", &[("if-none-match", "\"v1\"")]);
    let got = on_response(&s, &other, &resp(200, &fresh), T0, T0, None);
    assert!(matches!(
        got.action,
        ResponseAction::Store {
            not_modified: false,
            ..
        }
    ));
    let plain = req("GET", "/a", &[]);
    let got = on_response(&s, &plain, &resp(200, &fresh), T0, T0, None);
    assert!(matches!(
        got.action,
        ResponseAction::Store {
            not_modified: false,
            ..
        }
    ));
    // If-Modified-Since against the new Last-Modified.
    let modified = [
        ("cache-control", "max-age=60"),
        ("last-modified", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ];
    let since = req("GET", "/a", &[("if-modified-since", "Thu, 01 Jan 2026 00:00:00 GMT")]);
    let got = on_response(&s, &since, &resp(200, &modified), T0, T0, None);
    assert!(matches!(got.action, ResponseAction::Store { not_modified: true, .. }));
    let before = req("GET", "/a", &[("if-modified-since", "Wed, 31 Dec 2025 00:00:00 GMT")]);
    let got = on_response(&s, &before, &resp(200, &modified), T0, T0, None);
    assert!(matches!(
        got.action,
        ResponseAction::Store {
            not_modified: false,
            ..
        }
    ));
}

#[test]
fn rfc9111_4_3_5_a_head_response_freshens_the_stored_get() {
    let s = settings("{}");
    let head = req("HEAD", "/a", &[]);
    let old = stored(
        200,
        &[
            ("cache-control", "max-age=10"),
            ("etag", "\"v1\""),
            ("content-length", "5"),
            ("x-version", "1"),
        ],
    );
    let later = T0 + 100 * S;
    let same = [
        ("date", date(later)),
        ("cache-control", "max-age=60".into()),
        ("etag", "\"v1\"".into()),
        ("content-length", "5".into()),
        ("x-version", "2".into()),
    ];
    let same: Vec<(&str, &str)> = same.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let got = on_response(&s, &head, &resp(200, &same), later, later, Some(&old));
    let ResponseAction::Refreshed304 {
        merged_headers, ttl_ms, ..
    } = got.action
    else {
        panic!("not freshened: {:?}", got.action);
    };
    assert_eq!(ttl_ms, 60_000);
    assert!(merged_headers.contains(&("x-version".into(), b"2".to_vec())));
    assert_eq!(got.cache_status, "sluice; fwd=stale; fwd-status=200; ttl=60; stored");
    // A different ETag or length, or a GET: not a description of what is stored.
    for (name, value) in [("etag", "\"v2\""), ("content-length", "6")] {
        let mut changed = same.clone();
        changed.retain(|(n, _)| *n != name);
        changed.push((name, value));
        let got = on_response(&s, &head, &resp(200, &changed), later, later, Some(&old));
        assert!(!matches!(got.action, ResponseAction::Refreshed304 { .. }), "{name}");
    }
    let no_tag: Vec<(&str, &str)> = same.iter().copied().filter(|(n, _)| *n != "etag").collect();
    let got = on_response(&s, &head, &resp(200, &no_tag), later, later, Some(&old));
    assert!(!matches!(got.action, ResponseAction::Refreshed304 { .. }));
    let get = req("GET", "/a", &[]);
    let got = on_response(&s, &get, &resp(200, &same), later, later, Some(&old));
    assert!(matches!(got.action, ResponseAction::Store { .. }));
}
