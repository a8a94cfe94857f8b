use super::*;

#[test]
fn every_value_reads_back_as_written() {
    let mut buf = Vec::new();
    buf.put_u8(7);
    buf.put_u16(0xbeef);
    buf.put_u32(70_000);
    buf.put_u64(u64::MAX - 1);
    buf.put_i32(-3);
    buf.put_bool(true);
    buf.put_str("héllo");
    buf.put_bytes(&[0, 255]);
    buf.put_len(1);
    buf.put_u8(9);
    let mut r = Reader::new(&buf);
    assert_eq!(r.u8().unwrap(), 7);
    assert_eq!(r.u16().unwrap(), 0xbeef);
    assert_eq!(r.u32().unwrap(), 70_000);
    assert_eq!(r.u64().unwrap(), u64::MAX - 1);
    assert_eq!(r.i32().unwrap(), -3);
    assert!(r.bool().unwrap());
    assert_eq!(r.str().unwrap(), "héllo");
    assert_eq!(r.bytes().unwrap(), &[0, 255]);
    assert_eq!(r.count(1).unwrap(), 1);
    assert_eq!(r.u8().unwrap(), 9);
    r.finish().unwrap();
}

#[test]
fn the_layout_is_little_endian_with_u32_lengths() {
    let mut buf = Vec::new();
    buf.put_u16(0x0102);
    buf.put_str("ab");
    assert_eq!(buf, [0x02, 0x01, 2, 0, 0, 0, b'a', b'b']);
}

#[test]
fn a_short_buffer_is_truncated_where_the_value_starts() {
    let mut buf = Vec::new();
    buf.put_str("abcdef");
    buf.truncate(7);
    let mut r = Reader::new(&buf);
    assert_eq!(r.str(), Err(WireError::Truncated { at: 4, wanted: 6 }));
    assert_eq!(
        Reader::new(&[1, 2]).u32(),
        Err(WireError::Truncated { at: 0, wanted: 4 })
    );
}

#[test]
fn a_count_the_buffer_cannot_hold_fails_before_any_item() {
    let mut buf = Vec::new();
    buf.put_u32(1_000_000);
    buf.extend_from_slice(&[0; 16]);
    let err = Reader::new(&buf).count(8).unwrap_err();
    assert_eq!(
        err,
        WireError::Truncated {
            at: 0,
            wanted: 8_000_000
        }
    );
    // Every item takes at least a byte, whatever the caller says.
    assert!(Reader::new(&buf).count(0).is_err());
}

#[test]
fn bad_utf8_bad_tags_and_leftovers_are_errors() {
    let mut buf = Vec::new();
    buf.put_bytes(&[0xff, 0xfe]);
    assert_eq!(Reader::new(&buf).str(), Err(WireError::NotUtf8 { at: 4 }));
    assert_eq!(Reader::new(&[2]).bool(), Err(WireError::BadTag { at: 0, tag: 2 }));
    assert_eq!(Reader::new(&[5]).tag(5), Err(WireError::BadTag { at: 0, tag: 5 }));
    let mut r = Reader::new(&[1, 9, 9]);
    r.u8().unwrap();
    assert_eq!(r.finish(), Err(WireError::Trailing { at: 1, left: 2 }));
}

#[test]
fn errors_say_where() {
    let text = WireError::Truncated { at: 4, wanted: 6 }.to_string();
    assert!(text.contains("byte 4") && text.contains('6'), "{text}");
}

#[test]
#[allow(unsafe_code)]
fn a_trusted_string_reads_like_a_checked_one() {
    let mut buf = Vec::new();
    buf.put_str("héllo");
    buf.put_u32(9);
    // SAFETY: written by put_str from a &str.
    assert_eq!(unsafe { Reader::new(&buf).str_unchecked() }, Ok("héllo"));
    let mut r = Reader::new(&buf[..6]);
    assert!(matches!(unsafe { r.str_unchecked() }, Err(WireError::Truncated { .. })));
}
