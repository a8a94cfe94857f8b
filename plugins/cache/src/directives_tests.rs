use super::*;

use sluice_plugin_sdk::header_list as h;

fn cc(lines: &[&str]) -> CacheControl {
    let headers: Vec<_> = lines
        .iter()
        .map(|l| ("Cache-Control".to_string(), l.as_bytes().to_vec()))
        .collect();
    CacheControl::parse(&headers)
}

#[test]
fn rfc9111_1_2_2_delta_seconds() {
    for (input, want) in [
        ("0", Some(0)),
        ("60", Some(60)),
        ("0060", Some(60)),
        ("2147483648", Some(DELTA_MAX)),
        ("2147483649", Some(DELTA_MAX)),
        ("99999999999999999999", Some(DELTA_MAX)),
        ("-1", None),
        ("1.5", None),
        ("", None),
        (" 5", None),
        ("5s", None),
    ] {
        assert_eq!(parse_delta(input), want, "{input:?}");
    }
}

#[test]
fn rfc9111_5_2_max_age_and_s_maxage_values() {
    // (lines, max_age, s_maxage)
    for (lines, max_age, s_maxage) in [
        (&["max-age=60"][..], Some(60), None),
        (&["MAX-AGE=60"], Some(60), None),
        (&["max-age=\"60\""], Some(60), None),
        (&["public, max-age=60, s-maxage=30"], Some(60), Some(30)),
        (&["max-age=60", "s-maxage=10"], Some(60), Some(10)),
        // §1.2.2: overflow → 2^31.
        (&["max-age=99999999999999999999"], Some(DELTA_MAX), None),
        // §4.2.1: invalid freshness is treated as stale.
        (&["max-age=-1"], Some(0), None),
        (&["max-age=abc"], Some(0), None),
        (&["max-age"], Some(0), None),
        (&["max-age=\"60"], Some(0), None),
        (&["s-maxage=1e3"], None, Some(0)),
        // §4.2.1: conflicting duplicates → stale; agreeing duplicates are fine.
        (&["max-age=60, max-age=120"], Some(0), None),
        (&["max-age=60", "max-age=60"], Some(60), None),
    ] {
        let c = cc(lines);
        assert_eq!((c.max_age, c.s_maxage), (max_age, s_maxage), "{lines:?}");
    }
}

#[test]
fn rfc9111_5_2_boolean_directives_and_unknown_ones() {
    let c = cc(&[
        "Public, NO-STORE",
        "must-revalidate,proxy-revalidate , must-understand",
        "x-ext=\"a,b\", immutable",
    ]);
    assert!(c.public && c.no_store && c.must_revalidate && c.proxy_revalidate && c.must_understand);
    assert_eq!(c.max_age, None);
    assert!(c.forbids_stale());
    assert!(!cc(&["public, max-age=5"]).forbids_stale());
    assert!(
        cc(&["s-maxage=5"]).forbids_stale(),
        "§5.2.2.10: s-maxage implies proxy-revalidate"
    );
    let c = cc(&["only-if-cached, bogus, =5, , ,max-age=1"]);
    assert!(c.only_if_cached);
    assert_eq!(c.max_age, Some(1));
}

#[test]
fn rfc9111_5_2_2_4_and_5_2_2_7_qualified_no_cache_and_private() {
    for (lines, no_cache, private) in [
        (&["no-cache"][..], Some(Scope::All), None),
        (
            &["no-cache=\"Set-Cookie\""],
            Some(Scope::Fields(vec!["set-cookie".into()])),
            None,
        ),
        (
            &["no-cache=\"set-cookie, X-Foo\", max-age=5"],
            Some(Scope::Fields(vec!["set-cookie".into(), "x-foo".into()])),
            None,
        ),
        (&["private=x-user"], None, Some(Scope::Fields(vec!["x-user".into()]))),
        (
            &["private=\"b\"", "private=\"a, b\""],
            None,
            Some(Scope::Fields(vec!["a".into(), "b".into()])),
        ),
        // The unqualified form is more restrictive and wins, whatever the order.
        (&["private=\"a\", private"], None, Some(Scope::All)),
        (&["no-cache, no-cache=\"a\""], Some(Scope::All), None),
        (&["no-cache=\"\""], Some(Scope::All), None),
        (&["no-cache=\"a"], Some(Scope::All), None),
    ] {
        let c = cc(lines);
        assert_eq!(
            (c.no_cache.clone(), c.private.clone()),
            (no_cache, private),
            "{lines:?}"
        );
    }
    let c = cc(&["private=\"x-b\", no-cache=\"x-a, x-b\""]);
    assert_eq!(c.fields_to_strip(), ["x-a", "x-b"]);
    assert!(!c.private_all() && !c.no_cache_all());
}

#[test]
fn rfc9111_5_2_1_request_directives() {
    for (lines, max_stale, min_fresh) in [
        (&["max-stale"][..], Some(MaxStale::Any), None),
        (&["max-stale=30"], Some(MaxStale::Seconds(30)), None),
        (&["max-stale=30, max-stale"], Some(MaxStale::Seconds(30)), None),
        (&["max-stale, max-stale=30"], Some(MaxStale::Seconds(30)), None),
        (&["max-stale=30, max-stale=10"], Some(MaxStale::Seconds(10)), None),
        (&["max-stale=abc"], None, None),
        (&["min-fresh=10, min-fresh=20"], None, Some(20)),
        (&["min-fresh=-3"], None, None),
    ] {
        let c = cc(lines);
        assert_eq!((c.max_stale, c.min_fresh), (max_stale, min_fresh), "{lines:?}");
    }
}

#[test]
fn rfc5861_stale_windows_take_the_smallest_and_ignore_garbage() {
    let c = cc(&[
        "stale-while-revalidate=60, stale-if-error=600",
        "stale-while-revalidate=30",
    ]);
    assert_eq!((c.stale_while_revalidate, c.stale_if_error), (Some(30), Some(600)));
    let c = cc(&["stale-while-revalidate=soon, stale-if-error"]);
    assert_eq!((c.stale_while_revalidate, c.stale_if_error), (None, None));
}

#[test]
fn rfc9111_5_4_pragma_only_without_cache_control() {
    let req = CacheControl::parse_request(&h(&[("pragma", "No-Cache")]));
    assert!(req.no_cache_all());
    let req = CacheControl::parse_request(&h(&[("pragma", "x, no-cache")]));
    assert!(req.no_cache_all());
    let req = CacheControl::parse_request(&h(&[("pragma", "no-cache"), ("cache-control", "max-age=5")]));
    assert_eq!(req.no_cache, None);
    assert_eq!(req.max_age, Some(5));
    assert_eq!(CacheControl::parse_request(&h(&[("pragma", "nocache")])).no_cache, None);
}

#[test]
fn garbage_is_survived() {
    let huge = format!("max-age={}, {}", "9".repeat(10_000), "x,".repeat(10_000));
    assert_eq!(cc(&[&huge]).max_age, Some(DELTA_MAX));
    let headers = vec![(
        "cache-control".to_string(),
        vec![0xff, 0xfe, b',', b'n', b'o', b'-', b's', b't', b'o', b'r', b'e'],
    )];
    assert!(CacheControl::parse(&headers).no_store);
    let c = cc(&["\"\"\"", "max-age=\"\\\"5\\\"\""]);
    assert_eq!(c.max_age, Some(0));
}
