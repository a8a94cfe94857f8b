//! Plugin channel messages on the machine's real Redis: a message published on a channel
//! reaches `on-message` of every subscribed route entry in every gateway instance, and no
//! other; subscriptions follow a reload and come back after Redis went away; a plugin that
//! subscribes without the hook is refused.

use std::time::Duration;

use fred::interfaces::PubsubInterface;
use serde_json::{Value, json};
use sluice_artifacts as wasm;
use sluice_e2e::redis::{REDIS, direct, prefix, redis_call_route};
use sluice_e2e::{Gateway, full, get, send, start_gateway};

/// Route `/NAME` runs the redis-call plugin (as plugin NAME) with op `op` on `channel`,
/// granted kv and the Redis `grant` (an inline table).
fn plugin_route(name: &str, op: &str, channel: &str, grant: &str) -> String {
    redis_call_route(name, op, channel, &format!("kv = true, redis = {grant}"))
}

/// How many connections are subscribed to `channel`, polled until it is `want` (5 s at most).
async fn wait_for_subscribers(client: &fred::clients::Client, channel: &str, want: i64) {
    for _ in 0..100 {
        let counts: Vec<(String, i64)> = client.pubsub_numsub(channel).await.unwrap();
        if counts.first().map(|c| c.1) == Some(want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{channel} never had {want} subscribers");
}

/// What route `path` says it received, polled until it is `want` (5 s at most).
async fn received(gw: &Gateway, path: &str, want: &Value) -> Value {
    let mut last = Value::Null;
    for _ in 0..100 {
        last = get(&gw.url(path)).await.json();
        if &last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_reaches_every_subscribed_plugin_in_every_instance_and_no_other() {
    let prefix = prefix();
    let channel = format!("{prefix}:chan:revocations");
    // Memory-only kv, so each gateway instance keeps its own record of what it received.
    let config = format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\nshared_kv = false\n{}{}{}",
        plugin_route(
            "listener",
            "received",
            "revocations",
            r#"{ subscribe = ["revocations"] }"#
        ),
        plugin_route("deaf", "received", "revocations", r#"{ subscribe = ["other"] }"#),
        plugin_route(
            "announce",
            "publish",
            "revocations",
            r#"{ channels = ["revocations"] }"#
        ),
    );
    let (a, b) = (start_gateway(&config).await, start_gateway(&config).await);
    let client = direct().await;
    wait_for_subscribers(&client, &channel, 2).await;

    // Published from outside the gateways, as an admin tool would.
    let _: i64 = client.publish(channel.as_str(), "key-1").await.unwrap();
    for gw in [&a, &b] {
        assert_eq!(received(gw, "/listener", &json!(["key-1"])).await, json!(["key-1"]));
    }

    // Published by a plugin: one receipt per subscribed gateway instance.
    let answer = send(
        hyper::Request::get(a.url("/announce"))
            .header("x-args", r#"["key-2"]"#)
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(answer.json(), json!(2), "{:?}", answer.body);
    for gw in [&a, &b] {
        let want = json!(["key-1", "key-2"]);
        assert_eq!(received(gw, "/listener", &want).await, want);
    }

    // The plugin subscribed elsewhere saw nothing; a host channel is not a plugin channel.
    let _: i64 = client
        .publish(format!("{prefix}:revocations"), "not-a-plugin-channel")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&a.url("/deaf")).await.json(), Value::Null);
    let want = json!(["key-1", "key-2"]);
    assert_eq!(get(&a.url("/listener")).await.json(), want);

    let metrics = String::from_utf8(get(&a.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_plugin_messages_total{outcome=\"ok\",plugin=\"listener\"} 2"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_a_reload() {
    let prefix = prefix();
    let channel = format!("{prefix}:chan:news");
    let quiet = format!(
        "[redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{prefix}\"\n{}",
        plugin_route("listener", "received", "news", r#"{ subscribe = [] }"#),
    );
    let gw = start_gateway(&quiet).await;
    let client = direct().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let counts: Vec<(String, i64)> = client.pubsub_numsub(channel.as_str()).await.unwrap();
    assert_eq!(counts[0].1, 0, "nobody subscribes yet");

    let listening = quiet.replace("subscribe = []", r#"subscribe = ["news"]"#);
    let reload = gw.reload_with(&listening).await;
    assert_eq!(reload.status, 200, "{:?}", reload.body);
    wait_for_subscribers(&client, &channel, 1).await;
    let _: i64 = client.publish(channel.as_str(), "hello").await.unwrap();
    assert_eq!(received(&gw, "/listener", &json!(["hello"])).await, json!(["hello"]));

    // Back to no subscription: the gateway leaves the channel.
    let reload = gw.reload_with(&quiet).await;
    assert_eq!(reload.status, 200, "{:?}", reload.body);
    wait_for_subscribers(&client, &channel, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_without_the_message_hook_is_refused_at_load() {
    let config = format!(
        "[redis]\nurl = \"redis://{REDIS}\"\n[plugins.good]\nmodule = {:?}\n\
         grants = {{ redis = {{ subscribe = [\"news\"] }} }}\n\
         [[routes]]\nname = \"r\"\nplugins = [{{ plugin = \"good\" }}]\n",
        wasm::GOOD
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.toml");
    std::fs::write(&path, sluice_e2e::config_text(&config)).unwrap();
    let error = sluice_gateway::app::RunningGateway::start(sluice_gateway::state::ConfigSource::File(path))
        .await
        .unwrap_err();
    assert!(error.contains("does not implement on-message"), "{error}");

    let bad_name = config.replace(r#"subscribe = ["news"]"#, r#"subscribe = ["news*"]"#);
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, sluice_e2e::config_text(&bad_name)).unwrap();
    let error = sluice_gateway::app::RunningGateway::start(sluice_gateway::state::ConfigSource::File(path))
        .await
        .unwrap_err();
    assert!(error.contains("channel names are"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_come_back_after_redis_goes_away() {
    let prefix = prefix();
    let channel = format!("{prefix}:chan:keys");
    let relay = sluice_e2e::relay::Relay::start(REDIS.parse().unwrap()).await;
    let gw = start_gateway(&format!(
        "[redis]\nurl = \"redis://{}\"\nprefix = \"{prefix}\"\nshared_kv = false\nreconnect_max_ms = 100\n{}",
        relay.addr,
        plugin_route("listener", "received", "keys", r#"{ subscribe = ["keys"] }"#),
    ))
    .await;
    let client = direct().await;
    wait_for_subscribers(&client, &channel, 1).await;
    relay.cut().await;
    wait_for_subscribers(&client, &channel, 0).await;
    relay.restore();
    wait_for_subscribers(&client, &channel, 1).await;
    let _: i64 = client.publish(channel.as_str(), "after").await.unwrap();
    assert_eq!(received(&gw, "/listener", &json!(["after"])).await, json!(["after"]));
}
