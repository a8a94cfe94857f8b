use super::*;
use crate::reads::tests::head;

/// Verdicts have no `PartialEq`: compared by their debug form.
fn dbg(v: impl std::fmt::Debug) -> String {
    format!("{v:?}")
}

fn pairs<'a>(r: &mut Reader<'a>) -> Vec<(&'a str, &'a [u8])> {
    let n = r.count(8).unwrap();
    (0..n).map(|_| (r.str().unwrap(), r.bytes().unwrap())).collect()
}

#[test]
fn a_request_head_is_its_fields_in_wit_order() {
    let mut buf = vec![9, 9];
    write_request_head(&mut buf, &head(), None);
    let mut r = Reader::new(&buf);
    let fixed: Vec<&str> = (0..4).map(|_| r.str().unwrap()).collect();
    assert_eq!(fixed, ["GET", "https", "api.example", "/v1?q=1"]);
    assert_eq!(
        pairs(&mut r),
        [
            ("accept", &b"*/*"[..]),
            ("x-api-key", &b"sk_1"[..]),
            ("cookie", &b"a=1"[..]),
            ("x-api-key", &b"sk_2"[..])
        ]
    );
    let fixed: Vec<&str> = (0..3).map(|_| r.str().unwrap()).collect();
    assert_eq!(fixed, ["10.0.0.9", "req-1", "api"]);
    assert_eq!(pairs(&mut r), [("tier", &b"gold"[..]), ("subject", &b"ann"[..])]);
    r.finish().unwrap();
}

#[test]
fn a_declaration_of_reads_leaves_out_what_it_does_not_name() {
    let reads = Reads::new(vec!["X-API-KEY".into()], vec!["subject".into()]);
    let mut buf = Vec::new();
    write_request_head(&mut buf, &head(), Some(&reads));
    let mut r = Reader::new(&buf);
    (0..4).for_each(|_| assert!(r.str().is_ok()));
    assert_eq!(
        pairs(&mut r),
        [("x-api-key", &b"sk_1"[..]), ("x-api-key", &b"sk_2"[..])]
    );
    (0..3).for_each(|_| assert!(r.str().is_ok()));
    assert_eq!(pairs(&mut r), [("subject", &b"ann"[..])]);
    r.finish().unwrap();
}

#[test]
fn a_response_head_is_the_status_then_the_headers() {
    let mut buf = Vec::new();
    let resp = ResponseHead {
        status: 404,
        headers: vec![("etag".into(), b"\"x\"".to_vec())],
    };
    write_response_head(&mut buf, &resp);
    let mut r = Reader::new(&buf);
    assert_eq!(r.u16().unwrap(), 404);
    assert_eq!(pairs(&mut r), [("etag", &b"\"x\""[..])]);
    r.finish().unwrap();
}

/// Packed header edits: one set, no append, one remove, one context entry.
fn put_edits(buf: &mut Vec<u8>) {
    buf.put_len(1);
    buf.put_str("x-user");
    buf.put_bytes(b"ann");
    buf.put_len(0);
    buf.put_len(1);
    buf.put_str("cookie");
    buf.put_len(1);
    buf.put_str("subject");
    buf.put_str("ann");
}

fn expected_edits() -> HeaderEdits {
    HeaderEdits {
        set: vec![("x-user".into(), b"ann".to_vec())],
        append: vec![],
        remove: vec!["cookie".into()],
        context: vec![("subject".into(), "ann".into())],
    }
}

#[test]
fn every_request_verdict_reads_back() {
    assert!(matches!(read_request_verdict(&[0]), Ok(RequestVerdict::Continue)));
    let mut buf = vec![1];
    put_edits(&mut buf);
    assert_eq!(
        dbg(read_request_verdict(&buf).unwrap()),
        dbg(RequestVerdict::Edit(expected_edits()))
    );

    let mut buf = vec![2];
    buf.put_u16(429);
    buf.put_len(1);
    buf.put_str("retry-after");
    buf.put_bytes(b"1");
    buf.put_bytes(b"slow down");
    let RequestVerdict::Respond(resp) = read_request_verdict(&buf).unwrap() else {
        panic!()
    };
    assert_eq!((resp.status, resp.body.as_slice()), (429, &b"slow down"[..]));
    assert_eq!(resp.headers, [("retry-after".to_string(), b"1".to_vec())]);

    let mut buf = vec![3];
    buf.put_str("k");
    buf.put_u32(500);
    buf.put_u32(7);
    buf.put_bool(true);
    let RequestVerdict::Coalesce(spec) = read_request_verdict(&buf).unwrap() else {
        panic!()
    };
    assert_eq!(
        (
            spec.key.as_str(),
            spec.replay_ttl_ms,
            spec.max_waiters,
            spec.share_errors
        ),
        ("k", 500, 7, true)
    );

    let mut buf = vec![4];
    buf.put_str("http://10.0.0.7:8000");
    buf.put_bool(true);
    buf.put_u64(42);
    put_edits(&mut buf);
    let RequestVerdict::RouteTo(choice) = read_request_verdict(&buf).unwrap() else {
        panic!()
    };
    assert_eq!((choice.url.as_str(), choice.lease), ("http://10.0.0.7:8000", Some(42)));
    assert_eq!(dbg(choice.edits), dbg(expected_edits()));

    let mut buf = vec![5];
    buf.put_u32(4096);
    assert!(matches!(read_request_verdict(&buf), Ok(RequestVerdict::NeedBody(4096))));
}

#[test]
fn every_response_verdict_reads_back() {
    assert!(matches!(read_response_verdict(&[0]), Ok(ResponseVerdict::Continue)));
    let mut buf = vec![1];
    put_edits(&mut buf);
    assert_eq!(
        dbg(read_response_verdict(&buf).unwrap()),
        dbg(ResponseVerdict::Edit(expected_edits()))
    );

    let mut buf = vec![2];
    buf.put_u16(503);
    buf.put_len(0);
    buf.put_bytes(b"");
    let ResponseVerdict::Replace(resp) = read_response_verdict(&buf).unwrap() else {
        panic!()
    };
    assert_eq!(resp.status, 503);

    let mut buf = vec![3, 1];
    buf.put_bool(true);
    buf.put_i32(-1);
    let ResponseVerdict::Compress(spec) = read_response_verdict(&buf).unwrap() else {
        panic!()
    };
    assert_eq!((spec.encoding, spec.level), (Encoding::Br, Some(-1)));
    assert!(matches!(
        read_response_verdict(&[3, 2, 0]),
        Ok(ResponseVerdict::Compress(EncodingSpec {
            encoding: Encoding::Zstd,
            level: None
        }))
    ));

    let mut buf = vec![4];
    buf.put_str("GET:/a");
    buf.put_u64(60_000);
    buf.put_u64(5_000);
    buf.put_len(1);
    buf.put_str("items");
    buf.put_len(1);
    buf.put_str("accept-encoding");
    let ResponseVerdict::Store(spec) = read_response_verdict(&buf).unwrap() else {
        panic!()
    };
    assert_eq!(
        (spec.key.as_str(), spec.ttl_ms, spec.stale_ms),
        ("GET:/a", 60_000, 5_000)
    );
    assert_eq!(
        (spec.tags, spec.vary),
        (vec!["items".to_string()], vec!["accept-encoding".to_string()])
    );
}

#[test]
fn a_verdict_that_cannot_be_read_is_an_error_not_a_guess() {
    assert_eq!(
        read_request_verdict(&[6]).unwrap_err(),
        WireError::BadTag { at: 0, tag: 6 }
    );
    assert_eq!(
        read_response_verdict(&[5]).unwrap_err(),
        WireError::BadTag { at: 0, tag: 5 }
    );
    assert!(matches!(read_request_verdict(&[]), Err(WireError::Truncated { .. })));
    assert_eq!(
        read_request_verdict(&[0, 0]).unwrap_err(),
        WireError::Trailing { at: 1, left: 1 }
    );
    let mut buf = vec![1];
    put_edits(&mut buf);
    buf.truncate(buf.len() - 1);
    assert!(matches!(read_request_verdict(&buf), Err(WireError::Truncated { .. })));
    let mut buf = vec![3];
    buf.put_bytes(&[0xc3, 0x28]);
    assert_eq!(read_request_verdict(&buf).unwrap_err(), WireError::NotUtf8 { at: 5 });
}
