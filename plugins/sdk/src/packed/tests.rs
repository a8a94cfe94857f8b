use super::*;
use crate::{CoalesceSpec, EncodingSpec, UpstreamChoice};

fn packed_head() -> Vec<u8> {
    let mut buf = Vec::new();
    for field in ["POST", "https", "api.example", "/v1/items?page=2"] {
        buf.put_str(field);
    }
    buf.put_len(2);
    buf.put_str("x-api-key");
    buf.put_bytes(b"sk_1");
    buf.put_str("accept");
    buf.put_bytes(b"\xff binary");
    for field in ["10.0.0.9", "req-1", "api"] {
        buf.put_str(field);
    }
    buf.put_len(1);
    buf.put_str("tier");
    buf.put_str("gold");
    buf
}

#[test]
fn a_packed_request_head_reads_into_every_field() {
    let head = read_request_head(&packed_head()).unwrap();
    assert_eq!(
        (
            head.method.as_str(),
            head.scheme.as_str(),
            head.authority.as_str(),
            head.path.as_str()
        ),
        ("POST", "https", "api.example", "/v1/items?page=2")
    );
    assert_eq!(
        head.headers,
        [
            ("x-api-key".to_string(), b"sk_1".to_vec()),
            ("accept".to_string(), b"\xff binary".to_vec())
        ]
    );
    assert_eq!(
        (head.client_ip.as_str(), head.request_id.as_str(), head.route.as_str()),
        ("10.0.0.9", "req-1", "api")
    );
    assert_eq!(head.context, [("tier".to_string(), "gold".to_string())]);
}

#[test]
fn a_head_that_is_short_or_has_more_fails() {
    let mut buf = packed_head();
    buf.push(0);
    assert!(matches!(
        read_request_head(&buf),
        Err(WireError::Trailing { left: 1, .. })
    ));
    buf.truncate(buf.len() - 3);
    assert!(matches!(read_request_head(&buf), Err(WireError::Truncated { .. })));
}

#[test]
fn a_packed_response_head_reads_back() {
    let mut buf = Vec::new();
    buf.put_u16(304);
    buf.put_len(1);
    buf.put_str("etag");
    buf.put_bytes(b"\"v1\"");
    let head = read_response_head(&buf).unwrap();
    assert_eq!(head.status, 304);
    assert_eq!(head.headers, [("etag".to_string(), b"\"v1\"".to_vec())]);
}

fn edits() -> HeaderEdits {
    HeaderEdits {
        set: vec![("x-user".into(), b"ann".to_vec())],
        append: vec![("via".into(), b"sluice".to_vec())],
        remove: vec!["cookie".into()],
        context: vec![("subject".into(), "ann".into())],
    }
}

/// Reads the edits [`edits`] wrote.
fn read_edits(r: &mut Reader<'_>) {
    let pair = |r: &mut Reader<'_>| (r.str().unwrap().to_string(), r.bytes().unwrap().to_vec());
    assert_eq!(r.count(8).unwrap(), 1);
    assert_eq!(pair(r), ("x-user".to_string(), b"ann".to_vec()));
    assert_eq!(r.count(8).unwrap(), 1);
    assert_eq!(pair(r), ("via".to_string(), b"sluice".to_vec()));
    assert_eq!(r.count(4).unwrap(), 1);
    assert_eq!(r.str().unwrap(), "cookie");
    assert_eq!(r.count(8).unwrap(), 1);
    assert_eq!((r.str().unwrap(), r.str().unwrap()), ("subject", "ann"));
}

#[test]
fn request_verdicts_are_their_case_index_then_the_payload() {
    assert_eq!(write_request_verdict(&RequestVerdict::Continue), [0]);
    let buf = write_request_verdict(&RequestVerdict::Edit(edits()));
    let mut r = Reader::new(&buf);
    assert_eq!(r.tag(6).unwrap(), 1);
    read_edits(&mut r);
    r.finish().unwrap();

    let buf = write_request_verdict(&RequestVerdict::Respond(LocalResponse {
        status: 401,
        headers: vec![("www-authenticate".into(), b"Bearer".to_vec())],
        body: b"{}".to_vec(),
    }));
    let mut r = Reader::new(&buf);
    assert_eq!((r.tag(6).unwrap(), r.u16().unwrap(), r.count(8).unwrap()), (2, 401, 1));
    assert_eq!(
        (r.str().unwrap(), r.bytes().unwrap(), r.bytes().unwrap()),
        ("www-authenticate", &b"Bearer"[..], &b"{}"[..])
    );
    r.finish().unwrap();

    let buf = write_request_verdict(&RequestVerdict::Coalesce(CoalesceSpec {
        key: "k".into(),
        replay_ttl_ms: 500,
        max_waiters: 7,
        share_errors: true,
    }));
    let mut r = Reader::new(&buf);
    assert_eq!(
        (r.tag(6).unwrap(), r.str().unwrap(), r.u32().unwrap(), r.u32().unwrap()),
        (3, "k", 500, 7)
    );
    assert!(r.bool().unwrap());
    r.finish().unwrap();

    let buf = write_request_verdict(&RequestVerdict::RouteTo(UpstreamChoice {
        url: "http://10.0.0.7:8000".into(),
        lease: Some(42),
        edits: edits(),
    }));
    let mut r = Reader::new(&buf);
    assert_eq!((r.tag(6).unwrap(), r.str().unwrap()), (4, "http://10.0.0.7:8000"));
    assert_eq!((r.bool().unwrap(), r.u64().unwrap()), (true, 42));
    read_edits(&mut r);
    r.finish().unwrap();

    assert_eq!(write_request_verdict(&RequestVerdict::NeedBody(4096)), [5, 0, 16, 0, 0]);
}

#[test]
fn response_verdicts_are_their_case_index_then_the_payload() {
    assert_eq!(write_response_verdict(&ResponseVerdict::Continue), [0]);
    let buf = write_response_verdict(&ResponseVerdict::Edit(edits()));
    let mut r = Reader::new(&buf);
    assert_eq!(r.tag(5).unwrap(), 1);
    read_edits(&mut r);
    r.finish().unwrap();

    let buf = write_response_verdict(&ResponseVerdict::Replace(LocalResponse {
        status: 503,
        headers: vec![],
        body: vec![],
    }));
    assert_eq!(buf, [2, 0xf7, 1, 0, 0, 0, 0, 0, 0, 0, 0]);

    let compress =
        |encoding, level| write_response_verdict(&ResponseVerdict::Compress(EncodingSpec { encoding, level }));
    assert_eq!(compress(Encoding::Gzip, None), [3, 0, 0]);
    assert_eq!(compress(Encoding::Zstd, Some(-1)), [3, 2, 1, 0xff, 0xff, 0xff, 0xff]);

    let buf = write_response_verdict(&ResponseVerdict::Store(CacheSpec {
        key: "GET:/a".into(),
        ttl_ms: 60_000,
        stale_ms: 5_000,
        tags: vec!["items".into()],
        vary: vec!["accept-encoding".into()],
    }));
    let mut r = Reader::new(&buf);
    assert_eq!(
        (r.tag(5).unwrap(), r.str().unwrap(), r.u64().unwrap(), r.u64().unwrap()),
        (4, "GET:/a", 60_000, 5_000)
    );
    assert_eq!((r.count(4).unwrap(), r.str().unwrap()), (1, "items"));
    assert_eq!((r.count(4).unwrap(), r.str().unwrap()), (1, "accept-encoding"));
    r.finish().unwrap();
}
