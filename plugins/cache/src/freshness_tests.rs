use super::*;
use crate::dates::{EXPIRED, format_http_date};
use crate::settings::Settings;

/// 2026-01-01T00:00:00Z.
const T0: i64 = 1_767_225_600;
const T0_MS: u64 = T0 as u64 * 1000;

use sluice_plugin_sdk::header_list as h;

fn date(offset_s: i64) -> String {
    format_http_date(T0 + offset_s)
}

/// The lifetime in seconds and its source, for a response received at T0.
fn life(status: u16, headers: &[(&str, &str)], policy: &Policy) -> (u64, Source) {
    let headers = h(headers);
    let l = lifetime(
        status,
        &CacheControl::parse(&headers),
        &ResponseDates::parse(&headers, T0),
        T0_MS,
        policy,
    );
    (l.ms / 1000, l.source)
}

#[test]
fn rfc9111_4_2_1_lifetime_precedence() {
    let settings = Settings::default();
    let p = settings.policy("/");
    let d = date(0);
    let exp = date(300);
    for (status, headers, want) in [
        (
            200,
            vec![("cache-control", "s-maxage=10, max-age=20"), ("expires", exp.as_str())],
            (10, Source::SMaxAge),
        ),
        (
            200,
            vec![("cache-control", "max-age=20"), ("expires", exp.as_str())],
            (20, Source::MaxAge),
        ),
        (
            200,
            vec![("date", d.as_str()), ("expires", exp.as_str())],
            (300, Source::Expires),
        ),
        // No Date: the receipt time (T0) stands in.
        (200, vec![("expires", exp.as_str())], (300, Source::Expires)),
        // Expires before Date → 0; invalid Expires → already expired.
        (
            200,
            vec![("date", exp.as_str()), ("expires", d.as_str())],
            (0, Source::Expires),
        ),
        (200, vec![("expires", "0")], (0, Source::Expires)),
        // Most restrictive wins: no-cache beats max-age.
        (
            200,
            vec![("cache-control", "max-age=60, no-cache")],
            (0, Source::NoCache),
        ),
        // Invalid max-age is stale, and hides Expires.
        (
            200,
            vec![("cache-control", "max-age=soon"), ("expires", exp.as_str())],
            (0, Source::MaxAge),
        ),
        (
            200,
            vec![("cache-control", "max-age=99999999999999999999")],
            (1 << 31, Source::MaxAge),
        ),
        // Explicit freshness applies to any status.
        (500, vec![("cache-control", "max-age=5")], (5, Source::MaxAge)),
    ] {
        assert_eq!(life(status, &headers, &p), want, "{status} {headers:?}");
    }
    assert_eq!(EXPIRED, 0);
}

#[test]
fn rfc9111_4_2_2_heuristics_only_where_allowed() {
    let mut settings = Settings::default();
    let p = settings.policy("/");
    let d = date(0);
    let lm_1000 = date(-1000);
    let lm_old = date(-10_000_000);
    let lm_future = date(60);
    for (status, headers, want) in [
        (
            200,
            vec![("date", d.as_str()), ("last-modified", lm_1000.as_str())],
            (100, Source::Heuristic),
        ),
        // Capped at max_heuristic_ttl_s (one day by default).
        (
            200,
            vec![("date", d.as_str()), ("last-modified", lm_old.as_str())],
            (86_400, Source::Heuristic),
        ),
        // Last-Modified after Date gives nothing.
        (
            200,
            vec![("date", d.as_str()), ("last-modified", lm_future.as_str())],
            (0, Source::None),
        ),
        // No Last-Modified and no default TTL: no freshness at all.
        (200, vec![("date", d.as_str())], (0, Source::None)),
        // 302 is not heuristically cacheable …
        (
            302,
            vec![("date", d.as_str()), ("last-modified", lm_1000.as_str())],
            (0, Source::None),
        ),
        // … unless public.
        (
            302,
            vec![("cache-control", "public"), ("last-modified", lm_1000.as_str())],
            (100, Source::Heuristic),
        ),
        (404, vec![("last-modified", lm_1000.as_str())], (100, Source::Heuristic)),
        (206, vec![("last-modified", lm_1000.as_str())], (0, Source::None)),
    ] {
        assert_eq!(life(status, &headers, &p), want, "{status} {headers:?}");
    }
    settings.default_ttl_s = Some(60);
    settings.max_heuristic_ttl_s = 50;
    let p = settings.policy("/");
    assert_eq!(life(200, &[("last-modified", &lm_1000)], &p), (50, Source::Heuristic));
    assert_eq!(life(200, &[], &p), (60, Source::DefaultTtl));
    assert_eq!(
        life(201, &[], &p),
        (0, Source::None),
        "no default TTL for a status the RFC forbids"
    );
    settings.max_heuristic_ttl_s = 0;
    let p = settings.policy("/");
    assert_eq!(life(200, &[("last-modified", &lm_1000)], &p), (60, Source::DefaultTtl));
}

#[test]
fn override_replaces_upstream_freshness() {
    let settings = Settings::from_json(r#"{"rules": [{"prefix": "/", "ttl_s": 1800, "override": true}]}"#).unwrap();
    let p = settings.policy("/x");
    assert_eq!(
        life(200, &[("cache-control", "no-cache, max-age=0")], &p),
        (1800, Source::Override)
    );
    assert_eq!(life(200, &[("expires", "0")], &p), (1800, Source::Override));
    let settings = Settings::from_json(r#"{"rules": [{"prefix": "/", "ttl_s": 1800}]}"#).unwrap();
    let p = settings.policy("/x");
    assert_eq!(life(200, &[("cache-control", "max-age=5")], &p), (5, Source::MaxAge));
    assert_eq!(life(200, &[], &p), (1800, Source::DefaultTtl));
}

#[test]
fn rfc9111_4_2_3_age_calculation() {
    let d = date(0);
    for (headers, request_ms, response_ms, now_ms, want_initial, want_current) in [
        // Date = receipt, no Age, instant request: age 0 then resident time.
        (vec![("date", d.as_str())], T0_MS, T0_MS, T0_MS + 5_000, 0, 5_000),
        // apparent_age: received 3 s after Date.
        (
            vec![("date", d.as_str())],
            T0_MS + 3_000,
            T0_MS + 3_000,
            T0_MS + 3_000,
            3_000,
            3_000,
        ),
        // corrected_age_value: Age 10 + response delay 2 s beats apparent age 3 s.
        (
            vec![("date", d.as_str()), ("age", "10")],
            T0_MS + 1_000,
            T0_MS + 3_000,
            T0_MS + 4_000,
            12_000,
            13_000,
        ),
        // Date in the future (clock skew): apparent age is 0, not negative.
        (
            vec![("date", d.as_str())],
            T0_MS - 9_000,
            T0_MS - 9_000,
            T0_MS - 9_000,
            0,
            0,
        ),
        // No Date: only Age and the delay count.
        (vec![("age", "60")], T0_MS, T0_MS + 500, T0_MS + 500, 60_500, 60_500),
        (
            vec![("age", "99999999999999999999")],
            T0_MS,
            T0_MS,
            T0_MS,
            (1u64 << 31) * 1000,
            (1u64 << 31) * 1000,
        ),
    ] {
        let dates = ResponseDates::parse(&h(&headers), T0);
        assert_eq!(
            initial_age_ms(&dates, request_ms, response_ms),
            want_initial,
            "{headers:?}"
        );
        assert_eq!(
            current_age_ms(&dates, request_ms, response_ms, now_ms),
            want_current,
            "{headers:?}"
        );
    }
}

fn l(ms: u64) -> Lifetime {
    Lifetime {
        ms,
        source: Source::MaxAge,
    }
}

#[test]
fn rfc9111_4_2_4_and_5_2_1_usable() {
    use Usable::*;
    let settings = Settings::default();
    let p = settings.policy("/");
    let cc = |s: &str| CacheControl::parse(&h(&[("cache-control", s)]));
    let none = CacheControl::default();
    let swr = staleness(&cc("stale-while-revalidate=30"), &p);
    let plain = staleness(&none, &p);
    let strict = staleness(&cc("must-revalidate"), &p);
    // (request, response cc, lifetime ms, age ms, staleness, expected)
    for (req, resp, life_ms, age, st, want) in [
        ("", "", 60_000, 10_000, plain, Fresh),
        ("", "", 60_000, 60_000, plain, Revalidate { by_request: false }),
        ("no-cache", "", 60_000, 0, plain, Revalidate { by_request: true }),
        ("", "no-cache", 60_000, 0, plain, Revalidate { by_request: false }),
        ("max-age=5", "", 60_000, 10_000, plain, Revalidate { by_request: true }),
        ("max-age=10", "", 60_000, 10_000, plain, Fresh),
        ("max-age=0", "", 60_000, 1, plain, Revalidate { by_request: true }),
        (
            "min-fresh=55",
            "",
            60_000,
            10_000,
            plain,
            Revalidate { by_request: true },
        ),
        ("min-fresh=50", "", 60_000, 10_000, plain, Fresh),
        // stale-while-revalidate (RFC 5861 §3): within 30 s of going stale.
        ("", "", 60_000, 89_999, swr, WhileRevalidate),
        ("", "", 60_000, 90_000, swr, Revalidate { by_request: false }),
        // max-stale (§5.2.1.2).
        ("max-stale", "", 60_000, 999_999, plain, StaleAccepted),
        ("max-stale=10", "", 60_000, 70_000, plain, StaleAccepted),
        (
            "max-stale=10",
            "",
            60_000,
            70_001,
            plain,
            Revalidate { by_request: false },
        ),
        // must-revalidate beats max-stale (§5.2.2.2).
        (
            "max-stale",
            "",
            60_000,
            61_000,
            strict,
            Revalidate { by_request: false },
        ),
        (
            "min-fresh=1, max-stale",
            "",
            60_000,
            61_000,
            plain,
            Revalidate { by_request: false },
        ),
    ] {
        assert_eq!(
            usable(&cc(req), &cc(resp), &l(life_ms), age, &st),
            want,
            "{req:?} {resp:?} {age}"
        );
    }
}

#[test]
fn rfc5861_windows_and_who_forbids_them() {
    let settings = Settings::from_json(
        r#"{"rules": [{"prefix": "/r", "stale_while_revalidate_s": 5, "stale_if_error_s": 50},
                      {"prefix": "/o", "ttl_s": 1, "override": true, "stale_if_error_s": 7}]}"#,
    )
    .unwrap();
    let cc = |s: &str| CacheControl::parse(&h(&[("cache-control", s)]));
    let r = settings.policy("/r");
    let st = |forbidden, swr, sie| Staleness {
        forbidden,
        while_revalidate_ms: swr,
        if_error_ms: sie,
    };
    for (policy, resp, want) in [
        (&r, "max-age=1", st(false, 5_000, 50_000)),
        (&r, "max-age=1, stale-while-revalidate=9", st(false, 9_000, 50_000)),
        (&r, "max-age=1, stale-if-error=0", st(false, 5_000, 0)),
        (&r, "max-age=1, must-revalidate, stale-if-error=60", st(true, 0, 0)),
        (&r, "proxy-revalidate", st(true, 0, 0)),
        (&r, "s-maxage=1", st(true, 0, 0)),
        (
            &settings.policy("/o"),
            "must-revalidate, stale-if-error=60",
            st(false, 0, 7_000),
        ),
    ] {
        assert_eq!(staleness(&cc(resp), policy), want, "{resp}");
    }
    // (lifetime, initial age, staleness) → (ttl_ms, stale_ms)
    assert_eq!(storage_times(60_000, 0, &st(false, 5_000, 50_000)), (60_000, 50_000));
    assert_eq!(storage_times(60_000, 20_000, &st(false, 5_000, 0)), (40_000, 5_000));
    assert_eq!(storage_times(60_000, 62_000, &st(false, 5_000, 0)), (0, 3_000));
    assert_eq!(storage_times(60_000, 99_000, &st(false, 5_000, 0)), (0, 0));
    assert_eq!(storage_times(60_000, 0, &st(true, 5_000, 5_000)), (60_000, 0));
}

#[test]
fn rfc5861_4_stale_if_error() {
    let cc = |s: &str| CacheControl::parse(&h(&[("cache-control", s)]));
    let st = |forbidden, sie| Staleness {
        forbidden,
        while_revalidate_ms: 0,
        if_error_ms: sie,
    };
    for (req, age, staleness, want) in [
        ("", 70_000, st(false, 10_000), true),
        ("", 70_001, st(false, 10_000), false),
        ("", 61_000, st(false, 0), false),
        ("stale-if-error=20", 75_000, st(false, 0), true),
        ("max-stale", 9_999_999, st(false, 0), true),
        ("max-stale=5", 66_000, st(false, 0), false),
        ("stale-if-error=999", 61_000, st(true, 999_000), false),
    ] {
        assert_eq!(
            usable_on_error(&cc(req), &l(60_000), age, &staleness),
            want,
            "{req:?} {age}"
        );
    }
}
