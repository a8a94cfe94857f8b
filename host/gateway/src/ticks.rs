//! Plugin ticks: about once a second, every route entry whose plugin lists the `tick` hook gets
//! an `on-tick` call on a pooled instance, off any request, for background work such as
//! refreshing fetched keys before they go stale. The calls of one round run concurrently; a
//! round still running when the next is due delays it (ticks are skipped, never stacked).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use crate::state::GatewayState;
use sluice_bindings::Hook;

/// How often ticks are delivered.
pub const TICK_EVERY: Duration = Duration::from_secs(1);

/// Delivers ticks until `shutdown` turns true.
pub async fn deliver(state: Arc<GatewayState>, mut shutdown: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(TICK_EVERY);
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut round: u64 = 0;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let gateway = state.current();
        let plugins: Vec<_> = gateway
            .router
            .routes()
            .iter()
            .flat_map(|route| route.chain.plugins().iter())
            .filter(|p| p.has_hook(Hook::Tick))
            .cloned()
            .collect();
        if plugins.is_empty() {
            continue;
        }
        round += 1;
        let id = format!("tick-{round}");
        let outcomes = futures_util::future::join_all(plugins.iter().map(|p| p.on_tick(&id))).await;
        for (plugin, outcome) in plugins.iter().zip(outcomes) {
            if let Err(failure) = outcome {
                tracing::warn!(plugin = %plugin.context().name, error = %failure.message_for_operator(), "on-tick failed");
                state
                    .metrics()
                    .counter(
                        "sluice_plugin_tick_failures_total",
                        &[("plugin", &plugin.context().name)],
                    )
                    .add(1);
            }
        }
    }
}
