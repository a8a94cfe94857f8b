//! The Redis capability on the machine's real server, a key prefix per test: namespaces,
//! grants, scripts reloaded after SCRIPT FLUSH, publish, and a Redis that goes away and comes
//! back (through a relay the test cuts) with the breaker keeping calls fast.

use std::time::Duration;

use fred::interfaces::{KeysInterface, LuaInterface};
use serde_json::json;
use sluice_artifacts as wasm;
use sluice_e2e::redis::{REDIS, call, direct, prefix, redis_call_route};
use sluice_e2e::relay::Relay;
use sluice_e2e::{Gateway, get, start_gateway};

/// A route `/NAME` running the redis-call plugin as plugin `NAME` with `op`/`op_name` and the
/// Redis `grant` (TOML inline table).
fn route(name: &str, op: &str, op_name: &str, grant: &str) -> String {
    redis_call_route(name, op, op_name, &format!("redis = {grant}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_plugin_sees_only_its_own_keys() {
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n{}{}{}",
        route("alpha_set", "command", "SET", r#"{ commands = ["SET"] }"#),
        route("alpha_get", "command", "GET", r#"{ commands = ["GET"] }"#),
        route("beta_get", "command", "GET", r#"{ commands = ["GET"] }"#),
    ))
    .await;
    assert_eq!(
        call(&gw, "/alpha_set", json!(["k"]), json!(["v"])).await.json(),
        json!("OK")
    );
    assert_eq!(
        call(&gw, "/alpha_get", json!(["k"]), json!([])).await.json(),
        json!(null),
        "plugins are separate namespaces, even routes of one config"
    );
    let client = direct().await;
    let stored: Option<String> = client.get(format!("{prefix}:{{alpha_set}}:k")).await.unwrap();
    assert_eq!(stored.as_deref(), Some("v"), "the key lives under the plugin's prefix");
    // Whatever string the other plugin passes, it stays inside its own namespace.
    for escape in [
        "k",
        "{alpha_set}:k",
        &format!("{prefix}:{{alpha_set}}:k"),
        "../alpha_set/k",
        "*",
    ] {
        let answer = call(&gw, "/beta_get", json!([escape]), json!([])).await;
        assert_eq!(answer.json(), json!(null), "{escape}");
    }
    // A key smuggled in as an argument is refused: GET takes exactly one key.
    let smuggled = call(
        &gw,
        "/beta_get",
        json!([]),
        json!([format!("{prefix}:{{alpha_set}}:k")]),
    )
    .await;
    assert_eq!(smuggled.json()["error"], "invalid", "{:?}", smuggled.body);
    let _: i64 = client.del(format!("{prefix}:{{alpha_set}}:k")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ungranted_and_ungrantable_commands_are_refused() {
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n{}",
        route("getter", "command", "DEL", r#"{ commands = ["GET"] }"#),
    ))
    .await;
    let denied = call(&gw, "/getter", json!(["k"]), json!([])).await.json();
    assert_eq!(denied["error"], "denied", "{denied}");
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("command 'DEL' is not granted to plugin 'getter'")
    );
    // KEYS could list other plugins' keys: a config granting it does not load.
    let bad = sluice_config::GatewayConfig::parse(
        &format!(
            "[redis]\nurl = \"redis://{REDIS}\"\n{}",
            route("lister", "command", "KEYS", r#"{ commands = ["KEYS"] }"#)
        ),
        std::path::Path::new("bad.toml"),
        std::path::PathBuf::from("."),
    )
    .unwrap_err()
    .to_string();
    assert!(bad.contains("'KEYS', which cannot be granted"), "{bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_by_sha_and_are_reloaded_after_script_flush() {
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n\
         [redis.scripts]\nadd = \"return redis.call('INCRBY', KEYS[1], ARGV[1])\"\n{}",
        route("counter", "script", "add", r#"{ scripts = ["add"] }"#),
    ))
    .await;
    assert_eq!(call(&gw, "/counter", json!(["n"]), json!(["5"])).await.json(), json!(5));
    let client = direct().await;
    client.script_flush(false).await.unwrap();
    let again = call(&gw, "/counter", json!(["n"]), json!(["5"])).await;
    assert_eq!(
        (again.status, again.json()),
        (200, json!(10)),
        "loaded again after SCRIPT FLUSH"
    );
    let _: i64 = client.del(format!("{prefix}:{{counter}}:n")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_goes_away_costs_little_and_comes_back_without_a_restart() {
    let prefix = prefix();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"redis://{}\"\nprefix = \"{prefix}\"\ncall_timeout_ms = 50\nbreaker_failures = 2\n\
         breaker_open_ms = 300\nreconnect_max_ms = 100\n{}",
        relay.addr,
        route("incr", "command", "INCR", r#"{ commands = ["INCR"] }"#),
    ))
    .await;
    assert_eq!(call(&gw, "/incr", json!(["hits"]), json!([])).await.json(), json!(1));

    relay.cut().await;
    // Calls that ran out of their budget may still have reached Redis (below).
    let mut timed_out = 0;
    for _ in 0..2 {
        let failed = call(&gw, "/incr", json!(["hits"]), json!([])).await;
        assert_eq!(failed.status, 503, "{:?}", failed.body);
        timed_out += i64::from(failed.json()["error"] == "timeout");
    }
    // The breaker is open now: a call is refused without touching the network, instead of
    // waiting out its 50 ms budget.
    let fast = call(&gw, "/incr", json!(["hits"]), json!([])).await;
    assert_eq!(fast.json()["error"], "unavailable");
    assert!(
        fast.json()["message"]
            .as_str()
            .unwrap()
            .contains("circuit breaker is open"),
        "{:?}",
        fast.body
    );
    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_redis_calls_total{outcome=\"breaker_open\"} 1"),
        "{metrics}"
    );
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["dependencies"]["redis"]["state"], "down", "{ready}");

    relay.restore();
    let mut recovered = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = call(&gw, "/incr", json!(["hits"]), json!([])).await;
        if answer.status == 200 {
            recovered = answer.json().as_i64();
            break;
        }
        timed_out += i64::from(answer.json()["error"] == "timeout");
    }
    // A call refused as unavailable never ran; one that ran out of its budget (during the cut,
    // queued while the client reconnected, or while the connection came back) may have run
    // once, like any request whose reply was lost.
    let recovered = recovered.expect("calls succeed again without a restart");
    assert!(
        (2..=2 + timed_out).contains(&recovered),
        "{recovered} after {timed_out} timeouts"
    );
    let client = direct().await;
    let _: i64 = client.del(format!("{prefix}:{{incr}}:hits")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_reaches_subscribers_of_the_prefixed_channel() {
    use fred::interfaces::{EventInterface, PubsubInterface};
    let prefix = prefix();
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n{}{}",
        route("announce", "publish", "events", r#"{ channels = ["events"] }"#),
        route("sneak", "publish", "other", r#"{ channels = ["events"] }"#),
    ))
    .await;
    let subscriber = direct().await;
    let mut messages = subscriber.message_rx();
    subscriber.subscribe(format!("{prefix}:chan:events")).await.unwrap();
    let answer = call(&gw, "/announce", json!([]), json!(["revoked:key-1"])).await;
    assert_eq!(answer.json(), json!(1), "one subscriber got it");
    let message = tokio::time::timeout(Duration::from_secs(5), messages.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.value.as_string().as_deref(), Some("revoked:key-1"));
    assert_eq!(
        call(&gw, "/sneak", json!([]), json!(["x"])).await.json()["error"],
        "denied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_instances_share_kv_through_redis() {
    let prefix = prefix();
    let upstream = sluice_e2e::Upstream::start().await;
    let config = format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\ngrants = {{ kv = true }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n",
        upstream.addr,
        wasm::GOOD
    );
    let (a, b) = (start_gateway(&config).await, start_gateway(&config).await);
    // The good plugin puts its kv counter in a request header on /kv (the upstream echoes
    // it); the instances count together.
    let mut seen = Vec::new();
    for gw in [&a, &b, &a, &b] {
        let answer = get(&gw.url("/kv")).await.json();
        seen.push(answer["headers"]["x-kv-hits"].as_str().unwrap().to_string());
    }
    assert_eq!(seen, ["1", "2", "3", "4"]);

    // A large value written through one instance is read through the other, and is stored
    // compressed.
    let shared = |gw: &Gateway| gw.running.state.runtime().backends().shared_kv.clone().unwrap();
    let memory = |gw: &Gateway| gw.running.state.runtime().backends().kv.clone();
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8 + b'a').collect();
    shared(&a)
        .set(&memory(&a), "good", "page", big.clone(), Some(60_000))
        .await
        .unwrap();
    assert_eq!(shared(&b).get(&memory(&b), "good", "page").await.unwrap(), Some(big));
    let client = direct().await;
    let stored: Vec<u8> = client.get(format!("{prefix}:kv:{{good}}:page")).await.unwrap();
    assert_eq!(stored[0], 0x01, "zstd-compressed");
    assert!(stored.len() < 2_000, "{} bytes stored", stored.len());
    // Deleting through one instance removes it for both (once the other's memory lapses).
    assert!(shared(&b).delete(&memory(&b), "good", "page").await.unwrap());
    let _: i64 = client.del(vec![format!("{prefix}:kv:{{good}}:hits")]).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateway_instances_share_the_cache_and_its_invalidations() {
    use sluice_bindings::sluice::plugin::cache::CachedResponse;
    let prefix = prefix();
    let config = format!("[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n");
    let (a, b) = (start_gateway(&config).await, start_gateway(&config).await);
    let cache = |gw: &Gateway| gw.running.state.runtime().backends().shared_cache.clone().unwrap();
    // Give both instances' invalidation subscriptions a moment to be in place.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let page = |body: &str, tags: &[&str]| CachedResponse {
        status: 200,
        headers: vec![("content-type".into(), b"text/html".to_vec())],
        body: body.repeat(500).into_bytes(),
        stored_at_ms: now,
        expires_at_ms: now + 60_000,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    };
    cache(&a)
        .insert("/items/1".into(), page("one", &["items"]))
        .await
        .unwrap();
    cache(&a)
        .insert("/items/2".into(), page("two", &["items"]))
        .await
        .unwrap();
    cache(&a)
        .insert("/users/1".into(), page("user", &["users"]))
        .await
        .unwrap();
    // B serves what A stored (and now holds it in memory too).
    let hit = cache(&b)
        .lookup("/items/1")
        .await
        .unwrap()
        .expect("shared through Redis");
    assert_eq!(hit.body, "one".repeat(500).into_bytes());
    assert!(cache(&b).lookup("/users/1").await.unwrap().is_some());

    // A tag invalidated through B leaves A's memory too, by pub/sub.
    assert_eq!(cache(&b).invalidate_tag("items").await.unwrap(), 2);
    let mut gone = false;
    for _ in 0..20 {
        if cache(&a).lookup("/items/1").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the invalidation reached the other instance");
    assert!(cache(&a).lookup("/items/2").await.unwrap().is_none());
    // A prefix invalidated through A leaves B's memory.
    assert_eq!(cache(&a).invalidate_prefix("/users/").await.unwrap(), 1);
    let mut gone = false;
    for _ in 0..20 {
        if cache(&b).lookup("/users/1").await.unwrap().is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the prefix invalidation reached the other instance");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_keep_flowing_while_redis_goes_away_and_comes_back_under_load() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let prefix = prefix();
    let relay = Relay::start(REDIS.parse().unwrap()).await;
    let upstream = sluice_e2e::Upstream::start().await;
    // The good plugin answers its kv counter, or -1 when kv fails: a plugin that degrades.
    let gw = Arc::new(
        start_gateway(&format!(
            "[redis]\nurl = \"redis://{}\"\nprefix = \"{prefix}\"\ncall_timeout_ms = 50\nbreaker_failures = 3\n\
             breaker_open_ms = 200\nreconnect_max_ms = 100\n[upstreams.app]\ntargets = [\"{}\"]\n\
             [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\ngrants = {{ kv = true }}\n\
             [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n",
            relay.addr,
            upstream.addr,
            wasm::GOOD
        ))
        .await,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let (served, failed, degraded) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (gw, stop) = (gw.clone(), stop.clone());
            let (served, failed, degraded) = (served.clone(), failed.clone(), degraded.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let answer = get(&gw.url("/kv")).await;
                    if answer.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    served.fetch_add(1, Ordering::Relaxed);
                    if answer.json()["headers"]["x-kv-hits"] == "-1" {
                        degraded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    relay.cut().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    relay.restore();
    // Recovery: the counter works again without a restart.
    let mut recovered = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let answer = get(&gw.url("/kv")).await.json();
        if answer["headers"]["x-kv-hits"] != "-1" {
            recovered = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no request failed");
    assert!(degraded.load(Ordering::Relaxed) > 0, "kv failed while Redis was away");
    assert!(served.load(Ordering::Relaxed) > degraded.load(Ordering::Relaxed));
    assert!(recovered, "kv works again without a restart");
    let client = direct().await;
    let _: i64 = client.del(vec![format!("{prefix}:kv:{{good}}:hits")]).await.unwrap();
}
