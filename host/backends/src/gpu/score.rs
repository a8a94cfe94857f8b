//! Scoring a backend for a request: the lower the cost, the better. A backend that cannot take
//! the request (unhealthy, not enough free GPUs or memory, the model not servable) has no
//! cost. Otherwise the cost adds the expected cold-load time when the model is not resident
//! (learned per backend and model, `ColdCosts`), the queue in front of the request and the
//! KV-cache pressure, and takes off a bonus when the backend holds the prompt's prefix. The
//! weights are per route.

use std::collections::HashMap;

pub use sluice_config::Weights;

/// What the scheduler knows about one backend now.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendView {
    /// Whether it answers and its metrics are fresh enough.
    pub healthy: bool,
    /// GPUs not taken by running requests.
    pub free_gpus: u32,
    /// GPU memory not taken, in MB.
    pub free_memory_mb: u32,
    /// Whether the model is loaded.
    pub resident: bool,
    /// Whether it can load the model at all (it has it).
    pub has_model: bool,
    /// Requests waiting or running on it (its metrics plus the gateway's own count).
    pub queued: u32,
    /// KV-cache usage, 0–1.
    pub kv_usage: f64,
    /// Tokens (prompt plus most new) of the requests the gateway has running there.
    pub tokens_in_flight: u64,
}

/// What a request needs, for scoring.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Need {
    /// GPUs on one backend.
    pub gpus: u32,
    /// GPU memory, MB.
    pub memory_mb: u32,
}

/// The cost of sending a request needing `need` to `backend` (None: it cannot take it);
/// `cold_ms` is the expected load time when the model is not resident, `prefix` whether it
/// holds the prompt's prefix.
pub fn cost(backend: &BackendView, need: Need, cold_ms: f64, prefix: bool, w: &Weights) -> Option<f64> {
    if !backend.healthy
        || !backend.has_model
        || backend.free_gpus < need.gpus
        || backend.free_memory_mb < need.memory_mb
    {
        return None;
    }
    let cold = if backend.resident {
        0.0
    } else {
        cold_ms / 1000.0 * w.cold_per_s
    };
    let queue = f64::from(backend.queued) * w.per_queued + backend.tokens_in_flight as f64 / 1000.0 * w.per_1k_tokens;
    let kv = backend.kv_usage.clamp(0.0, 1.0) * w.kv_full;
    let bonus = if prefix && backend.resident { w.prefix_hit } else { 0.0 };
    Some(cold + queue + kv - bonus)
}

/// The index of the cheapest backend, ties to the first; None when none can take it.
pub fn choose(costs: impl IntoIterator<Item = Option<f64>>) -> Option<usize> {
    costs
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|c| (i, c)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// Cold-load times learned per backend and model: an exponentially weighted mean of the loads
/// observed, and before any, the model's size times a prior per MB.
#[derive(Debug)]
pub struct ColdCosts {
    learned: HashMap<(String, String), f64>,
    prior_ms_per_mb: f64,
}

/// How much a new observation moves the learned mean.
const LEARN_RATE: f64 = 0.3;

impl ColdCosts {
    /// Costs with `prior_ms_per_mb` for models never loaded.
    pub fn new(prior_ms_per_mb: f64) -> Self {
        ColdCosts {
            learned: HashMap::new(),
            prior_ms_per_mb,
        }
    }

    /// The expected load time of `model` (of `size_mb`) on `backend`, in ms.
    pub fn estimate(&self, backend: &str, model: &str, size_mb: u32) -> f64 {
        self.learned
            .get(&(backend.to_string(), model.to_string()))
            .copied()
            .unwrap_or(f64::from(size_mb) * self.prior_ms_per_mb)
    }

    /// Records a load of `model` on `backend` that took `ms`.
    pub fn observe(&mut self, backend: &str, model: &str, ms: f64) {
        let entry = self
            .learned
            .entry((backend.to_string(), model.to_string()))
            .or_insert(ms);
        *entry += (ms - *entry) * LEARN_RATE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(resident: bool, queued: u32, kv: f64) -> BackendView {
        BackendView {
            healthy: true,
            free_gpus: 2,
            free_memory_mb: 40_000,
            resident,
            has_model: true,
            queued,
            kv_usage: kv,
            tokens_in_flight: 0,
        }
    }

    const NEED: Need = Need {
        gpus: 1,
        memory_mb: 10_000,
    };

    #[test]
    fn warm_beats_cold_until_the_warm_queue_costs_more_than_a_load() {
        let w = Weights::default();
        let warm = cost(&view(true, 2, 0.5), NEED, 0.0, false, &w).unwrap();
        let cold = cost(&view(false, 0, 0.0), NEED, 5_000.0, false, &w).unwrap();
        assert_eq!(choose([Some(cold), Some(warm)]), Some(1), "warm {warm} vs cold {cold}");
        let busy_warm = cost(&view(true, 30, 0.9), NEED, 0.0, false, &w).unwrap();
        assert_eq!(choose([Some(cold), Some(busy_warm)]), Some(0));
    }

    #[test]
    fn the_prefix_owner_wins_between_equals_and_nobody_takes_what_does_not_fit() {
        let w = Weights::default();
        let a = cost(&view(true, 1, 0.2), NEED, 0.0, false, &w);
        let b = cost(&view(true, 1, 0.2), NEED, 0.0, true, &w);
        assert_eq!(choose([a, b]), Some(1));
        let small = BackendView {
            free_gpus: 0,
            ..view(true, 0, 0.0)
        };
        let down = BackendView {
            healthy: false,
            ..view(true, 0, 0.0)
        };
        assert_eq!(cost(&small, NEED, 0.0, false, &w), None);
        assert_eq!(cost(&down, NEED, 0.0, false, &w), None);
        assert_eq!(choose([None, None]), None);
    }

    #[test]
    fn between_equal_queues_the_lighter_tokens_win() {
        let w = Weights::default();
        let heavy = BackendView {
            tokens_in_flight: 32_000,
            ..view(true, 2, 0.0)
        };
        let light = BackendView {
            tokens_in_flight: 600,
            ..view(true, 2, 0.0)
        };
        let costs = [heavy, light].map(|v| cost(&v, NEED, 0.0, false, &w));
        assert_eq!(choose(costs), Some(1));
    }

    #[test]
    fn cold_costs_start_from_the_size_and_learn_from_loads() {
        let mut costs = ColdCosts::new(0.5);
        assert_eq!(costs.estimate("a", "m", 8_000), 4_000.0);
        costs.observe("a", "m", 1_000.0);
        assert_eq!(costs.estimate("a", "m", 8_000), 1_000.0);
        costs.observe("a", "m", 2_000.0);
        assert!((costs.estimate("a", "m", 8_000) - 1_300.0).abs() < 1e-9);
        assert_eq!(costs.estimate("b", "m", 8_000), 4_000.0, "per backend");
    }
}
