//! Short replay of the dedup plugin: within the TTL an identical request is answered without
//! going upstream (with `Age`), after it a new fetch is made; two gateway instances share
//! replayed answers through Redis; with Redis unreachable, coalescing still works and replay
//! falls back to memory, with no 5xx.

use std::time::Duration;

use fred::interfaces::{ClientLike, KeysInterface};
use sluice_e2e::hold::HoldUpstream;
use sluice_e2e::redis::{REDIS, direct, prefix};
use sluice_e2e::{closed_port, get};

use super::dedup::{dedup_count, dedup_gateway, until_counted};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_success_is_replayed_within_the_ttl_and_fetched_again_after_it() {
    let upstream = HoldUpstream::start().await;
    upstream.open();
    let gw = dedup_gateway(&upstream, "replay_ttl_ms = 400", "").await;
    let first = get(&gw.url("/items")).await;
    assert_eq!((first.status, upstream.hits()), (200, 1));
    assert_eq!(first.header("age"), None);
    let again = get(&gw.url("/items")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body, "the same answer, hit 1");
    assert_eq!(again.header("age"), Some("0"));
    assert_eq!(upstream.hits(), 1, "answered from the replay");
    assert_eq!(dedup_count(&gw, "replayed").await, 1);
    // Another query is another request.
    assert_eq!(get(&gw.url("/items?page=2")).await.json()["hit"], 2);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let later = get(&gw.url("/items")).await;
    assert_eq!(later.json()["hit"], 3, "the TTL passed: a new fetch");
    assert_eq!(later.header("age"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_no_store_answers_are_never_replayed() {
    let upstream = HoldUpstream::start().await;
    upstream.open();
    let gw = dedup_gateway(&upstream, "", "").await;
    assert_eq!(get(&gw.url("/fail/x")).await.status, 500);
    assert_eq!(get(&gw.url("/fail/x")).await.status, 500);
    assert_eq!(upstream.hits(), 2);
    // A client asking for a fresh answer is not replayed to.
    assert_eq!(get(&gw.url("/fresh")).await.json()["hit"], 3);
    let fresh = sluice_e2e::send(
        hyper::Request::get(gw.url("/fresh"))
            .header("cache-control", "no-cache")
            .body(sluice_e2e::full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(fresh.json()["hit"], 4);
}

fn redis_section(url: &str, prefix: &str) -> String {
    format!("[redis]\nurl = \"{url}\"\nprefix = \"{prefix}\"\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_replayed_answers_through_redis() {
    let upstream = HoldUpstream::start().await;
    upstream.open();
    let prefix = prefix();
    let redis = redis_section(&format!("redis://{REDIS}"), &prefix);
    let a = dedup_gateway(&upstream, "", &redis).await;
    let b = dedup_gateway(&upstream, "", &redis).await;
    let first = get(&a.url("/shared")).await;
    assert_eq!((first.status, upstream.hits()), (200, 1));
    // The entry reaches Redis just after the answer ended: wait for it there.
    let client = direct().await;
    let pattern = format!("{prefix}:cache:dedup:*");
    let mut stored = false;
    for _ in 0..100 {
        let keys: Vec<String> = client
            .custom(
                fred::types::CustomCommand::new_static("KEYS", fred::types::ClusterHash::Random, false),
                vec![pattern.clone()],
            )
            .await
            .unwrap();
        if !keys.is_empty() {
            let ttl: i64 = client.pttl(keys[0].as_str()).await.unwrap();
            assert!(ttl > 0 && ttl <= 30_000, "stored for the replay TTL: {ttl} ms");
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(stored, "no replay entry under {pattern}");
    let from_b = get(&b.url("/shared")).await;
    assert_eq!(from_b.status, 200);
    assert_eq!(from_b.body, first.body);
    assert!(from_b.header("age").is_some());
    assert_eq!(upstream.hits(), 1, "instance b replayed what instance a fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_redis_unreachable_coalescing_works_and_replay_stays_in_memory() {
    let upstream = HoldUpstream::start().await;
    let redis = redis_section(&format!("redis://127.0.0.1:{}", closed_port()), &prefix());
    let gw = dedup_gateway(&upstream, "", &redis).await;
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(get_owned(gw.url("/hold/no-redis"))))
        .collect();
    until_counted(&gw, &["fetched", "joined"], 20).await;
    upstream.open();
    for t in tasks {
        let answer = t.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["hit"], 1);
    }
    assert_eq!(upstream.hits(), 1);
    let replayed = get(&gw.url("/hold/no-redis")).await;
    assert_eq!((replayed.status, replayed.json()["hit"].as_u64()), (200, Some(1)));
    assert_eq!(upstream.hits(), 1, "replayed from this instance's memory");
}

async fn get_owned(url: String) -> sluice_e2e::Answer {
    get(&url).await
}
