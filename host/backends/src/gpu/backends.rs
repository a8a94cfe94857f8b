//! What the scheduler knows about each backend: its definition, the models it lists, which
//! are loaded, its last metrics reading and the gateway's own count of what it sent there.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{BackendLoad, BackendView, Need};
use sluice_config::GpuBackendDef;

/// One backend's live state (kept under the scheduler's lock).
#[derive(Debug)]
pub struct BackendState {
    /// Its name.
    pub name: Arc<str>,
    /// Its base URL.
    pub url: Arc<str>,
    /// Its configuration.
    pub def: GpuBackendDef,
    /// Model name → size in MB, from the config and from discovery.
    pub models: BTreeMap<String, u32>,
    /// Models loaded now.
    pub resident: BTreeSet<String>,
    /// The last metrics reading.
    pub load: Option<BackendLoad>,
    /// Whether the last scrape or request failed (cleared by the next good scrape or success).
    pub failing: bool,
    /// Requests the gateway has running there.
    pub in_flight: u32,
    /// Tokens (prompt + max new) of those requests.
    pub tokens_in_flight: u64,
    /// GPUs those requests asked for.
    pub gpus_taken: u32,
    /// GPU memory those requests asked for, MB.
    pub memory_taken: u32,
    /// Requests it finished.
    pub served: u64,
    /// Requests that failed there.
    pub failed: u64,
    /// Removed (or redefined) by a reload: takes no new requests; its leases finish. Its index
    /// stays so that leases and clients keep theirs.
    pub retired: bool,
}

impl BackendState {
    /// The state of a configured backend before anything was read from it.
    pub fn new(def: &GpuBackendDef) -> Self {
        BackendState {
            name: Arc::from(def.name.as_str()),
            url: Arc::from(def.url.trim_end_matches('/')),
            models: def.models.iter().map(|m| (m.name.clone(), m.size_mb)).collect(),
            resident: def
                .models
                .iter()
                .filter(|m| m.resident)
                .map(|m| m.name.clone())
                .collect(),
            def: def.clone(),
            load: None,
            failing: false,
            in_flight: 0,
            tokens_in_flight: 0,
            gpus_taken: 0,
            memory_taken: 0,
            served: 0,
            failed: 0,
            retired: false,
        }
    }

    /// Whether it runs as many requests as it has slots.
    pub fn saturated(&self) -> bool {
        self.in_flight >= self.def.slots
    }

    /// Whether the metrics say it is reachable and fresh enough (a backend without metrics,
    /// or not read yet, counts as healthy until a request to it fails).
    pub fn healthy(&self, now_ms: u64, stale_after_ms: u64) -> bool {
        if self.failing || self.retired {
            return false;
        }
        match self.load {
            Some(load) if self.def.kind.has_metrics() => !load.is_stale(now_ms, stale_after_ms.saturating_mul(3)),
            _ => true,
        }
    }

    /// Requests ahead of a new one: the gateway's own count, or the backend's when its fresh
    /// metrics show more (other gateways' traffic).
    pub fn queued(&self, now_ms: u64, stale_after_ms: u64) -> u32 {
        let reported = self
            .load
            .filter(|l| !l.is_stale(now_ms, stale_after_ms))
            .map_or(0.0, |l| l.waiting + l.running);
        self.in_flight.max(reported as u32)
    }

    /// The scoring view for a request for `model`.
    pub fn view(&self, model: &str, now_ms: u64, stale_after_ms: u64) -> BackendView {
        BackendView {
            healthy: self.healthy(now_ms, stale_after_ms) && !self.saturated(),
            free_gpus: self.def.gpus.saturating_sub(self.gpus_taken),
            free_memory_mb: self.def.memory_mb.saturating_sub(self.memory_taken),
            resident: self.resident.contains(model),
            has_model: self.models.contains_key(model),
            queued: self.queued(now_ms, stale_after_ms),
            kv_usage: self
                .load
                .filter(|l| !l.is_stale(now_ms, stale_after_ms))
                .map_or(0.0, |l| l.kv_usage),
            tokens_in_flight: self.tokens_in_flight,
        }
    }

    /// Counts a request with `need` and `tokens` as running here.
    pub fn take(&mut self, need: Need, tokens: u64) {
        self.in_flight += 1;
        self.tokens_in_flight += tokens;
        self.gpus_taken += need.gpus;
        self.memory_taken += need.memory_mb;
    }

    /// Stops counting a request taken with `need` and `tokens`.
    pub fn give_back(&mut self, need: Need, tokens: u64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.tokens_in_flight = self.tokens_in_flight.saturating_sub(tokens);
        self.gpus_taken = self.gpus_taken.saturating_sub(need.gpus);
        self.memory_taken = self.memory_taken.saturating_sub(need.memory_mb);
    }

    /// A model's size as configured or discovered (0 when unknown).
    pub fn model_size(&self, model: &str) -> u32 {
        self.models.get(model).copied().unwrap_or(0)
    }
}
