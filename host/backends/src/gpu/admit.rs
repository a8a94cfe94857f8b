//! The scheduler's decisions under its lock: admitting queued requests to backends, releasing
//! leases, requeueing after a failure and estimating waits.

use super::scheduler::{AcquireError, Grant, Inner, LeaseState, Outcome, Released, Spec};
use super::{choose, cost};
use sluice_config::GpuSettings;
use sluice_config::Weights;

impl Inner {
    /// The cheapest backend for `spec` now, avoiding `excluded`, and whether it is cold.
    /// `owner` is the backend holding the prompt's prefix.
    fn pick(
        &self,
        spec: &Spec,
        excluded: &[usize],
        owner: Option<&str>,
        w: &Weights,
        now: u64,
        stale: u64,
    ) -> Option<(usize, bool)> {
        let costs = self.backends.iter().enumerate().map(|(i, b)| {
            if excluded.contains(&i) {
                return None;
            }
            let view = b.view(&spec.model, now, stale);
            let cold_ms = self.cold.estimate(&b.name, &spec.model, b.model_size(&spec.model));
            cost(&view, spec.need, cold_ms, owner == Some(&*b.name), w)
        });
        let index = choose(costs)?;
        Some((index, !self.backends[index].resident.contains(&spec.model)))
    }

    /// Admits queued requests while some backend can take one.
    pub(super) fn admit(&mut self, now: u64, settings: &GpuSettings) {
        let stale = settings.stale_after_ms;
        loop {
            if self.queue.is_empty() {
                return;
            }
            // The backends that could take some request now, with their free GPUs and memory:
            // when none can (the common case under saturation), the queue is not scanned.
            let open: Vec<(usize, u32, u32)> = self
                .backends
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.saturated() && b.healthy(now, stale))
                .map(|(i, b)| {
                    let view = b.view("", now, stale);
                    (i, view.free_gpus, view.free_memory_mb)
                })
                .collect();
            if open.is_empty() {
                return;
            }
            let next = {
                let Inner {
                    queue,
                    leases,
                    backends,
                    by_request,
                    ..
                } = &mut *self;
                queue.pop_next(now, |id| {
                    let Some(entry) = leases.get(id) else { return true };
                    let spec = &entry.spec;
                    spec.depends_on.iter().all(|r| !by_request.contains_key(r))
                        && open.iter().any(|&(i, gpus, memory)| {
                            gpus >= spec.need.gpus
                                && memory >= spec.need.memory_mb
                                && !entry.excluded.contains(&i)
                                && backends[i].models.contains_key(&spec.model)
                        })
                })
            };
            let Some(waiting) = next else { return };
            let id = waiting.item;
            let Some(entry) = self.leases.get(&id) else { continue };
            let spec = entry.spec.clone();
            let owner = spec.prefix.and_then(|p| self.prefixes.owner(p));
            let w = settings.weights_for(&spec.route);
            let excluded = entry.excluded.clone();
            let Some((backend, cold)) = self.pick(&spec, &excluded, owner.as_deref(), &w, now, stale) else {
                continue;
            };
            let b = &mut self.backends[backend];
            b.take(spec.need, u64::from(spec.prompt_tokens) + u64::from(spec.max_tokens));
            let grant = Grant {
                lease: id,
                backend,
                name: b.name.clone(),
                url: b.url.clone(),
                waited_ms: now.saturating_sub(entry.enqueued_ms) as u32,
                cold,
            };
            let entry = self.leases.get_mut(&id).expect("looked up above");
            let previous = std::mem::replace(
                &mut entry.state,
                LeaseState::Granted {
                    backend,
                    at_ms: now,
                    cold,
                },
            );
            if let LeaseState::Queued { tx, .. } = previous
                && tx.send(Ok(grant)).is_err()
            {
                // Nobody waits any more (the client went away): give the slot back.
                self.release(id, Outcome::default(), now);
            }
        }
    }

    /// Ends lease `id`: out of the queue, or off its backend with what it used.
    pub(super) fn release(&mut self, id: u64, outcome: Outcome, now: u64) -> Option<Released> {
        let entry = self.leases.remove(&id)?;
        if self.by_request.get(&entry.spec.request_id) == Some(&id) {
            self.by_request.remove(&entry.spec.request_id);
        }
        let spec = entry.spec;
        let waited_ms;
        let mut backend_name = None;
        let mut held_ms = 0.0;
        let mut loaded_model = false;
        match entry.state {
            LeaseState::Queued { ticket, .. } => {
                self.queue.remove(ticket);
                waited_ms = now.saturating_sub(entry.enqueued_ms);
            }
            LeaseState::Granted { backend, at_ms, cold } => {
                waited_ms = at_ms.saturating_sub(entry.enqueued_ms);
                held_ms = now.saturating_sub(at_ms) as f64;
                let b = &mut self.backends[backend];
                b.give_back(spec.need, u64::from(spec.prompt_tokens) + u64::from(spec.max_tokens));
                b.served += 1;
                backend_name = Some(b.name.clone());
                if outcome.success {
                    b.failing = false;
                    if cold && b.resident.insert(spec.model.clone()) {
                        loaded_model = true;
                        if let Some(ms) = outcome.first_token_ms {
                            let name = b.name.clone();
                            self.cold.observe(&name, &spec.model, ms);
                        }
                    }
                    if let Some(prefix) = spec.prefix {
                        self.prefixes.record(prefix, self.backends[backend].name.clone());
                    }
                    self.mean_hold_ms += (held_ms - self.mean_hold_ms) * 0.1;
                } else {
                    b.failed += 1;
                }
            }
        }
        Some(Released {
            spec,
            backend: backend_name,
            waited_ms,
            held_ms,
            loaded_model,
            outcome,
        })
    }

    /// Puts granted lease `id` back in the queue, excluding the backend it had.
    pub(super) fn requeue(
        &mut self,
        id: u64,
        now: u64,
        settings: &GpuSettings,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Grant, AcquireError>>, AcquireError> {
        let entry = self.leases.get(&id).ok_or(AcquireError::UnknownLease(id))?;
        let spec = entry.spec.clone();
        let mut excluded = entry.excluded.clone();
        if let LeaseState::Granted { backend, .. } = entry.state {
            let b = &mut self.backends[backend];
            b.give_back(spec.need, u64::from(spec.prompt_tokens) + u64::from(spec.max_tokens));
            b.failed += 1;
            b.failing = true;
            excluded.push(backend);
        }
        let stale = settings.stale_after_ms;
        let left = self
            .backends
            .iter()
            .enumerate()
            .any(|(i, b)| !excluded.contains(&i) && b.models.contains_key(&spec.model) && b.healthy(now, stale));
        if !left {
            let entry = self.leases.remove(&id).expect("looked up above");
            self.by_request.remove(&entry.spec.request_id);
            return Err(AcquireError::NoBackend {
                model: spec.model.clone(),
                retry_after_ms: stale,
            });
        }
        // Back at the highest priority: it already waited its turn once.
        let ticket = match self.queue.push(10, spec.tenant.clone(), now, id) {
            Ok(ticket) => ticket,
            Err(_) => {
                self.leases.remove(&id);
                self.by_request.remove(&spec.request_id);
                return Err(AcquireError::QueueFull {
                    retry_after_ms: self.estimated_wait_ms(&spec, now),
                    capacity: settings.queue_capacity,
                });
            }
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let entry = self.leases.get_mut(&id).expect("looked up above");
        entry.state = LeaseState::Queued { ticket, tx };
        entry.excluded = excluded;
        Ok(rx)
    }

    /// The expected wait of a request for `spec` queued at `now`: those ahead of it, times the
    /// mean hold, over the slots of the backends that serve its model.
    pub(super) fn estimated_wait_ms(&self, spec: &Spec, now: u64) -> u64 {
        let slots: u32 = self
            .backends
            .iter()
            .filter(|b| b.models.contains_key(&spec.model))
            .map(|b| b.def.slots)
            .sum();
        let ahead = self.queue.ahead_of(spec.priority, now) as f64 + 1.0;
        (ahead * self.mean_hold_ms / f64::from(slots.max(1))).ceil().max(1.0) as u64
    }
}
