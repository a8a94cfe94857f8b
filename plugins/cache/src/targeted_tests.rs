use super::*;
use crate::directives::Scope;
use sluice_plugin_sdk::header_list as h;

const BOTH: Targets<'static> = Targets {
    own: Some("sluice-cache-control"),
    cdn: true,
};

#[test]
fn rfc9213_2_1_members_map_onto_directives() {
    let cc = parse(
        &h(&[(
            "cdn-cache-control",
            "max-age=60, s-maxage=30, private=\"set-cookie\", must-revalidate",
        )]),
        CDN_CACHE_CONTROL,
    )
    .unwrap();
    assert!(cc.targeted);
    assert_eq!((cc.max_age, cc.s_maxage), (Some(60), Some(30)));
    assert_eq!(cc.private, Some(Scope::Fields(vec!["set-cookie".into()])));
    assert!(cc.must_revalidate);
    let cc = parse(
        &h(&[("cdn-cache-control", "no-store, no-cache, private")]),
        CDN_CACHE_CONTROL,
    )
    .unwrap();
    assert!(cc.no_store && cc.no_cache_all() && cc.private_all());
    // ?0 is the directive's absence; parameters are ignored; unknown keys are ignored.
    let cc = parse(
        &h(&[("cdn-cache-control", "no-store=?0, max-age=5;foo=bar, x-thing=(a b)")]),
        CDN_CACHE_CONTROL,
    )
    .unwrap();
    assert!(!cc.no_store);
    assert_eq!(cc.max_age, Some(5));
    let cc = parse(
        &h(&[("cdn-cache-control", "stale-while-revalidate=10, stale-if-error=20")]),
        CDN_CACHE_CONTROL,
    )
    .unwrap();
    assert_eq!((cc.stale_while_revalidate, cc.stale_if_error), (Some(10), Some(20)));
}

#[test]
fn rfc9213_2_1_wrong_value_types_get_the_invalid_reading() {
    for value in [
        "max-age=1.5",
        "max-age=-1",
        "max-age=\"60\"x",
        "max-age=:AAAA:",
        "max-age=(1 2)",
    ] {
        match parse(&h(&[("cdn-cache-control", value)]), CDN_CACHE_CONTROL) {
            // Either the Dictionary is invalid (ignored) or max-age reads as stale.
            None => {}
            Some(cc) => assert_eq!(cc.max_age, Some(0), "{value}"),
        }
    }
    // A quoted number is a String: Cache-Control takes `max-age="60"` as 60.
    let cc = parse(&h(&[("cdn-cache-control", "max-age=\"60\"")]), CDN_CACHE_CONTROL).unwrap();
    assert_eq!(cc.max_age, Some(60));
}

#[test]
fn rfc9213_2_1_empty_or_invalid_fields_are_ignored() {
    for value in [
        "",
        "  ",
        "Max-Age=60",
        "max-age=60,",
        "max-age=60;",
        "max age",
        "max-age=60 , , x",
        "é=1",
    ] {
        assert_eq!(
            parse(&h(&[("cdn-cache-control", value)]), CDN_CACHE_CONTROL),
            None,
            "{value:?}"
        );
    }
    assert_eq!(parse(&h(&[]), CDN_CACHE_CONTROL), None);
    let huge = format!("max-age=1, x=\"{}\"", "a".repeat(MAX_FIELD));
    assert_eq!(parse(&h(&[("cdn-cache-control", &huge)]), CDN_CACHE_CONTROL), None);
}

#[test]
fn rfc9213_2_1_field_lines_are_combined() {
    let cc = parse(
        &h(&[
            ("cdn-cache-control", "max-age=60"),
            ("CDN-Cache-Control", "must-revalidate"),
        ]),
        CDN_CACHE_CONTROL,
    )
    .unwrap();
    assert_eq!(cc.max_age, Some(60));
    assert!(cc.must_revalidate);
}

#[test]
fn rfc9213_2_2_the_first_valid_target_wins_over_cache_control() {
    let headers = h(&[
        ("cache-control", "no-store"),
        ("cdn-cache-control", "max-age=60"),
        ("sluice-cache-control", "max-age=600"),
    ]);
    assert_eq!(response_directives(BOTH, &headers).max_age, Some(600));
    let no_own = Targets { own: None, cdn: true };
    let cc = response_directives(no_own, &headers);
    assert_eq!((cc.max_age, cc.no_store), (Some(60), false));
    // Our own field invalid: the next target; every target off or invalid: Cache-Control.
    let headers = h(&[
        ("cache-control", "no-store"),
        ("cdn-cache-control", "max-age=60"),
        ("sluice-cache-control", "max-age=60,,"),
    ]);
    assert_eq!(response_directives(BOTH, &headers).max_age, Some(60));
    let none = Targets { own: None, cdn: false };
    let cc = response_directives(none, &headers);
    assert!(cc.no_store && !cc.targeted);
}
