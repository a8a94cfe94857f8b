//! The HTTP cache with Redis: two instances share stored responses, an invalidation on one
//! reaches the other, a lost invalidation message is caught (the per-tag generation checked on
//! read; memory flushed when the subscription comes back), one fill per key across instances
//! under a stampede, Redis stopped under load (memory keeps serving), and the cache in front of
//! the dedup plugin (the demo route's chain).

use std::time::{Duration, Instant};

use sluice_e2e::origin::Origin;
use sluice_e2e::redis::prefix;
use sluice_e2e::redis_servers::{RedisServers, cli};
use sluice_e2e::{Answer, Gateway, start_gateway};

use super::cache::{cache_gateway, get_with};

const REDIS: &str = "127.0.0.1:6379";

fn redis_section(addr: &str, prefix: &str) -> String {
    format!("[redis]\nurl = \"redis://{addr}\"\nprefix = \"{prefix}\"\ncall_timeout_ms = 2000\n")
}

/// GET `url` with the `Host` a load balancer in front of both instances would send (the
/// authority is part of the cache key).
async fn get(url: &str) -> Answer {
    get_with(url, &[("host", "cache.test")]).await
}

fn text(a: &Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

/// Polls `gw` for `path` until its body is `want` (at most 5 s); how long it took.
async fn until_body(gw: &Gateway, path: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let got = text(&get(&gw.url(path)).await);
        if got == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{path}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_responses_and_invalidations() {
    let origin = Origin::start().await;
    let redis = redis_section(REDIS, &prefix());
    let config = r#"rules = [{ prefix = "/fresh/t", tags = ["t"] }]"#;
    let a = cache_gateway(&origin, config, &redis).await;
    let b = cache_gateway(&origin, config, &redis).await;
    assert_eq!(text(&get(&a.url("/fresh/one")).await), "/fresh/one answer 1");
    // Stored in Redis just after the body ended: b finds it there.
    until_body(&b, "/fresh/one", "/fresh/one answer 1").await;
    assert_eq!(origin.hits("/fresh/one"), 1, "b answered from what a stored");
    // b now holds it in memory too; an invalidation through a's admin API reaches b.
    let dropped = sluice_e2e::send(
        hyper::Request::post(a.admin_url("/admin/cache/invalidate"))
            .body(sluice_e2e::full(r#"{"target": "/fresh/one"}"#))
            .unwrap(),
    )
    .await;
    assert_eq!(dropped.status, 200);
    until_body(&b, "/fresh/one", "/fresh/one answer 2").await;
    // Tags too.
    get(&a.url("/fresh/t/1")).await;
    until_body(&b, "/fresh/t/1", "/fresh/t/1 answer 1").await;
    sluice_e2e::send(
        hyper::Request::post(a.admin_url("/admin/cache/invalidate"))
            .body(sluice_e2e::full(r#"{"tag": "t"}"#))
            .unwrap(),
    )
    .await;
    until_body(&b, "/fresh/t/1", "/fresh/t/1 answer 2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_invalidation_is_caught_by_the_tag_generation_and_the_reconnect_flush() {
    let server = RedisServers::standalone();
    let port = server.ports[0];
    let origin = Origin::start().await;
    let redis = redis_section(&format!("127.0.0.1:{port}"), "lost");
    let config = r#"rules = [{ prefix = "/fresh/", tags = ["all"] }]"#;
    let a = cache_gateway(&origin, config, &redis).await;
    get(&a.url("/fresh/x")).await;
    until_body(&a, "/fresh/x", "/fresh/x answer 1").await;
    // The invalidation happens, but its message is lost: only the generation moves.
    assert_eq!(cli(port, &["incr", "lost:http-taggen:all"]).trim(), "1");
    // A new instance reads Redis and sees the generation moved: not served.
    let b = cache_gateway(&origin, config, &redis).await;
    assert_eq!(text(&get(&b.url("/fresh/x")).await), "/fresh/x answer 2");
    // a still has its copy in memory until its subscription comes back, then flushes memory.
    assert_eq!(text(&get(&a.url("/fresh/x")).await), "/fresh/x answer 1");
    cli(port, &["client", "kill", "type", "pubsub"]);
    until_body(&a, "/fresh/x", "/fresh/x answer 2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stampede_on_two_instances_makes_one_upstream_request() {
    let origin = Origin::start().await;
    let redis = redis_section(REDIS, &prefix());
    let a = cache_gateway(&origin, "", &redis).await;
    let b = cache_gateway(&origin, "", &redis).await;
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let url = if i % 2 == 0 {
                a.url("/fresh/hot")
            } else {
                b.url("/fresh/hot")
            };
            tokio::spawn(async move { get(&url).await })
        })
        .collect();
    for task in tasks {
        let answer = task.await.unwrap();
        assert_eq!((answer.status, text(&answer).as_str()), (200, "/fresh/hot answer 1"));
    }
    assert_eq!(
        origin.hits("/fresh/hot"),
        1,
        "one fill for 40 requests on two instances"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_under_load_leaves_memory_serving_without_errors() {
    let mut server = RedisServers::standalone();
    let port = server.ports[0];
    let origin = Origin::start().await;
    let redis = format!("[redis]\nurl = \"redis://127.0.0.1:{port}\"\nprefix = \"down\"\ncall_timeout_ms = 200\n");
    let gw = cache_gateway(&origin, "", &redis).await;
    for path in ["/fresh/1", "/fresh/2", "/fresh/3"] {
        get(&gw.url(path)).await;
    }
    let url = gw.url("/fresh/");
    let load = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for i in 0..300 {
            let answer = get(&format!("{url}{}", i % 3 + 1)).await;
            statuses.push((
                answer.status,
                String::from_utf8_lossy(&answer.body).ends_with("answer 1"),
            ));
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    server.stop();
    let statuses = load.await.unwrap();
    assert!(statuses.iter().all(|(s, _)| *s == 200), "no errors: {statuses:?}");
    assert!(statuses.iter().all(|(_, from_cache)| *from_cache), "served from memory");
    // A new path still works: a miss goes upstream and is stored in memory.
    assert_eq!(text(&get(&gw.url("/fresh/new")).await), "/fresh/new answer 1");
    assert_eq!(text(&get(&gw.url("/fresh/new")).await), "/fresh/new answer 1");
}

#[tokio::test]
async fn in_front_of_dedup_the_second_request_is_a_hit() {
    let origin = Origin::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.cache]\nmodule = \"builtin:cache\"\ngrants = {{ http_cache = true }}\n\
         [plugins.dedup]\nmodule = \"builtin:dedup\"\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"cache\" }}, {{ plugin = \"dedup\" }}]\n",
        origin.addr
    ))
    .await;
    get(&gw.url("/fresh/d")).await;
    let second = get(&gw.url("/fresh/d")).await;
    assert!(
        second
            .header("cache-status")
            .unwrap_or_default()
            .starts_with("sluice; hit"),
        "{:?}",
        second.header("cache-status")
    );
    assert_eq!(origin.hits("/fresh/d"), 1);
}
