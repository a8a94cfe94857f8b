use super::*;

fn parse(json: &str) -> Result<Settings, String> {
    Settings::from_json(json)
}

#[test]
fn defaults_give_no_default_ttl() {
    let s = parse("{}").unwrap();
    assert_eq!(s.default_ttl_s, None);
    assert_eq!(s.max_heuristic_ttl_s, 86_400);
    assert_eq!(s.max_object_bytes, 8 * 1024 * 1024);
    assert!(!s.store_set_cookie);
    assert!(s.cache_authorized);
    assert_eq!(s.key_query, KeyQuery::All);
    assert_eq!(s.key_identity, None);
    assert!(s.key_headers.is_empty() && s.rules.is_empty());
}

#[test]
fn key_query_forms() {
    for (json, want) in [
        (r#"{"key_query": "all"}"#, KeyQuery::All),
        (r#"{"key_query": "sorted"}"#, KeyQuery::Sorted),
        (r#"{"key_query": "none"}"#, KeyQuery::Only(vec![])),
        (r#"{"key_query": []}"#, KeyQuery::Only(vec![])),
        (
            r#"{"key_query": ["page", "q", "page"]}"#,
            KeyQuery::Only(vec!["page".into(), "q".into()]),
        ),
    ] {
        assert_eq!(parse(json).unwrap().key_query, want, "{json}");
    }
}

#[test]
fn bad_values_are_refused_with_the_key_named() {
    for (json, needle) in [
        (r#"{"ttl": 5}"#, "unknown field"),
        (r#"{"default_ttl_s": -1}"#, "invalid value"),
        (r#"{"default_ttl_s": 40000000}"#, "default_ttl_s"),
        (r#"{"max_heuristic_ttl_s": 40000000}"#, "max_heuristic_ttl_s"),
        (r#"{"max_object_bytes": 0}"#, "max_object_bytes"),
        (r#"{"max_object_bytes": 9000000}"#, "max_object_bytes"),
        (r#"{"key_headers": ["bad header"]}"#, "key_headers"),
        (r#"{"key_headers": ["Accept", "accept"]}"#, "twice"),
        (r#"{"key_query": "some"}"#, "sorted"),
        (r#"{"key_query": 3}"#, "sorted"),
        (r#"{"key_query": ["a=b"]}"#, "key_query"),
        (r#"{"rules": [{"prefix": ""}]}"#, "prefix"),
        (r#"{"rules": [{"prefix": "api"}]}"#, "prefix"),
        (r#"{"rules": [{"prefix": "/a?x=1"}]}"#, "prefix"),
        (r#"{"rules": [{"prefix": "/a"}, {"prefix": "/a"}]}"#, "two rules"),
        (r#"{"rules": [{"prefix": "/a", "override": true}]}"#, "without `ttl_s`"),
        (r#"{"rules": [{"prefix": "/a", "ttl": 3}]}"#, "unknown field"),
        (r#"{"rules": [{"prefix": "/a", "tags": ["has space"]}]}"#, "tag"),
        (r#"{"rules": [{"prefix": "/a", "tags": [""]}]}"#, "tag"),
        (
            r#"{"rules": [{"prefix": "/a", "stale_if_error_s": 99999999}]}"#,
            "stale_if_error_s",
        ),
        (
            r#"{"rules": [{"prefix": "/a", "key_headers": ["a b"]}]}"#,
            "key_headers",
        ),
        (r#"{"store_set_cookie": "yes"}"#, "invalid type"),
    ] {
        let error = parse(json).unwrap_err();
        assert!(error.contains(needle), "{json}: {error}");
        assert!(error.starts_with("invalid config: "), "{error}");
    }
}

#[test]
fn zero_ttl_with_a_stale_window_is_accepted() {
    // ttl 0 + stale-while-revalidate: every hit refreshes in the background; a sane setup.
    let s = parse(r#"{"rules": [{"prefix": "/feed", "ttl_s": 0, "override": true, "stale_while_revalidate_s": 30}]}"#)
        .unwrap();
    let p = s.policy("/feed/1");
    assert_eq!((p.override_ttl_s, p.stale_while_revalidate_s), (Some(0), Some(30)));
}

#[test]
fn longest_prefix_wins_and_overrides_the_top_level() {
    let s = parse(
        r#"{
            "default_ttl_s": 60,
            "key_headers": ["Accept"],
            "key_query": "sorted",
            "rules": [
                {"prefix": "/api", "ttl_s": 10, "tags": ["api"]},
                {"prefix": "/api/list", "ttl_s": 1800, "override": true, "stale_if_error_s": 600,
                 "tags": ["list"], "key_headers": ["X-Tenant"], "key_query": ["page"], "key_identity": false}
            ]
        }"#,
    )
    .unwrap();
    let top = s.policy("/other");
    assert_eq!(top.default_ttl_s, Some(60));
    assert_eq!(top.override_ttl_s, None);
    assert_eq!(top.key_headers, ["accept"]);
    assert_eq!(top.key_query, &KeyQuery::Sorted);
    assert!(top.tags.is_empty());

    let api = s.policy("/api/items");
    assert_eq!((api.default_ttl_s, api.override_ttl_s), (Some(10), None));
    assert_eq!(api.tags, ["api"]);

    let list = s.policy("/api/list/7");
    assert_eq!((list.default_ttl_s, list.override_ttl_s), (Some(1800), Some(1800)));
    assert_eq!(list.stale_if_error_s, Some(600));
    assert_eq!(list.tags, ["list"]);
    assert_eq!(list.key_headers, ["x-tenant"]);
    assert_eq!(list.key_query, &KeyQuery::Only(vec!["page".into()]));
    assert_eq!(list.key_identity, Some(false));
    // Segment boundaries, as route `path_prefix`: `/api/listing` is under `/api`, not `/api/list`.
    assert_eq!(s.rule_for("/api/listing").map(|r| r.prefix.as_str()), Some("/api"));
    assert_eq!(s.rule_for("/api/list").map(|r| r.prefix.as_str()), Some("/api/list"));
    assert_eq!(s.rule_for("/apix").map(|r| r.prefix.as_str()), None);
    for (path, prefix, want) in [
        ("/a/b", "/a", true),
        ("/a", "/a", true),
        ("/ab", "/a", false),
        ("/a/b", "/a/", true),
        ("/a", "/a/", false),
        ("/anything", "/", true),
    ] {
        assert_eq!(crate::policy::under_prefix(path, prefix), want, "{path} {prefix}");
    }
}

#[test]
fn targeted_fields_rfc9213() {
    let s = parse("{}").unwrap();
    assert!(s.cdn_cache_control);
    assert_eq!(s.target_field, None);
    let s = parse(r#"{"target_field": "Sluice-Cache-Control", "cdn_cache_control": false}"#).unwrap();
    assert_eq!(s.target_field.as_deref(), Some("sluice-cache-control"));
    assert!(!s.cdn_cache_control);
    for bad in ["Cache-Control", "cdn-cache-control", "expires", "bad name", ""] {
        let err = parse(&format!(r#"{{"target_field": "{bad}"}}"#)).unwrap_err();
        assert!(err.contains("target_field"), "{bad}: {err}");
    }
}
