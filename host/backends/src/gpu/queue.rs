//! The admission queue of the GPU scheduler: requests that found every backend saturated wait
//! here, bounded. The next one admitted is the one with the highest *effective* priority — its
//! priority (1–10) plus one level for every `aging_ms` it has waited, so a low-priority
//! request eventually competes with fresh high-priority ones and nothing starves — then, among
//! equals, the one whose tenant was served longest ago (fairness between tenants within a
//! priority), then the oldest. Only requests some backend can take now are considered (a
//! request for a model or GPU count nobody has free does not block the others).

use std::collections::HashMap;
use std::sync::Arc;

/// The highest priority a request may ask for.
pub const MAX_PRIORITY: u8 = 10;

/// How many levels aging may add on top of a request's priority.
const MAX_AGING_LEVELS: u64 = MAX_PRIORITY as u64;

/// A request waiting for admission.
#[derive(Debug)]
pub struct Waiting<T> {
    /// Its priority, 1 (lowest) to 10 (highest).
    pub priority: u8,
    /// Its tenant.
    pub tenant: Arc<str>,
    /// When it was queued (ms, any monotonic clock the caller uses throughout).
    pub enqueued_ms: u64,
    /// Its ticket (unique, increasing).
    pub ticket: u64,
    /// What the caller queued with it.
    pub item: T,
}

/// The queue was full: the request comes back with the number already waiting.
#[derive(Debug)]
pub struct QueueFull<T> {
    /// The request that was refused.
    pub item: T,
    /// How many were waiting.
    pub waiting: usize,
}

/// The bounded admission queue.
#[derive(Debug)]
pub struct AdmissionQueue<T> {
    waiting: Vec<Waiting<T>>,
    capacity: usize,
    aging_ms: u64,
    /// The sequence number of each tenant's last admission (0: never).
    last_served: HashMap<Arc<str>, u64>,
    served: u64,
    tickets: u64,
}

impl<T> AdmissionQueue<T> {
    /// A queue holding at most `capacity` requests, where waiting `aging_ms` raises a
    /// request's effective priority by one level (at least 1 ms).
    pub fn new(capacity: usize, aging_ms: u64) -> Self {
        AdmissionQueue {
            waiting: Vec::with_capacity(capacity.min(4096)),
            capacity,
            aging_ms: aging_ms.max(1),
            last_served: HashMap::new(),
            served: 0,
            tickets: 0,
        }
    }

    /// How many requests wait.
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Queues `item` (priority clamped into 1–10); its ticket, or the item back when full.
    pub fn push(&mut self, priority: u8, tenant: Arc<str>, now_ms: u64, item: T) -> Result<u64, QueueFull<T>> {
        if self.waiting.len() >= self.capacity {
            return Err(QueueFull {
                item,
                waiting: self.waiting.len(),
            });
        }
        self.tickets += 1;
        self.waiting.push(Waiting {
            priority: priority.clamp(1, MAX_PRIORITY),
            tenant,
            enqueued_ms: now_ms,
            ticket: self.tickets,
            item,
        });
        Ok(self.tickets)
    }

    /// A request's effective priority at `now_ms`.
    pub fn effective(&self, priority: u8, enqueued_ms: u64, now_ms: u64) -> u64 {
        let aged = (now_ms.saturating_sub(enqueued_ms) / self.aging_ms).min(MAX_AGING_LEVELS);
        u64::from(priority) + aged
    }

    /// Takes the next request to admit among those `fits` accepts, or None.
    pub fn pop_next(&mut self, now_ms: u64, mut fits: impl FnMut(&T) -> bool) -> Option<Waiting<T>> {
        let mut best: Option<(usize, (u64, u64, u64))> = None;
        for (i, w) in self.waiting.iter().enumerate() {
            // Higher effective priority, then the tenant served longest ago, then the oldest.
            let rank = (
                self.effective(w.priority, w.enqueued_ms, now_ms),
                u64::MAX - self.last_served.get(&w.tenant).copied().unwrap_or(0),
                u64::MAX - w.ticket,
            );
            if best.is_some_and(|(_, b)| b >= rank) || !fits(&w.item) {
                continue;
            }
            best = Some((i, rank));
        }
        let (index, _) = best?;
        let chosen = self.waiting.swap_remove(index);
        self.served += 1;
        self.last_served.insert(chosen.tenant.clone(), self.served);
        Some(chosen)
    }

    /// Removes the request with `ticket` (it gave up or its client went away).
    pub fn remove(&mut self, ticket: u64) -> Option<T> {
        let index = self.waiting.iter().position(|w| w.ticket == ticket)?;
        Some(self.waiting.swap_remove(index).item)
    }

    /// How many wait ahead of a request of `priority` queued now: those whose effective
    /// priority is at least its own.
    pub fn ahead_of(&self, priority: u8, now_ms: u64) -> usize {
        let own = u64::from(priority.clamp(1, MAX_PRIORITY));
        self.waiting
            .iter()
            .filter(|w| self.effective(w.priority, w.enqueued_ms, now_ms) >= own)
            .count()
    }

    /// How many wait at each priority (index 0 is priority 1).
    pub fn by_priority(&self) -> [usize; MAX_PRIORITY as usize] {
        let mut counts = [0; MAX_PRIORITY as usize];
        for w in &self.waiting {
            counts[usize::from(w.priority - 1)] += 1;
        }
        counts
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
