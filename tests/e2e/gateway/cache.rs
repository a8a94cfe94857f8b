//! The HTTP cache (the cache plugin on the host's `http-cache`) through the gateway, against a
//! counting origin: hits, revalidation, the client's own conditionals, variants, what must not
//! be stored, invalidation by unsafe methods and by the admin API, the per-object limit, and
//! stale answers (stale-while-revalidate, stale-if-error). Redis, stampedes and two instances
//! are in `cache_shared.rs`.

use std::time::Duration;

use bytes::Bytes;
use sluice_e2e::origin::{BIG, Origin};
use sluice_e2e::{Answer, Gateway, full, get, send, start_gateway};

/// A gateway with the cache plugin (configured by `config`, a TOML inline table's contents)
/// on route `r` in front of `origin`; `extra` is prepended.
pub async fn cache_gateway(origin: &Origin, config: &str, extra: &str) -> Gateway {
    start_gateway(&format!(
        "{extra}[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"cache\", config = {{ {config} }} }}]\n",
        origin.addr
    ))
    .await
}

/// GET `url` with `headers`.
pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = hyper::Request::get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    send(req.body(full(Bytes::new())).unwrap()).await
}

/// The body as text.
pub fn text(a: &Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

/// The `Cache-Status` value, or empty.
pub fn status_of(a: &Answer) -> String {
    a.header("cache-status").unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_fresh_response_is_stored_then_served_from_the_cache() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let first = get(&gw.url("/fresh/a")).await;
    assert_eq!(first.status, 200);
    assert_eq!(text(&first), "/fresh/a answer 1");
    assert!(
        status_of(&first).contains("fwd=uri-miss") && status_of(&first).contains("stored"),
        "{}",
        status_of(&first)
    );
    for _ in 0..3 {
        let again = get(&gw.url("/fresh/a")).await;
        assert_eq!(again.status, 200);
        assert_eq!(text(&again), "/fresh/a answer 1", "served from the cache");
        assert!(status_of(&again).starts_with("sluice; hit"), "{}", status_of(&again));
        assert!(again.header("age").is_some());
        assert_eq!(again.header("etag"), Some("\"v1\""));
    }
    assert_eq!(origin.hits("/fresh/a"), 1);
    // Another path is another entry.
    assert_eq!(text(&get(&gw.url("/fresh/b")).await), "/fresh/b answer 1");
}

#[tokio::test]
async fn a_stale_response_is_revalidated_and_a_304_refreshes_it() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    assert_eq!(text(&get(&gw.url("/validate/x")).await), "/validate/x answer 1");
    let second = get(&gw.url("/validate/x")).await;
    assert_eq!(second.status, 200, "the client asked unconditionally: the stored body");
    assert_eq!(text(&second), "/validate/x answer 1");
    assert!(status_of(&second).contains("fwd-status=304"), "{}", status_of(&second));
    assert_eq!(origin.hits("/validate/x"), 2);
    assert_eq!(origin.conditionals(), ["/validate/x \"v1\""]);
    // A client's own validator is judged against the refreshed response: 304 to it.
    let own = get_with(&gw.url("/validate/x"), &[("if-none-match", "\"v1\"")]).await;
    assert_eq!((own.status, own.body.len()), (304, 0));
    let other = get_with(&gw.url("/validate/x"), &[("if-none-match", "\"v0\"")]).await;
    assert_eq!((other.status, text(&other).as_str()), (200, "/validate/x answer 1"));
    assert_eq!(origin.hits("/validate/x"), 4, "each stale request revalidated");
}

#[tokio::test]
async fn a_client_conditional_matching_a_stored_response_gets_304() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    get(&gw.url("/fresh/c")).await;
    let not_modified = get_with(&gw.url("/fresh/c"), &[("if-none-match", "\"v1\"")]).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some("\"v1\""));
    let other = get_with(&gw.url("/fresh/c"), &[("if-none-match", "\"v0\"")]).await;
    assert_eq!((other.status, text(&other).as_str()), (200, "/fresh/c answer 1"));
    assert_eq!(origin.hits("/fresh/c"), 1);
}

#[tokio::test]
async fn vary_keeps_one_variant_per_language() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let fr = get_with(&gw.url("/vary/p"), &[("accept-language", "fr")]).await;
    let en = get_with(&gw.url("/vary/p"), &[("accept-language", "en")]).await;
    assert_eq!(text(&fr), "/vary/p answer 1 in fr");
    assert_eq!(text(&en), "/vary/p answer 2 in en");
    assert_eq!(
        text(&get_with(&gw.url("/vary/p"), &[("accept-language", "fr")]).await),
        "/vary/p answer 1 in fr"
    );
    assert_eq!(
        text(&get_with(&gw.url("/vary/p"), &[("accept-language", "en")]).await),
        "/vary/p answer 2 in en"
    );
    assert_eq!(origin.hits("/vary/p"), 2);
}

#[tokio::test]
async fn responses_that_must_not_be_stored_go_upstream_every_time() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    for path in ["/nostore", "/private", "/cookie", "/varystar", "/nofresh"] {
        let mut seen = Vec::new();
        for _ in 0..2 {
            let answer = get(&gw.url(path)).await;
            assert_eq!(answer.status, 200, "{path}");
            seen.push(status_of(&answer));
            assert!(!status_of(&answer).contains("hit"), "{path}: {seen:?}");
        }
        assert_eq!(origin.hits(path), 2, "{path} was never stored");
    }
    // A request with Authorization is not answered from, nor stored in, a shared cache
    // unless the response says public.
    for _ in 0..2 {
        get_with(&gw.url("/fresh/auth"), &[("authorization", "Bearer t")]).await;
        get_with(&gw.url("/public"), &[("authorization", "Bearer t")]).await;
    }
    assert_eq!(origin.hits("/fresh/auth"), 2);
    assert_eq!(origin.hits("/public"), 1);
}

#[tokio::test]
async fn unsafe_methods_invalidate_the_target_and_its_location() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    get(&gw.url("/fresh/item?page=1")).await;
    get(&gw.url("/fresh/created")).await;
    get(&gw.url("/fresh/other")).await;
    let post = send(hyper::Request::post(gw.url("/fresh/item")).body(full("{}")).unwrap()).await;
    assert_eq!(post.status, 201);
    assert_eq!(text(&get(&gw.url("/fresh/item?page=1")).await), "/fresh/item answer 3");
    assert_eq!(text(&get(&gw.url("/fresh/created")).await), "/fresh/created answer 2");
    assert_eq!(
        text(&get(&gw.url("/fresh/other")).await),
        "/fresh/other answer 1",
        "untouched"
    );
}

async fn invalidate(gw: &Gateway, body: &str) -> Answer {
    send(
        hyper::Request::post(gw.admin_url("/admin/cache/invalidate"))
            .body(full(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_admin_api_invalidates_by_target_prefix_and_tag_and_refuses_nonsense() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, r#"rules = [{ prefix = "/fresh/t", tags = ["team"] }]"#, "").await;
    for path in ["/fresh/a", "/fresh/b", "/fresh/t/1", "/fresh/t/2", "/fresh/z"] {
        get(&gw.url(path)).await;
    }
    let by_target = invalidate(&gw, r#"{"target": "/fresh/a"}"#).await;
    assert_eq!(by_target.status, 200);
    assert_eq!(by_target.json()["dropped"], 1);
    let by_tag = invalidate(&gw, r#"{"tag": "team"}"#).await;
    assert_eq!(by_tag.json()["dropped"], 2);
    let by_prefix = invalidate(&gw, r#"{"prefix": "/fresh/"}"#).await;
    assert_eq!(by_prefix.json()["dropped"], 2, "/fresh/b and /fresh/z were left");
    for path in ["/fresh/a", "/fresh/t/1", "/fresh/z"] {
        assert!(
            text(&get(&gw.url(path)).await).ends_with("answer 2"),
            "{path} went upstream again"
        );
    }
    for bad in [
        "not json",
        "{}",
        r#"{"target": "/a", "tag": "t"}"#,
        r#"{"prefix": ""}"#,
        r#"{"url": "/a"}"#,
    ] {
        let refused = invalidate(&gw, bad).await;
        assert_eq!(refused.status, 400, "{bad}");
        assert_eq!(refused.json()["error"], "bad_invalidation", "{bad}");
    }
}

#[tokio::test]
async fn a_response_over_the_object_limit_is_served_whole_and_not_stored() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "[http_cache]\nmax_object_bytes = 1048576\n").await;
    for _ in 0..2 {
        let big = get(&gw.url("/big")).await;
        assert_eq!((big.status, big.body.len()), (200, BIG));
    }
    assert_eq!(origin.hits("/big"), 2);
}

#[tokio::test]
async fn stale_while_revalidate_serves_stale_and_refreshes_in_the_background() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    assert_eq!(text(&get(&gw.url("/swr")).await), "/swr answer 1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let stale = get(&gw.url("/swr")).await;
    assert_eq!(text(&stale), "/swr answer 1", "served stale at once");
    assert!(
        status_of(&stale).contains("stale-while-revalidate"),
        "{}",
        status_of(&stale)
    );
    for _ in 0..100 {
        if origin.hits("/swr") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(origin.hits("/swr") >= 2, "refreshed in the background");
    // On a loaded machine the refreshed entry (fresh for 2 s) can go stale again before the
    // loop below reads it, and be refreshed once more: any answer after the first will do.
    let mut refreshed = String::new();
    for _ in 0..100 {
        refreshed = text(&get(&gw.url("/swr")).await);
        if refreshed != "/swr answer 1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let round: u32 = refreshed
        .strip_prefix("/swr answer ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an origin answer: {refreshed}"));
    assert!(round >= 2, "still the first answer: {refreshed}");
}

#[tokio::test]
async fn stale_if_error_answers_an_upstream_failure_from_the_stale_copy() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    assert_eq!(text(&get(&gw.url("/sie")).await), "/sie answer 1");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    origin.set_failing(true);
    let answer = get(&gw.url("/sie")).await;
    assert_eq!((answer.status, text(&answer).as_str()), (200, "/sie answer 1"));
    assert!(status_of(&answer).contains("stale-if-error"), "{}", status_of(&answer));
    origin.set_failing(false);
    assert_eq!(text(&get(&gw.url("/sie")).await), "/sie answer 3");
}

#[tokio::test]
async fn contradictory_directives_and_huge_values_are_handled_without_errors() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, r#"key_headers = ["x-tenant"]"#, "").await;
    for path in ["/contradict", "/dupage"] {
        for _ in 0..2 {
            assert_eq!(get(&gw.url(path)).await.status, 200, "{path}");
        }
        assert_eq!(
            origin.hits(path),
            2,
            "{path}: the most restrictive reading wins: not stored"
        );
    }
    // A 6 KB path and an 8 KB keyed header value make a key like any other.
    let long_path = format!("/fresh/{}", "p".repeat(6000));
    let tenant = "t".repeat(8000);
    for _ in 0..2 {
        let answer = get_with(&gw.url(&long_path), &[("x-tenant", &tenant)]).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(origin.hits(&long_path), 1, "the second was a hit");
    // Garbage in Cache-Control on the request is ignored, not an error.
    let odd = get_with(
        &gw.url("/fresh/a"),
        &[("cache-control", "max-age=\"x, ,,=, no-cache=\"")],
    )
    .await;
    assert_eq!(odd.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fill_invalidated_while_in_flight_is_not_stored() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    let url = gw.url("/slow/x");
    let fill = tokio::spawn(async move { get(&url).await });
    // The origin takes 300 ms; invalidate while it works.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let dropped = invalidate(&gw, r#"{"target": "/slow/x"}"#).await;
    assert_eq!(dropped.status, 200);
    assert_eq!(text(&fill.await.unwrap()), "/slow/x answer 1");
    // That answer may predate the change: the next request goes upstream.
    assert_eq!(text(&get(&gw.url("/slow/x")).await), "/slow/x answer 2");
    assert_eq!(
        text(&get(&gw.url("/slow/x")).await),
        "/slow/x answer 2",
        "and that one is stored"
    );
}

/// How many times the cache plugin's request hook has run.
async fn request_hook_calls(gw: &Gateway) -> u64 {
    let text = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("sluice_plugin_hook_seconds_count{"))
        .filter(|l| l.contains("plugin=\"cache\"") && l.contains("hook=\"on-request-headers\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test]
async fn fresh_hits_on_a_url_keyed_response_are_answered_without_the_plugin() {
    let origin = Origin::start().await;
    let gw = cache_gateway(&origin, "", "").await;
    get(&gw.url("/fresh/direct")).await;
    let after_miss = request_hook_calls(&gw).await;
    assert_eq!(after_miss, 1);
    for _ in 0..5 {
        let hit = get(&gw.url("/fresh/direct")).await;
        assert_eq!(text(&hit), "/fresh/direct answer 1");
        assert!(status_of(&hit).starts_with("sluice; hit; ttl="), "{}", status_of(&hit));
        assert!(hit.header("age").is_some() && hit.header("etag") == Some("\"v1\""));
    }
    assert_eq!(request_hook_calls(&gw).await, 1, "the host answered the hits itself");
    // A request the plugin must judge (its own directive) still reaches it.
    get_with(&gw.url("/fresh/direct"), &[("cache-control", "max-stale=5")]).await;
    assert_eq!(request_hook_calls(&gw).await, 2);
    // Keyed by identity: every request is judged by the plugin.
    for _ in 0..2 {
        get_with(&gw.url("/public"), &[("x-api-key", "k1")]).await;
    }
    assert_eq!(request_hook_calls(&gw).await, 4);
}
