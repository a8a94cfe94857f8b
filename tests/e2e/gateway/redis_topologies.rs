//! Redis Cluster and Sentinel, each started by the test from the machine's `redis-server`:
//! the gateway picks the topology from the URL, plugin commands and scripts keep their
//! namespace, the shared cache's prefix invalidation reaches keys on every Cluster node, and
//! plugin messages travel through a Sentinel-found primary.

use std::time::Duration;

use fred::interfaces::{KeysInterface, PubsubInterface};
use serde_json::{Value, json};
use sluice_bindings::sluice::plugin::cache::CachedResponse;
use sluice_e2e::redis::{call, client_for, prefix, redis_call_route};
use sluice_e2e::redis_servers::{RedisServers, cli};
use sluice_e2e::{get, start_gateway};

fn entry(body: &str) -> CachedResponse {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    CachedResponse {
        status: 200,
        headers: vec![],
        body: body.as_bytes().to_vec(),
        stored_at_ms: now,
        expires_at_ms: now + 60_000,
        tags: vec!["all".into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_serves_plugins_and_the_shared_cache_across_its_nodes() {
    let servers = tokio::task::spawn_blocking(RedisServers::cluster).await.unwrap();
    let p = &servers.ports;
    let url = format!(
        "redis-cluster://127.0.0.1:{}?node=127.0.0.1:{}&node=127.0.0.1:{}",
        p[0], p[1], p[2]
    );
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"{url}\"\nprefix = \"{prefix}\"\ncall_timeout_ms = 500\n\
         [redis.scripts]\nbump = \"return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCRBY', KEYS[2], ARGV[1])\"\n{}{}",
        redis_call_route("incr", "command", "INCR", r#"redis = { commands = ["INCR"] }"#),
        redis_call_route("bump", "script", "bump", r#"redis = { scripts = ["bump"] }"#),
    ))
    .await;
    assert_eq!(call(&gw, "/incr", json!(["n"]), json!([])).await.json(), json!(1));
    assert_eq!(call(&gw, "/incr", json!(["n"]), json!([])).await.json(), json!(2));
    // A script over two keys: the plugin's keys share one hash slot, so no CROSSSLOT.
    let answer = call(&gw, "/bump", json!(["a", "b"]), json!(["5"])).await;
    assert_eq!(answer.json(), json!(10), "{:?}", answer.body);
    let client = client_for(&url).await;
    let stored: i64 = client.get(format!("{prefix}:{{incr}}:n")).await.unwrap();
    assert_eq!(stored, 2);

    // Cache entries spread over the nodes; a prefix invalidation finds them on every node.
    let backends = gw.running.state.runtime().backends();
    let cache = backends
        .shared_cache
        .clone()
        .expect("shared cache on by default with [redis]");
    for i in 0..40 {
        cache.insert(format!("/items/{i}"), entry("x")).await.unwrap();
    }
    cache.insert("/users/1".into(), entry("u")).await.unwrap();
    let mut nodes_holding = 0;
    for &port in p {
        let keys: i64 = cli(port, &["dbsize"]).trim().parse().unwrap();
        nodes_holding += i32::from(keys > 0);
    }
    assert_eq!(nodes_holding, 3, "the entries live on every node");
    assert_eq!(cache.invalidate_prefix("/items/").await.unwrap(), 40);
    assert!(cache.lookup("/items/7").await.unwrap().is_none());
    assert!(cache.lookup("/users/1").await.unwrap().is_some());
    assert_eq!(cache.invalidate_tag("all").await.unwrap(), 1, "only /users/1 was left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_finds_the_primary_for_commands_and_messages() {
    let servers = tokio::task::spawn_blocking(RedisServers::sentinel).await.unwrap();
    let (primary, sentinel) = (servers.ports[0], servers.ports[1]);
    let url = format!("redis-sentinel://127.0.0.1:{sentinel}?sentinelServiceName=mymaster");
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"{url}\"\nprefix = \"{prefix}\"\nshared_kv = false\ncall_timeout_ms = 500\n{}{}",
        redis_call_route("incr", "command", "INCR", r#"redis = { commands = ["INCR"] }"#),
        redis_call_route(
            "listener",
            "received",
            "news",
            r#"kv = true, redis = { subscribe = ["news"] }"#
        ),
    ))
    .await;
    assert_eq!(call(&gw, "/incr", json!(["n"]), json!([])).await.json(), json!(1));
    let on_primary = client_for(&format!("redis://127.0.0.1:{primary}")).await;
    let stored: i64 = on_primary.get(format!("{prefix}:{{incr}}:n")).await.unwrap();
    assert_eq!(stored, 1, "the command ran on the primary the Sentinel named");

    let channel = format!("{prefix}:chan:news");
    let mut delivered = Value::Null;
    for _ in 0..100 {
        let subscribers: Vec<(String, i64)> = on_primary.pubsub_numsub(channel.as_str()).await.unwrap();
        if subscribers[0].1 == 1 {
            let _: i64 = on_primary.publish(channel.as_str(), "hello").await.unwrap();
            delivered = get(&gw.url("/listener")).await.json();
            for _ in 0..50 {
                if delivered != Value::Null {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                delivered = get(&gw.url("/listener")).await.json();
            }
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, json!(["hello"]));
}
