//! `[gpu]` on reload: the scheduling policy (weights, per-route weights, how long a request may
//! wait, staleness, retries) applies to the next decision; backends added to the list start
//! taking requests, and backends removed or redefined are retired (no new requests; the ones
//! they run finish). The rest of the fleet's shape (the first-token timeout, which is also the
//! backends' client timeout; queue size and aging; scrape and discovery intervals; prefix
//! memory; embedding batching) is built at start-up and waits for a restart.

use std::sync::Arc;

use serde_json::{Value, json};

use super::Scheduler;
use super::backends::BackendState;
use sluice_config::{GpuBackendDef, GpuSettings};

impl Scheduler {
    /// Applies the policy of `next` to the running scheduler and returns the `[gpu]` settings
    /// that differ from the running ones but apply only after a restart. Leases already granted
    /// and requests already queued keep what they were admitted with.
    pub fn apply_reload(&self, next: &GpuSettings) -> Vec<&'static str> {
        let current = self.settings();
        let mut merged = (*current).clone();
        merged.weights = next.weights;
        merged.route_weights = next.route_weights.clone();
        merged.max_wait_ms = next.max_wait_ms;
        merged.stale_after_ms = next.stale_after_ms;
        merged.max_retries = next.max_retries;
        if merged != *current {
            tracing::info!("[gpu] scheduling policy reloaded");
            self.settings.store(Arc::new(merged));
        }
        let active: Vec<GpuBackendDef> = self.active_backends().into_iter().map(|(_, d)| d).collect();
        let mut waiting = startup_only(&current, next);
        if active != next.backends {
            waiting.insert(0, "gpu.backends");
        }
        waiting
    }

    /// The backends taking requests, with their indexes.
    pub fn active_backends(&self) -> Vec<(usize, GpuBackendDef)> {
        let inner = self.lock();
        let settings = self.settings();
        settings
            .backends
            .iter()
            .enumerate()
            .filter(|(i, _)| inner.backends.get(*i).is_some_and(|b| !b.retired))
            .map(|(i, def)| (i, def.clone()))
            .collect()
    }

    /// Whether backend `index` was retired by a reload.
    pub fn is_retired(&self, index: usize) -> bool {
        self.lock().backends.get(index).is_none_or(|b| b.retired)
    }

    /// Adds a backend (its client must already exist at the same index) and returns its index.
    pub(crate) fn add_backend(&self, def: &GpuBackendDef) -> usize {
        let mut inner = self.lock();
        inner.backends.push(BackendState::new(def));
        self.settings.rcu(|s| {
            let mut next = (**s).clone();
            next.backends.push(def.clone());
            next
        });
        let index = inner.backends.len() - 1;
        inner.admit(self.now_ms(), &self.settings.load());
        index
    }

    /// Stops giving backend `index` new requests; those it runs finish and release as usual.
    pub(crate) fn retire(&self, index: usize) {
        if let Some(b) = self.lock().backends.get_mut(index) {
            b.retired = true;
        }
    }

    /// The policy in force, for `GET /admin/gpu`.
    pub fn policy(&self) -> Value {
        let s = self.settings();
        json!({
            "weights": s.weights,
            "route_weights": s.route_weights,
            "max_wait_ms": s.max_wait_ms,
            "stale_after_ms": s.stale_after_ms,
            "first_token_timeout_ms": s.first_token_timeout_ms,
            "max_retries": s.max_retries,
        })
    }
}

/// The start-up-only `[gpu]` settings that differ between `running` and `next`.
fn startup_only(running: &GpuSettings, next: &GpuSettings) -> Vec<&'static str> {
    [
        (
            "gpu.first_token_timeout_ms",
            running.first_token_timeout_ms != next.first_token_timeout_ms,
        ),
        ("gpu.queue_capacity", running.queue_capacity != next.queue_capacity),
        ("gpu.aging_ms", running.aging_ms != next.aging_ms),
        (
            "gpu.scrape_interval_ms",
            running.scrape_interval_ms != next.scrape_interval_ms,
        ),
        (
            "gpu.discovery_interval_ms",
            running.discovery_interval_ms != next.discovery_interval_ms,
        ),
        ("gpu.prefix_entries", running.prefix_entries != next.prefix_entries),
        (
            "gpu.embedding_window_ms",
            running.embedding_window_ms != next.embedding_window_ms,
        ),
        (
            "gpu.embedding_max_inputs",
            running.embedding_max_inputs != next.embedding_max_inputs,
        ),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(toml: &str) -> GpuSettings {
        toml::from_str(&format!(
            "{toml}\n[[backends]]\nname = \"a\"\nurl = \"http://127.0.0.1:1\"\nmodels = [{{ name = \"m\" }}]\n"
        ))
        .unwrap()
    }

    #[test]
    fn the_policy_applies_and_the_fleet_waits_for_a_restart() {
        let scheduler = Scheduler::new(&settings(""));
        let mut next = settings("max_wait_ms = 1234\nmax_retries = 0\n[weights]\nprefix_hit = 9.0\n");
        next.backends[0].slots += 3;
        next.queue_capacity = 5;
        let waiting = scheduler.apply_reload(&next);
        assert_eq!(waiting, vec!["gpu.backends", "gpu.queue_capacity"]);
        let now = scheduler.settings();
        assert_eq!(
            (now.max_wait_ms, now.max_retries, now.weights.prefix_hit),
            (1234, 0, 9.0)
        );
        assert_eq!(now.backends, settings("").backends, "the backends stay as started");
        assert_eq!(now.queue_capacity, settings("").queue_capacity);
        assert_eq!(scheduler.max_wait().as_millis(), 1234);
        assert_eq!(scheduler.policy()["weights"]["prefix_hit"], 9.0);
        // The same file again: nothing new to apply, the backend change still waits.
        assert_eq!(
            scheduler.apply_reload(&next),
            vec!["gpu.backends", "gpu.queue_capacity"]
        );
    }
}
