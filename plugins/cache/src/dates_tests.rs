use super::*;

/// 2026-01-01T00:00:00Z, for the two-digit-year rule.
const NOW: i64 = 1_767_225_600;
/// Sun, 06 Nov 1994 08:49:37 GMT (the RFC's example).
const EXAMPLE: i64 = 784_111_777;

use sluice_plugin_sdk::header_list as h;

#[test]
fn rfc9110_5_6_7_three_formats() {
    for (input, want) in [
        ("Sun, 06 Nov 1994 08:49:37 GMT", Some(EXAMPLE)),
        ("Sunday, 06-Nov-94 08:49:37 GMT", Some(EXAMPLE)),
        ("Sun Nov  6 08:49:37 1994", Some(EXAMPLE)),
        ("Sun Nov 06 08:49:37 1994", Some(EXAMPLE)),
        ("\tSun, 06 Nov 1994 08:49:37 GMT", Some(EXAMPLE)),
        ("  Sun, 06 Nov 1994 08:49:37 GMT ", Some(EXAMPLE)),
        ("Thu, 01 Jan 1970 00:00:00 GMT", Some(0)),
        ("Wed, 31 Dec 1969 23:59:59 GMT", Some(-1)),
        ("Tue, 29 Feb 2000 12:00:00 GMT", Some(951_825_600)),
        ("Fri, 31 Dec 9999 23:59:59 GMT", Some(253_402_300_799)),
        // Leap second accepted.
        ("Sat, 31 Dec 2016 23:59:60 GMT", Some(1_483_228_800)),
    ] {
        assert_eq!(parse_http_date(input, NOW), want, "{input:?}");
    }
}

#[test]
fn rfc9110_5_6_7_invalid_dates() {
    for input in [
        "",
        "0",
        "-1",
        "tomorrow",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 31 Nov 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT",
        "sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
        "Sun, 00 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 0000 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT extra",
        // The grammar's spacing and digit counts are exact (the issue's own example first).
        "Thu, 18  Aug  2050 02:01:18 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT",
        "Sun,06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994  08:49:37 GMT",
        "Sun, 06\tNov 1994 08:49:37 GMT",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 gmt",
        "Sun, 06 Nov 1994 08:49:37 GMT ,",
        "Sun, 06 Nov +994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:3 GMT",
        "Sun, 06 Nov 1994 08:49:377 GMT",
        "Sunday, 06-Nov-94  08:49:37 GMT",
        "Sunday,  06-Nov-94 08:49:37 GMT",
        "Sunday, 6-Nov-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "Sun Nov   6 08:49:37 1994",
        "Sun  Nov  6 08:49:37 1994",
        "Sun Nov 06 08:49:37 1994 GMT",
        "SunNov  6 08:49:37 1994",
        "Sun Nov  6 08:49:37  1994",
    ] {
        assert_eq!(parse_http_date(input, NOW), None, "{input:?}");
    }
    assert_eq!(parse_http_date(&"Sun, ".repeat(10_000), NOW), None);
}

#[test]
fn rfc9110_5_6_7_two_digit_years_are_never_more_than_50_years_ahead() {
    // In 2026: 76 → 2076 (50 years ahead), 77 → 1977.
    let y2076 = parse_http_date("Wednesday, 01-Jan-76 00:00:00 GMT", NOW).unwrap();
    assert_eq!(format_http_date(y2076), "Wed, 01 Jan 2076 00:00:00 GMT");
    let y1977 = parse_http_date("Saturday, 01-Jan-77 00:00:00 GMT", NOW).unwrap();
    assert_eq!(format_http_date(y1977), "Sat, 01 Jan 1977 00:00:00 GMT");
    let y2030 = parse_http_date("Tuesday, 01-Jan-30 00:00:00 GMT", NOW).unwrap();
    assert_eq!(format_http_date(y2030), "Tue, 01 Jan 2030 00:00:00 GMT");
}

#[test]
fn format_round_trips() {
    for t in [0, EXAMPLE, 951_825_600, NOW, -86_400, 253_402_300_799] {
        assert_eq!(parse_http_date(&format_http_date(t), NOW), Some(t), "{t}");
    }
    assert_eq!(format_http_date(EXAMPLE), "Sun, 06 Nov 1994 08:49:37 GMT");
}

#[test]
fn rfc9111_5_3_invalid_expires_is_already_expired() {
    let d = ResponseDates::parse(&h(&[("expires", "0")]), NOW);
    assert_eq!(d.expires, Some(EXPIRED));
    let d = ResponseDates::parse(&h(&[("expires", "Sun, 06 Nov 1994 08:49:37 GMT")]), NOW);
    assert_eq!(d.expires, Some(EXAMPLE));
    // §4.2.1: two Expires that disagree → stale; that agree → the value.
    let d = ResponseDates::parse(
        &h(&[
            ("expires", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("Expires", "Sun, 06 Nov 1994 08:49:38 GMT"),
        ]),
        NOW,
    );
    assert_eq!(d.expires, Some(EXPIRED));
    let d = ResponseDates::parse(
        &h(&[
            ("expires", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("expires", "Sunday, 06-Nov-94 08:49:37 GMT"),
        ]),
        NOW,
    );
    assert_eq!(d.expires, Some(EXAMPLE));
    assert_eq!(ResponseDates::parse(&h(&[]), NOW).expires, None);
}

#[test]
fn rfc9111_5_1_age_and_the_other_dates() {
    for (age, want) in [
        ("10", Some(10)),
        ("10, 20", Some(10)),
        (" 7 ", Some(7)),
        ("99999999999999999999", Some(DELTA_MAX)),
        ("-5", None),
        ("ten", None),
        ("", None),
    ] {
        assert_eq!(ResponseDates::parse(&h(&[("age", age)]), NOW).age, want, "{age:?}");
    }
    let d = ResponseDates::parse(
        &h(&[
            ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
            ("date", "garbage"),
            ("last-modified", "yesterday"),
        ]),
        NOW,
    );
    assert_eq!((d.date, d.last_modified), (Some(EXAMPLE), None));
    let d = ResponseDates::parse(
        &h(&[("date", "garbage"), ("date", "Sun, 06 Nov 1994 08:49:37 GMT")]),
        NOW,
    );
    assert_eq!(d.date, None, "the first line is the one read");
}
