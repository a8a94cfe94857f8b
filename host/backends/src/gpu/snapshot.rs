//! Read-only views of the scheduler: the fleet's combined model list (`gpu.models`, the
//! gateway's `/v1/models`) and the admin snapshot (`GET /admin/gpu`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::scheduler::{LeaseState, Scheduler};

/// One model of the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetModel {
    /// The model name.
    pub id: String,
    /// Backends that list it.
    pub backends: Vec<String>,
    /// Backends that have it loaded.
    pub resident_on: Vec<String>,
}

impl Scheduler {
    /// Every model some backend lists (retired ones aside), by name, with where it is loaded.
    pub fn models(&self) -> Vec<FleetModel> {
        let inner = self.lock();
        let mut by_name: BTreeMap<&str, FleetModel> = BTreeMap::new();
        for b in inner.backends.iter().filter(|b| !b.retired) {
            for model in b.models.keys() {
                let entry = by_name.entry(model).or_insert_with(|| FleetModel {
                    id: model.clone(),
                    backends: Vec::new(),
                    resident_on: Vec::new(),
                });
                entry.backends.push(b.name.to_string());
                if b.resident.contains(model) {
                    entry.resident_on.push(b.name.to_string());
                }
            }
        }
        by_name.into_values().collect()
    }

    /// The spec lease `id` was reserved with, while it is open.
    pub fn spec(&self, id: u64) -> Option<std::sync::Arc<super::Spec>> {
        self.lock().leases.get(&id).map(|l| l.spec.clone())
    }

    /// Backends with their load, loaded models and counts; the queue by priority; the open
    /// leases.
    pub fn snapshot(&self) -> Value {
        let now = self.now_ms();
        let stale = self.settings.load().stale_after_ms;
        let inner = self.lock();
        // A retired backend is shown while requests it took still run.
        let backends: Vec<Value> = inner
            .backends
            .iter()
            .filter(|b| !b.retired || b.in_flight > 0)
            .map(|b| {
                json!({
                    "name": &*b.name,
                    "url": &*b.url,
                    "kind": format!("{:?}", b.def.kind).to_lowercase(),
                    "healthy": b.healthy(now, stale),
                    "retired": b.retired,
                    "slots": b.def.slots,
                    "in_flight": b.in_flight,
                    "tokens_in_flight": b.tokens_in_flight,
                    "gpus": b.def.gpus,
                    "gpus_taken": b.gpus_taken,
                    "memory_mb": b.def.memory_mb,
                    "memory_taken_mb": b.memory_taken,
                    "load": b.load.map(|l| json!({
                        "waiting": l.waiting,
                        "running": l.running,
                        "kv_cache_usage": l.kv_usage,
                        "age_ms": now.saturating_sub(l.read_at_ms),
                        "stale": l.is_stale(now, stale),
                    })),
                    "models": b.models.keys().collect::<Vec<_>>(),
                    "resident": b.resident.iter().collect::<Vec<_>>(),
                    "served": b.served,
                    "failed": b.failed,
                })
            })
            .collect();
        let by_priority: BTreeMap<String, usize> = inner
            .queue
            .by_priority()
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| ((i + 1).to_string(), *n))
            .collect();
        let mut leases: Vec<Value> = inner
            .leases
            .iter()
            .map(|(id, l)| {
                let (state, backend, age_ms) = match &l.state {
                    LeaseState::Queued { .. } => ("queued", None, now.saturating_sub(l.enqueued_ms)),
                    LeaseState::Granted { backend, at_ms, .. } => (
                        "granted",
                        Some(inner.backends[*backend].name.to_string()),
                        now.saturating_sub(*at_ms),
                    ),
                };
                json!({
                    "id": id,
                    "state": state,
                    "backend": backend,
                    "model": l.spec.model,
                    "priority": l.spec.priority,
                    "tenant": &*l.spec.tenant,
                    "workflow_id": l.spec.workflow_id,
                    "request_id": l.spec.request_id,
                    "age_ms": age_ms,
                })
            })
            .collect();
        leases.sort_by_key(|l| l["id"].as_u64());
        json!({
            "backends": backends,
            "queue": { "waiting": inner.queue.len(), "capacity": self.settings.load().queue_capacity, "by_priority": by_priority },
            "leases": leases,
            "mean_hold_ms": inner.mean_hold_ms,
            "policy": self.policy(),
        })
    }
}
