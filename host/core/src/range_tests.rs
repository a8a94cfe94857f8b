use super::*;

fn h(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

const STORED: &[(&str, &str)] = &[
    ("etag", "\"v1\""),
    ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ("date", "Mon, 07 Nov 1994 08:49:37 GMT"),
];

fn range(value: &str) -> Ranged {
    select("GET", &h(&[("range", value)]), 200, &h(STORED), 100)
}

#[test]
fn rfc9110_14_1_2_byte_range_forms() {
    assert_eq!(range("bytes=0-9"), Ranged::Part(0..10));
    assert_eq!(range("bytes=90-"), Ranged::Part(90..100));
    assert_eq!(range("bytes=-10"), Ranged::Part(90..100));
    assert_eq!(range("bytes=-1000"), Ranged::Part(0..100));
    assert_eq!(range("bytes=95-1000"), Ranged::Part(95..100));
    assert_eq!(range("Bytes = 5-5"), Ranged::Part(5..6));
    assert_eq!(range("bytes=99-99"), Ranged::Part(99..100));
}

#[test]
fn rfc9110_14_1_2_unsatisfiable_ranges_get_416() {
    assert_eq!(range("bytes=100-"), Ranged::Unsatisfiable);
    assert_eq!(range("bytes=500-600"), Ranged::Unsatisfiable);
    assert_eq!(range("bytes=-0"), Ranged::Unsatisfiable);
    assert_eq!(
        select("GET", &h(&[("range", "bytes=0-")]), 200, &[], 0),
        Ranged::Unsatisfiable
    );
}

#[test]
fn rfc9110_14_2_what_is_ignored_gets_the_whole_response() {
    for value in [
        "bytes=9-0",
        "bytes=a-b",
        "bytes=0-9,20-29",
        "items=0-9",
        "bytes 0-9",
        "bytes=",
        "bytes=-",
        "bytes=--5",
        "bytes=99999999999999999999-",
    ] {
        assert_eq!(range(value), Ranged::Whole, "{value:?}");
    }
    assert_eq!(range(&format!("bytes=0-{}", "9".repeat(2000))), Ranged::Whole);
    let get = h(&[("range", "bytes=0-9")]);
    assert_eq!(select("HEAD", &get, 200, &h(STORED), 100), Ranged::Whole);
    assert_eq!(select("GET", &get, 404, &h(STORED), 100), Ranged::Whole);
    assert_eq!(select("GET", &[], 200, &h(STORED), 100), Ranged::Whole);
}

#[test]
fn rfc9110_13_1_5_if_range() {
    let with = |if_range: &str, stored: &[(&str, &str)]| {
        select(
            "GET",
            &h(&[("range", "bytes=0-9"), ("if-range", if_range)]),
            200,
            &h(stored),
            100,
        )
    };
    assert_eq!(with("\"v1\"", STORED), Ranged::Part(0..10));
    assert_eq!(with("\"v2\"", STORED), Ranged::Whole);
    assert_eq!(with("W/\"v1\"", STORED), Ranged::Whole, "weak tags never match");
    let weak_stored = [("etag", "W/\"v1\"")];
    assert_eq!(with("W/\"v1\"", &weak_stored), Ranged::Whole);
    assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT", STORED), Ranged::Part(0..10));
    assert_eq!(with("Sun, 06 Nov 1994 08:49:38 GMT", STORED), Ranged::Whole);
    // Last-Modified equal to Date is weak: a date never matches it.
    let same_second = [
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ];
    assert_eq!(with("Sun, 06 Nov 1994 08:49:37 GMT", &same_second), Ranged::Whole);
    assert_eq!(
        with(
            "Sun, 06 Nov 1994 08:49:37 GMT",
            &[("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT")]
        ),
        Ranged::Whole
    );
    assert_eq!(with("garbage", STORED), Ranged::Whole);
}

#[test]
fn rfc9110_14_4_and_15_5_17_apply_cuts_the_body_and_sets_content_range() {
    let body_of = |s: &str| Bytes::from(s.to_string());
    let (mut status, mut headers, mut body) = (
        200,
        h(&[
            ("content-type", "text/plain"),
            ("content-length", "10"),
            ("etag", "\"v1\""),
        ]),
        body_of("0123456789"),
    );
    apply(
        "GET",
        &h(&[("range", "bytes=2-4")]),
        &mut status,
        &mut headers,
        &mut body,
    );
    assert_eq!((status, &body[..]), (206, &b"234"[..]));
    assert!(headers.contains(&("content-range".into(), b"bytes 2-4/10".to_vec())));
    assert!(headers.contains(&("content-length".into(), b"3".to_vec())));
    assert!(headers.contains(&("content-type".into(), b"text/plain".to_vec())));
    assert_eq!(headers.iter().filter(|(n, _)| n == "content-length").count(), 1);

    let (mut status, mut headers, mut body) = (200, h(&[("content-type", "text/plain")]), body_of("0123456789"));
    apply(
        "GET",
        &h(&[("range", "bytes=10-")]),
        &mut status,
        &mut headers,
        &mut body,
    );
    assert_eq!((status, body.len()), (416, 0));
    assert_eq!(headers, h(&[("content-range", "bytes */10"), ("content-length", "0")]));

    let (mut status, mut headers, mut body) = (200, h(&[]), body_of("0123456789"));
    apply("GET", &h(&[]), &mut status, &mut headers, &mut body);
    assert_eq!((status, body.len(), headers.len()), (200, 10, 0));
}
