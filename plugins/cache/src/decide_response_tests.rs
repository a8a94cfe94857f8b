use super::*;
use crate::testutil::decide::*;
use crate::testutil::{h, req};

fn stored_as(action: ResponseAction) -> (u64, u64, Vec<String>, Vec<String>) {
    match action {
        ResponseAction::Store {
            ttl_ms,
            stale_ms,
            tags,
            vary,
            ..
        } => (ttl_ms, stale_ms, tags, vary),
        other => panic!("not stored: {other:?}"),
    }
}

#[test]
fn on_response_rfc9111_3_table() {
    let s = settings(
        r#"{"rules": [{"prefix": "/list", "stale_if_error_s": 600, "tags": ["list"]},
                      {"prefix": "/dflt", "ttl_s": 30}]}"#,
    );
    let get = req("GET", "/a", &[]);
    let d = date(T0);
    // (request, response, expected action or detail, Cache-Status)
    let not = |detail| ResponseAction::NotStored { detail };
    let cases: Vec<(RequestHead, ResponseHead, Option<ResponseAction>, &str)> = vec![
        (
            req("POST", "/a", &[]),
            resp(201, &[]),
            Some(not("method")),
            "sluice; fwd=method; fwd-status=201; detail=method",
        ),
        (
            get.clone(),
            resp(200, &[("date", &d)]),
            Some(not("no-freshness")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=no-freshness",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "max-age=0")]),
            Some(not("stale")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=stale",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "no-cache")]),
            Some(not("stale")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=stale",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "private, max-age=60")]),
            Some(not("private")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=private",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "public, no-store")]),
            Some(not("no-store")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=no-store",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "max-age=60"), ("set-cookie", "a=1")]),
            Some(not("set-cookie")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=set-cookie",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "max-age=60"), ("vary", "*")]),
            Some(not("vary-star")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=vary-star",
        ),
        (
            get.clone(),
            resp(304, &[("cache-control", "max-age=60")]),
            Some(not("status")),
            "sluice; fwd=uri-miss; fwd-status=304; detail=status",
        ),
        (
            req("HEAD", "/a", &[]),
            resp(200, &[("cache-control", "max-age=60")]),
            Some(not("head-response")),
            "sluice; fwd=uri-miss; fwd-status=200; detail=head-response",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "max-age=60")]),
            None,
            "sluice; fwd=uri-miss; fwd-status=200; ttl=60; stored",
        ),
        (
            get.clone(),
            resp(200, &[("cache-control", "max-age=99999999999999999999")]),
            None,
            "sluice; fwd=uri-miss; fwd-status=200; ttl=2147483648; stored",
        ),
        (
            req("GET", "/dflt", &[]),
            resp(200, &[]),
            None,
            "sluice; fwd=uri-miss; fwd-status=200; ttl=30; stored",
        ),
    ];
    for (r, rs, want, cache_status) in cases {
        let got = on_response(&s, &r, &rs, T0, T0, None);
        let label = format!("{} {} {:?}", r.method, rs.status, rs.headers);
        if let Some(want) = want {
            assert_eq!(got.action, want, "{label}");
        }
        assert_eq!(got.cache_status, cache_status, "{label}");
    }
    let got = on_response(
        &s,
        &req("GET", "/list/1", &[]),
        &resp(
            200,
            &[("cache-control", "max-age=60"), ("vary", "Accept, accept-encoding")],
        ),
        T0,
        T0,
        None,
    );
    assert_eq!(
        stored_as(got.action),
        (
            60_000,
            600_000,
            vec!["list".into()],
            vec!["accept".into(), "accept-encoding".into()]
        )
    );
    // §4.2.3: an Age beyond max-age leaves only the stale window; the request's time counts.
    let got = on_response(
        &s,
        &req("GET", "/list", &[]),
        &resp(200, &[("cache-control", "max-age=60"), ("age", "100")]),
        T0,
        T0,
        None,
    );
    let (ttl_ms, stale_ms, _, _) = stored_as(got.action);
    assert_eq!((ttl_ms, stale_ms), (0, 560_000));
    let got = on_response(
        &s,
        &get,
        &resp(200, &[("cache-control", "max-age=60")]),
        T0,
        T0 + 2 * S,
        None,
    );
    assert_eq!(stored_as(got.action).0, 58_000);
}

#[test]
fn on_response_set_cookie_opt_in_strips_it() {
    let s = settings(r#"{"store_set_cookie": true}"#);
    let got = on_response(
        &s,
        &req("GET", "/a", &[]),
        &resp(200, &[("cache-control", "max-age=60"), ("set-cookie", "a=1")]),
        T0,
        T0,
        None,
    );
    match got.action {
        ResponseAction::Store { strip_headers, .. } => assert!(strip_headers.contains(&"set-cookie".to_string())),
        other => panic!("{other:?}"),
    }
}

#[test]
fn on_response_rfc9111_4_3_4_revalidation() {
    let s = settings("{}");
    let old = stored(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("etag", "\"v1\""),
            ("content-type", "text/plain"),
            ("content-length", "5"),
        ],
    );
    let later = T0 + 100 * S;
    let d = date(later);
    let r304 = resp(
        304,
        &[
            ("date", &d),
            ("cache-control", "max-age=120"),
            ("etag", "\"v1\""),
            ("content-length", "0"),
        ],
    );
    let got = on_response(&s, &req("GET", "/a", &[]), &r304, later, later, Some(&old));
    assert_eq!(got.cache_status, "sluice; fwd=stale; fwd-status=304; ttl=120; stored");
    let ResponseAction::Refreshed304 {
        merged_headers,
        ttl_ms,
        stale_ms,
        not_modified,
    } = got.action
    else {
        panic!("{:?}", got.action)
    };
    // Kept an hour past its freshness for the next revalidation (`revalidate_keep_s`).
    assert_eq!((ttl_ms, stale_ms, not_modified), (120_000, 3_600_000, false));
    assert_eq!(
        merged_headers,
        h(&[
            ("content-type", "text/plain"),
            ("content-length", "5"),
            ("date", &d),
            ("cache-control", "max-age=120"),
            ("etag", "\"v1\"")
        ])
    );
    // The client's own If-None-Match matches the refreshed response → 304 to it.
    let got = on_response(
        &s,
        &req("GET", "/a", &[("if-none-match", "\"v1\"")]),
        &r304,
        later,
        later,
        Some(&old),
    );
    assert!(matches!(
        got.action,
        ResponseAction::Refreshed304 { not_modified: true, .. }
    ));
    // The client asked for validation: fwd=request.
    let got = on_response(
        &s,
        &req("GET", "/a", &[("cache-control", "no-cache")]),
        &r304,
        later,
        later,
        Some(&old),
    );
    assert_eq!(got.cache_status, "sluice; fwd=request; fwd-status=304; ttl=120; stored");
    // A 304 for another representation updates nothing.
    let other = resp(304, &[("etag", "\"v2\"")]);
    let got = on_response(&s, &req("GET", "/a", &[]), &other, later, later, Some(&old));
    assert_eq!(
        got.action,
        ResponseAction::NotStored {
            detail: "validator-mismatch"
        }
    );
    // A 304 without Date is dated at receipt: the refreshed response is not 100 s old.
    let undated = resp(304, &[("cache-control", "max-age=120")]);
    let got = on_response(&s, &req("GET", "/a", &[]), &undated, later, later, Some(&old));
    assert!(
        matches!(got.action, ResponseAction::Refreshed304 { ttl_ms: 120_000, .. }),
        "{:?}",
        got.action
    );
    // A 304 that now says no-store: serve, but keep nothing.
    let gone = resp(304, &[("cache-control", "no-store")]);
    let got = on_response(&s, &req("GET", "/a", &[]), &gone, later, later, Some(&old));
    assert!(
        matches!(
            got.action,
            ResponseAction::Refreshed304 {
                ttl_ms: 0,
                stale_ms: 0,
                ..
            }
        ),
        "{:?}",
        got.action
    );
    assert_eq!(
        got.cache_status,
        "sluice; fwd=stale; fwd-status=304; ttl=0; detail=no-store"
    );
    // A full 200 replaces the stored response.
    let fresh = resp(200, &[("cache-control", "max-age=10")]);
    let got = on_response(&s, &req("GET", "/a", &[]), &fresh, later, later, Some(&old));
    assert_eq!(got.cache_status, "sluice; fwd=stale; fwd-status=200; ttl=10; stored");
}

#[test]
fn rfc5861_4_stale_if_error() {
    let s = settings("{}");
    let old = stored(200, &[("cache-control", "max-age=60, stale-if-error=600")]);
    let plain = stored(200, &[("cache-control", "max-age=60")]);
    let strict = stored(
        200,
        &[("cache-control", "max-age=60, stale-if-error=600, must-revalidate")],
    );
    let later = T0 + 100 * S;
    let get = req("GET", "/a", &[]);
    let got = on_response(&s, &get, &resp(503, &[]), later, later, Some(&old));
    assert_eq!(got.action, ResponseAction::UseStaleOnError { age_s: 100 });
    assert_eq!(
        got.cache_status,
        "sluice; fwd=stale; fwd-status=503; ttl=-40; detail=stale-if-error"
    );
    // 404 is an answer, not an error.
    let got = on_response(&s, &get, &resp(404, &[]), later, later, Some(&old));
    assert_eq!(got.action, ResponseAction::NotStored { detail: "no-freshness" });
    let got = on_response(&s, &get, &resp(503, &[]), later, later, Some(&plain));
    assert_eq!(
        got.action,
        ResponseAction::NotStored {
            detail: "uncacheable-status"
        }
    );
    let got = on_response(&s, &get, &resp(500, &[]), later, later, Some(&strict));
    assert_eq!(
        got.action,
        ResponseAction::NotStored {
            detail: "uncacheable-status"
        }
    );
    // The client may grant it itself.
    let lenient = req("GET", "/a", &[("cache-control", "stale-if-error=60")]);
    let got = on_response(&s, &lenient, &resp(502, &[]), later, later, Some(&plain));
    assert_eq!(got.action, ResponseAction::UseStaleOnError { age_s: 100 });
    // Connection failures.
    let got = on_upstream_error(&s, &get, &old, later);
    assert_eq!(got.action, ResponseAction::UseStaleOnError { age_s: 100 });
    assert_eq!(got.cache_status, "sluice; fwd=stale; ttl=-40; detail=stale-if-error");
    let got = on_upstream_error(&s, &get, &old, T0 + 661 * S);
    assert_eq!(
        got.action,
        ResponseAction::NotStored {
            detail: "upstream-error"
        }
    );
    assert_eq!(got.cache_status, "sluice; fwd=stale; detail=upstream-error");
    let got = on_upstream_error(&s, &get, &strict, later);
    assert_eq!(
        got.action,
        ResponseAction::NotStored {
            detail: "upstream-error"
        }
    );
}

#[test]
fn stored_meta_unknown_times_fall_back() {
    let s = settings("{}");
    let mut m = stored(200, &[("cache-control", "max-age=60")]);
    m.headers.retain(|(n, _)| n != "date");
    (m.request_time_ms, m.response_time_ms, m.stored_at_ms) = (0, 0, T0);
    assert_eq!(
        on_request(&s, &req("GET", "/a", &[]), Some(&m), T0 + 15 * S).action,
        hit(15)
    );
}

#[test]
fn rfc9111_4_4_invalidations_and_the_key() {
    let r = req("DELETE", "/items/5", &[]);
    assert_eq!(invalidations(&r, &resp(204, &[])), ["/items/5"]);
    assert!(invalidations(&r, &resp(500, &[])).is_empty());
}

#[test]
fn a_response_needing_revalidation_is_kept_only_when_it_has_a_validator() {
    let s = settings("{}");
    let now = T0;
    let with_etag = resp(
        200,
        &[("cache-control", "no-cache"), ("etag", "\"v1\""), ("date", &date(now))],
    );
    let got = on_response(&s, &req("GET", "/a", &[]), &with_etag, now, now, None);
    assert!(
        matches!(
            got.action,
            ResponseAction::Store {
                ttl_ms: 0,
                stale_ms: 3_600_000,
                ..
            }
        ),
        "{:?}",
        got.action
    );
    let without = resp(200, &[("cache-control", "no-cache"), ("date", &date(now))]);
    let got = on_response(&s, &req("GET", "/a", &[]), &without, now, now, None);
    assert!(
        matches!(got.action, ResponseAction::NotStored { .. }),
        "{:?}",
        got.action
    );
    let off = settings(r#"{"revalidate_keep_s": 0}"#);
    let got = on_response(&off, &req("GET", "/a", &[]), &with_etag, now, now, None);
    assert!(
        matches!(got.action, ResponseAction::NotStored { .. }),
        "{:?}",
        got.action
    );
}
