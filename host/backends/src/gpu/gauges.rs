//! The GPU fleet as Prometheus gauges, set at each `/metrics` scrape from the scheduler's
//! state (the same figures `GET /admin/gpu` shows): per backend its health, slots, GPUs,
//! memory and loaded models; the queue by priority; open leases by state.

use sluice_core::telemetry::metrics::Registry;

use super::scheduler::{LeaseState, Scheduler};

impl Scheduler {
    /// Requests waiting in the queue now, of every priority.
    pub fn waiting(&self) -> usize {
        self.lock().queue.len()
    }

    /// Sets the fleet's gauges in `metrics`: `sluice_gpu_backend_*{backend}`,
    /// `sluice_gpu_queue_waiting{priority}` (1 to 10), `sluice_gpu_queue_capacity` and
    /// `sluice_gpu_leases{state}` (`queued`, `granted`).
    pub fn export_gauges(&self, metrics: &Registry) {
        let now = self.now_ms();
        let settings = self.settings();
        let inner = self.lock();
        for b in inner.backends.iter().filter(|b| !b.retired) {
            let labels = [("backend", &*b.name)];
            let set = |name: &str, value: f64| metrics.gauge(name, &labels).set(value);
            set(
                "sluice_gpu_backend_healthy",
                f64::from(u8::from(b.healthy(now, settings.stale_after_ms))),
            );
            set("sluice_gpu_backend_slots", f64::from(b.def.slots));
            set("sluice_gpu_backend_in_flight", f64::from(b.in_flight));
            set("sluice_gpu_backend_gpus", f64::from(b.def.gpus));
            set("sluice_gpu_backend_gpus_taken", f64::from(b.gpus_taken));
            set("sluice_gpu_backend_memory_mb", f64::from(b.def.memory_mb));
            set("sluice_gpu_backend_memory_taken_mb", f64::from(b.memory_taken));
            set("sluice_gpu_backend_models_resident", b.resident.len() as f64);
        }
        for (i, waiting) in inner.queue.by_priority().iter().enumerate() {
            let priority = (i + 1).to_string();
            metrics
                .gauge("sluice_gpu_queue_waiting", &[("priority", priority.as_str())])
                .set(*waiting as f64);
        }
        metrics
            .gauge("sluice_gpu_queue_capacity", &[])
            .set(settings.queue_capacity as f64);
        let granted = inner
            .leases
            .values()
            .filter(|l| matches!(l.state, LeaseState::Granted { .. }))
            .count();
        let queued = inner.leases.len() - granted;
        metrics
            .gauge("sluice_gpu_leases", &[("state", "granted")])
            .set(granted as f64);
        metrics
            .gauge("sluice_gpu_leases", &[("state", "queued")])
            .set(queued as f64);
    }
}
