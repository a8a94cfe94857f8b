use super::*;
use crate::dates::format_http_date;
use crate::testutil::{h, req};

const T0: i64 = 1_767_225_600;

fn date(offset_s: i64) -> String {
    format_http_date(T0 + offset_s)
}

#[test]
fn rfc9110_8_8_3_entity_tags() {
    let tag = |weak, opaque| EntityTag { weak, opaque };
    assert_eq!(parse_etags(r#""a""#), Some(vec![tag(false, r#""a""#)]));
    assert_eq!(
        parse_etags(r#" W/"a" ,"b,c",, W/"" "#),
        Some(vec![tag(true, r#""a""#), tag(false, r#""b,c""#), tag(true, r#""""#)])
    );
    assert_eq!(parse_etags(""), Some(vec![]));
    for bad in [r#"a"#, r#""a"#, r#"w/"a""#, r#""a"b"#, r#""a" "b"x"#, "\"a b\"", "*"] {
        assert_eq!(parse_etags(bad), None, "{bad}");
    }
    assert!(tag(true, r#""x""#).weak_eq(&tag(false, r#""x""#)));
    assert!(!tag(true, r#""x""#).strong_eq(&tag(false, r#""x""#)));
    assert!(tag(false, r#""x""#).strong_eq(&tag(false, r#""x""#)));
}

#[test]
fn rfc9111_4_3_2_client_conditionals() {
    let lm = date(-100);
    let stored_h = h(&[("etag", r#""v2""#), ("last-modified", &lm), ("date", &date(0))]);
    let (before, at, after, bad) = (date(-101), date(-100), date(50), "yesterday".to_string());
    // (method, request headers, stored status, expected 304)
    for (method, headers, status, want) in [
        ("GET", vec![("if-none-match", r#""v2""#)], 200, true),
        ("HEAD", vec![("if-none-match", r#"W/"v2""#)], 200, true),
        ("GET", vec![("if-none-match", r#""v1", "v2""#)], 200, true),
        (
            "GET",
            vec![("if-none-match", r#""v1""#), ("if-none-match", r#""v2""#)],
            200,
            true,
        ),
        ("GET", vec![("if-none-match", "*")], 200, true),
        ("GET", vec![("if-none-match", r#""v1""#)], 200, false),
        ("GET", vec![("if-none-match", "garbage")], 200, false),
        ("GET", vec![("if-none-match", r#""v2""#)], 404, false),
        ("POST", vec![("if-none-match", r#""v2""#)], 200, false),
        // If-None-Match present: If-Modified-Since is not looked at (RFC 9110 §13.2.2).
        (
            "GET",
            vec![("if-none-match", r#""v1""#), ("if-modified-since", after.as_str())],
            200,
            false,
        ),
        ("GET", vec![("if-modified-since", at.as_str())], 200, true),
        ("GET", vec![("if-modified-since", after.as_str())], 200, true),
        ("GET", vec![("if-modified-since", before.as_str())], 200, false),
        ("GET", vec![("if-modified-since", bad.as_str())], 200, false),
        ("GET", vec![], 200, false),
    ] {
        let r = req(method, "/", &headers);
        assert_eq!(
            client_not_modified(&r, status, &stored_h, 0, T0),
            want,
            "{method} {headers:?} {status}"
        );
    }
    // No Last-Modified: Date, then the receipt time.
    let r = req("GET", "/", &[("if-modified-since", &date(0))]);
    assert!(client_not_modified(&r, 200, &h(&[("date", &date(0))]), 0, T0));
    assert!(!client_not_modified(&r, 200, &h(&[("date", &date(1))]), 0, T0));
    assert!(client_not_modified(&r, 200, &[], T0 as u64 * 1000, T0));
    assert!(!client_not_modified(&r, 200, &[], (T0 as u64 + 1) * 1000, T0));
}

#[test]
fn rfc9111_4_3_1_validators_sent_upstream() {
    let lm = date(-100);
    let pairs = |v: Vec<(String, String)>| v.into_iter().map(|(n, v)| format!("{n}: {v}")).collect::<Vec<_>>();
    assert_eq!(
        pairs(revalidation_headers(
            &h(&[("ETag", r#"W/"v1""#), ("Last-Modified", &lm)]),
            T0
        )),
        [
            r#"if-none-match: W/"v1""#.to_string(),
            format!("if-modified-since: {lm}")
        ]
    );
    assert_eq!(
        pairs(revalidation_headers(&h(&[("etag", "v1"), ("last-modified", "0")]), T0)),
        Vec::<String>::new()
    );
    assert_eq!(
        pairs(revalidation_headers(&h(&[("etag", r#""a", "b""#)]), T0)),
        Vec::<String>::new()
    );
    assert!(revalidation_headers(&[], T0).is_empty());
}

#[test]
fn rfc9111_4_3_4_which_304_freshens() {
    let stored = h(&[("etag", r#""v1""#)]);
    for (resp, want) in [
        (vec![], true),
        (vec![("etag", r#""v1""#)], true),
        (vec![("etag", r#"W/"v1""#)], true),
        (vec![("etag", r#""v2""#)], false),
        (vec![("etag", "junk")], false),
    ] {
        assert_eq!(validators_agree(&stored, &h(&resp)), want, "{resp:?}");
    }
    assert!(
        !validators_agree(&h(&[("etag", r#"W/"v1""#)]), &h(&[("etag", r#""v1""#)])),
        "strong vs weak"
    );
    assert!(!validators_agree(&[], &h(&[("etag", r#""v1""#)])));
}

#[test]
fn rfc9111_3_2_merging_a_304() {
    let stored = h(&[
        ("Content-Type", "text/html"),
        ("Content-Length", "120"),
        ("Content-Encoding", "gzip"),
        ("Cache-Control", "max-age=60"),
        ("X-Multi", "a"),
        ("X-Multi", "b"),
        ("ETag", r#""v1""#),
    ]);
    let resp = h(&[
        ("cache-control", "max-age=600, private=\"x-secret\""),
        ("content-length", "0"),
        ("content-encoding", "br"),
        ("x-multi", "c"),
        ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
        ("set-cookie", "s=1"),
        ("connection", "x-hop"),
        ("x-hop", "1"),
        ("transfer-encoding", "chunked"),
        ("x-secret", "shh"),
    ]);
    let merged = merge_not_modified(&stored, &resp);
    let show: Vec<String> = merged
        .iter()
        .map(|(n, v)| format!("{n}: {}", String::from_utf8_lossy(v)))
        .collect();
    assert_eq!(
        show,
        [
            "Content-Type: text/html",
            "Content-Length: 120",
            "Content-Encoding: gzip",
            "ETag: \"v1\"",
            "cache-control: max-age=600, private=\"x-secret\"",
            "x-multi: c",
            "date: Thu, 01 Jan 2026 00:00:00 GMT",
        ]
    );
}

#[test]
fn rfc9110_15_4_5_fields_of_a_generated_304() {
    let stored = h(&[
        ("content-type", "text/html"),
        ("ETag", r#""v1""#),
        ("cache-control", "max-age=5"),
        ("vary", "accept"),
        ("content-length", "10"),
        ("date", "x"),
    ]);
    let names: Vec<String> = not_modified_headers(&stored).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["ETag", "cache-control", "vary", "date"]);
}
