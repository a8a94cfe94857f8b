use super::*;
use crate::settings::Settings;
use crate::testutil::{h, req};

fn run(settings: &Settings, r: &RequestHead, status: u16, headers: &[(&str, &str)]) -> Result<Storable, &'static str> {
    let headers = h(headers);
    check(
        &settings.policy("/"),
        r,
        &CacheControl::parse_request(&r.headers),
        status,
        &headers,
        &CacheControl::parse(&headers),
    )
}

fn verdict(settings: &Settings, r: &RequestHead, status: u16, headers: &[(&str, &str)]) -> &'static str {
    match run(settings, r, status, headers) {
        Ok(_) => "stored",
        Err(reason) => reason,
    }
}

#[test]
fn rfc9111_3_what_a_shared_cache_stores() {
    let s = Settings::default();
    let get = req("GET", "/", &[]);
    let ma = ("cache-control", "max-age=60");
    for (r, status, headers, want) in [
        (&get, 200, vec![ma], "stored"),
        (&get, 200, vec![], "stored"),
        (&req("HEAD", "/", &[]), 200, vec![ma], "head-response"),
        (&req("POST", "/", &[]), 200, vec![ma], "method"),
        (
            &req("GET", "/", &[("cache-control", "no-store")]),
            200,
            vec![ma],
            "request-no-store",
        ),
        (&get, 200, vec![("cache-control", "max-age=60, no-store")], "no-store"),
        // Contradictions: the most restrictive wins.
        (&get, 200, vec![("cache-control", "public, no-store")], "no-store"),
        (
            &get,
            200,
            vec![("cache-control", "public"), ("cache-control", "private")],
            "private",
        ),
        (&get, 200, vec![("cache-control", "PRIVATE, max-age=60")], "private"),
        // §5.2.2.3: must-understand with an understood status overrides no-store.
        (
            &get,
            200,
            vec![("cache-control", "must-understand, no-store, max-age=60")],
            "stored",
        ),
        (
            &get,
            299,
            vec![("cache-control", "must-understand, no-store, max-age=60")],
            "must-understand",
        ),
        (&get, 206, vec![ma], "status"),
        (&get, 304, vec![ma], "status"),
        (&get, 101, vec![ma], "status"),
        (&get, 999, vec![ma], "status"),
        // §3: no explicit freshness and not heuristically cacheable.
        (&get, 302, vec![], "uncacheable-status"),
        (&get, 201, vec![], "uncacheable-status"),
        (&get, 302, vec![ma], "stored"),
        (&get, 500, vec![("expires", "0")], "stored"),
        (&get, 307, vec![("cache-control", "public")], "stored"),
        (&get, 200, vec![ma, ("vary", "*")], "vary-star"),
        (&get, 200, vec![ma, ("vary", "Accept, *")], "vary-star"),
        (&get, 200, vec![ma, ("vary", "bad header")], "vary-invalid"),
        (&get, 200, vec![ma, ("set-cookie", "a=1")], "set-cookie"),
        (&get, 200, vec![ma, ("content-length", "8388608")], "stored"),
        (&get, 200, vec![ma, ("content-length", "8388609")], "too-large"),
        (
            &get,
            200,
            vec![ma, ("content-length", "99999999999999999999999")],
            "too-large",
        ),
        (&get, 200, vec![ma, ("content-length", "12, 12")], "stored"),
        (
            &get,
            200,
            vec![ma, ("content-length", "12"), ("content-length", "13")],
            "content-length",
        ),
        (&get, 200, vec![ma, ("content-length", "-1")], "content-length"),
    ] {
        assert_eq!(
            verdict(&s, r, status, &headers),
            want,
            "{} {status} {headers:?}",
            r.method
        );
    }
}

#[test]
fn rfc9111_3_5_authorization() {
    let s = Settings::default();
    let bearer = req("GET", "/", &[("authorization", "Bearer x")]);
    let api_key = req("GET", "/", &[("x-api-key", "k")]);
    for (r, headers, want) in [
        (&bearer, vec![("cache-control", "max-age=60")], "authorization"),
        (&api_key, vec![("cache-control", "max-age=60")], "authorization"),
        (&bearer, vec![("cache-control", "max-age=60, public")], "stored"),
        (&bearer, vec![("cache-control", "s-maxage=60")], "stored"),
        (
            &bearer,
            vec![("cache-control", "max-age=60, must-revalidate")],
            "stored",
        ),
        (
            &bearer,
            vec![("cache-control", "proxy-revalidate, max-age=60")],
            "authorization",
        ),
    ] {
        assert_eq!(verdict(&s, r, 200, &headers), want, "{headers:?}");
    }
    let closed = Settings::from_json(r#"{"cache_authorized": false}"#).unwrap();
    assert_eq!(
        verdict(&closed, &bearer, 200, &[("cache-control", "public, max-age=5")]),
        "authorized"
    );
}

#[test]
fn set_cookie_is_stored_stripped_only_when_the_route_opts_in() {
    let s = Settings::from_json(r#"{"store_set_cookie": true}"#).unwrap();
    let got = run(
        &s,
        &req("GET", "/", &[]),
        200,
        &[("cache-control", "max-age=5"), ("set-cookie", "a=1")],
    )
    .unwrap();
    assert!(got.strip_headers.contains(&"set-cookie".to_string()));
}

#[test]
fn rfc9111_3_1_and_5_2_2_7_fields_left_out() {
    let s = Settings::default();
    let got = run(
        &s,
        &req("GET", "/", &[]),
        200,
        &[
            (
                "cache-control",
                "max-age=60, private=\"X-User\", no-cache=\"x-debug, x-user\"",
            ),
            ("connection", "X-Hop, close"),
            ("vary", "Accept-Encoding, accept"),
        ],
    )
    .unwrap();
    assert_eq!(
        got.strip_headers,
        [
            "close",
            "connection",
            "keep-alive",
            "proxy-authenticate",
            "proxy-authentication-info",
            "proxy-connection",
            "set-cookie",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
            "x-debug",
            "x-hop",
            "x-user",
        ]
    );
    assert_eq!(got.vary, ["accept", "accept-encoding"]);
}
