//! Plugin messages: delivers what is published on plugin channels (`PREFIX:chan:NAME`) to the
//! plugins whose grant subscribes to them (`grants.redis.subscribe`), through `on-message`.
//!
//! One subscriber connection per gateway, opened only once some route subscribes. Whenever a
//! reload installs a new route table, the subscriptions follow it (new channels subscribed,
//! channels nobody wants any more dropped); subscriptions that failed (Redis down) are retried
//! every second, and fred subscribes again after every reconnect. Each message goes to every
//! subscribed route entry of the table current when it arrives, concurrently; the next message
//! waits for those calls, so a flood is bounded by the broadcast buffer and what overflows it is
//! counted and logged as missed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fred::clients::SubscriberClient;
use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::types::Message;
use tokio::sync::{broadcast, watch};

use crate::state::GatewayState;
use sluice_backends::redis::RedisBackend;

/// How long one SUBSCRIBE or UNSUBSCRIBE may take before it is retried later.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How often failed subscriptions are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// Delivers plugin messages until `shutdown` turns true. Returns at once (after a warning)
/// when routes subscribe but no `[redis]` is configured.
pub async fn deliver(state: Arc<GatewayState>, redis: Option<Arc<RedisBackend>>, mut shutdown: watch::Receiver<bool>) {
    let Some(redis) = redis else {
        if state.current().table.subscribed_channels().next().is_some() {
            tracing::warn!("grants.redis.subscribe has no effect: no [redis] is configured");
        }
        return;
    };
    tokio::select! {
        () = run(state, redis) => {}
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
}

/// The channels the current route table subscribes to.
fn wanted(state: &GatewayState) -> BTreeSet<String> {
    state
        .current()
        .table
        .subscribed_channels()
        .map(str::to_string)
        .collect()
}

async fn run(state: Arc<GatewayState>, redis: Arc<RedisBackend>) {
    let mut installs = state.installs();
    while wanted(&state).is_empty() {
        if installs.changed().await.is_err() {
            return;
        }
    }
    let client = redis.subscriber_client();
    let mut messages = client.message_rx();
    while let Err(e) = client.init().await {
        tracing::warn!(error = %e, "cannot open the plugin message subscriber yet; retrying");
        tokio::time::sleep(RETRY_EVERY).await;
    }
    let _resubscribe = client.manage_subscriptions();
    let mut subscribed = BTreeSet::new();
    sync(&client, &redis, &wanted(&state), &mut subscribed).await;
    let sequence = AtomicU64::new(0);
    let mut retry = tokio::time::interval(RETRY_EVERY);
    loop {
        tokio::select! {
            changed = installs.changed() => {
                if changed.is_err() {
                    return;
                }
                sync(&client, &redis, &wanted(&state), &mut subscribed).await;
            }
            _ = retry.tick() => {
                let want = wanted(&state);
                if want != subscribed {
                    sync(&client, &redis, &want, &mut subscribed).await;
                }
            }
            message = messages.recv() => match message {
                Ok(message) => dispatch(&state, &redis, message, sequence.fetch_add(1, Ordering::Relaxed)).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "plugin messages arrived faster than plugins took them; some were missed");
                    state
                        .metrics()
                        .counter("sluice_plugin_messages_missed_total", &[])
                        .add(missed);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
}

/// Subscribes to the channels in `want` not yet in `subscribed` and drops the others.
async fn sync(
    client: &SubscriberClient,
    redis: &RedisBackend,
    want: &BTreeSet<String>,
    subscribed: &mut BTreeSet<String>,
) {
    for channel in want.difference(&subscribed.clone()) {
        match tokio::time::timeout(SUBSCRIBE_TIMEOUT, client.subscribe(redis.channel(channel))).await {
            Ok(Ok(())) => {
                tracing::info!(channel, "subscribed to plugin channel");
                subscribed.insert(channel.clone());
            }
            Ok(Err(e)) => tracing::warn!(channel, error = %e, "SUBSCRIBE failed; retrying"),
            Err(_) => tracing::warn!(channel, "SUBSCRIBE got no answer; retrying"),
        }
    }
    for channel in subscribed.clone().difference(want) {
        if let Ok(Ok(())) = tokio::time::timeout(SUBSCRIBE_TIMEOUT, client.unsubscribe(redis.channel(channel))).await {
            tracing::info!(channel, "unsubscribed from plugin channel (no route wants it)");
            subscribed.remove(channel);
        }
    }
}

/// Runs `on-message` on every route entry subscribed to the message's channel.
async fn dispatch(state: &GatewayState, redis: &RedisBackend, message: Message, sequence: u64) {
    let Some(channel) = redis.plugin_channel(&message.channel) else {
        return;
    };
    let payload = message.value.as_bytes().unwrap_or_default();
    let gateway = state.current();
    let targets = gateway.table.subscribers(channel);
    let id = format!("message-{sequence}");
    let calls = targets.iter().map(|plugin| plugin.on_message(&id, channel, payload));
    let outcomes = futures_util::future::join_all(calls).await;
    for (plugin, outcome) in targets.iter().zip(outcomes) {
        let name = &*plugin.context().name;
        let result = match outcome {
            Ok(()) => "ok",
            Err(failure) => {
                tracing::warn!(plugin = name, channel, message_id = %id, error = %failure.message_for_operator(), "on-message failed");
                "failed"
            }
        };
        state
            .metrics()
            .counter("sluice_plugin_messages_total", &[("plugin", name), ("outcome", result)])
            .add(1);
    }
}
