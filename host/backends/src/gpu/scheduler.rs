//! The scheduler: leases on backends. A request is reserved (checked, then queued), admitted
//! when some backend can take it — highest effective priority first (`queue.rs`), to the
//! cheapest backend (`score.rs`) — and released with what it used when its response ends,
//! which admits the next. Every method takes the one lock briefly; nothing awaits under it.

use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::backends::BackendState;
use super::{AdmissionQueue, ColdCosts, Need, PrefixIndex};
use sluice_config::GpuSettings;

/// What a request asks of the scheduler.
#[derive(Debug, Clone, Default)]
pub struct Spec {
    /// The model.
    pub model: String,
    /// Priority 1–10.
    pub priority: u8,
    /// The tenant (fairness within a priority).
    pub tenant: Arc<str>,
    /// The workflow, if any.
    pub workflow_id: Option<String>,
    /// Request ids this one waits for.
    pub depends_on: Vec<String>,
    /// GPUs and memory it needs on one backend.
    pub need: Need,
    /// Prompt tokens (estimated).
    pub prompt_tokens: u32,
    /// Most tokens it generates.
    pub max_tokens: u32,
    /// Its prompt prefix's hash.
    pub prefix: Option<u64>,
    /// The route it came on (per-route weights).
    pub route: String,
    /// Its request id (for `depends_on` of later requests).
    pub request_id: String,
}

/// A granted lease.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The lease id.
    pub lease: u64,
    /// The backend's index in the registry.
    pub backend: usize,
    /// The backend's name.
    pub name: Arc<str>,
    /// The backend's base URL.
    pub url: Arc<str>,
    /// Time spent queued.
    pub waited_ms: u32,
    /// Whether the model was not loaded there when granted.
    pub cold: bool,
}

/// Why a request got no backend.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum AcquireError {
    /// No backend lists the model.
    #[error("no backend serves model '{0}'")]
    UnknownModel(String),
    /// The spec is out of range.
    #[error("{0}")]
    Invalid(String),
    /// The queue is full.
    #[error("{retry_after_ms} ms estimated wait: the gateway's queue of {capacity} requests is full")]
    QueueFull {
        /// The estimated wait.
        retry_after_ms: u64,
        /// The queue's size.
        capacity: usize,
    },
    /// The request waited the queue's bound.
    #[error("{retry_after_ms} ms estimated wait: every backend for the model stayed saturated for {waited_ms} ms")]
    WaitedTooLong {
        /// The estimated further wait.
        retry_after_ms: u64,
        /// How long it waited.
        waited_ms: u64,
    },
    /// No healthy backend lists the model (or every one failed this request).
    #[error("{retry_after_ms} ms estimated wait: no healthy backend can serve model '{model}'")]
    NoBackend {
        /// The model.
        model: String,
        /// When to try again.
        retry_after_ms: u64,
    },
    /// The lease is unknown (released already, or never reserved).
    #[error("lease {0} is unknown or released")]
    UnknownLease(u64),
}

impl AcquireError {
    /// The suggested wait before trying again, for `Retry-After`.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            AcquireError::QueueFull { retry_after_ms, .. }
            | AcquireError::WaitedTooLong { retry_after_ms, .. }
            | AcquireError::NoBackend { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }
}

/// What a request used, reported when its lease is released.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Whether it succeeded.
    pub success: bool,
    /// Prompt tokens (the backend's count).
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// Time from sending to the first token, ms (a cold load shows here).
    pub first_token_ms: Option<f64>,
}

/// What the scheduler learned from a released lease (for logs and Postgres).
#[derive(Debug, Clone)]
pub struct Released {
    /// The spec it ran with.
    pub spec: Arc<Spec>,
    /// The backend that served it, if it got one.
    pub backend: Option<Arc<str>>,
    /// Time queued, ms.
    pub waited_ms: u64,
    /// Time held after the grant, ms.
    pub held_ms: f64,
    /// Whether the model was loaded for it (a cold start).
    pub loaded_model: bool,
    /// What it used.
    pub outcome: Outcome,
}

pub(super) enum LeaseState {
    Queued {
        ticket: u64,
        tx: oneshot::Sender<Result<Grant, AcquireError>>,
    },
    Granted {
        backend: usize,
        at_ms: u64,
        cold: bool,
    },
}

pub(super) struct LeaseEntry {
    pub spec: Arc<Spec>,
    pub state: LeaseState,
    pub enqueued_ms: u64,
    pub excluded: Vec<usize>,
}

pub(super) struct Inner {
    pub backends: Vec<BackendState>,
    pub queue: AdmissionQueue<u64>,
    pub prefixes: PrefixIndex,
    pub cold: ColdCosts,
    pub leases: HashMap<u64, LeaseEntry>,
    /// Request id → lease, for `depends_on`.
    pub by_request: HashMap<String, u64>,
    pub next_lease: u64,
    /// Mean time a lease is held, ms (for the estimated wait).
    pub mean_hold_ms: f64,
}

/// The GPU scheduler. Shared by every request and the background scrapers.
pub struct Scheduler {
    pub(super) inner: Mutex<Inner>,
    /// The backends are fixed at start-up; the scheduling policy in it (weights, waits,
    /// retries) is replaced on reload (`reload.rs`).
    pub(super) settings: ArcSwap<GpuSettings>,
    started: Instant,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("backends", &self.settings.load().backends.len())
            .finish()
    }
}

/// Cold-load prior before any load was observed: ms per MB of model.
const COLD_PRIOR_MS_PER_MB: f64 = 0.5;

impl Scheduler {
    /// A scheduler over the backends of `settings`.
    pub fn new(settings: &GpuSettings) -> Arc<Self> {
        Arc::new(Scheduler {
            inner: Mutex::new(Inner {
                backends: settings.backends.iter().map(BackendState::new).collect(),
                queue: AdmissionQueue::new(settings.queue_capacity, settings.aging_ms),
                prefixes: PrefixIndex::new(settings.prefix_entries),
                cold: ColdCosts::new(COLD_PRIOR_MS_PER_MB),
                leases: HashMap::new(),
                by_request: HashMap::new(),
                next_lease: 1,
                mean_hold_ms: 1000.0,
            }),
            settings: ArcSwap::from_pointee(settings.clone()),
            started: Instant::now(),
        })
    }

    /// The settings it runs with now (the backends of start-up, the policy of the last
    /// reload).
    pub fn settings(&self) -> Arc<GpuSettings> {
        self.settings.load_full()
    }

    /// Milliseconds since the scheduler started (its clock).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks `spec`, queues it and admits what can run. Returns the lease id and a receiver
    /// that yields the grant (at once when a backend was free).
    pub fn reserve(&self, spec: Spec) -> Result<(u64, oneshot::Receiver<Result<Grant, AcquireError>>), AcquireError> {
        if !(1..=10).contains(&spec.priority) {
            return Err(AcquireError::Invalid(format!(
                "priority {} is out of range: 1 (lowest) to 10 (highest)",
                spec.priority
            )));
        }
        let now = self.now_ms();
        let mut inner = self.lock();
        if !inner
            .backends
            .iter()
            .any(|b| !b.retired && b.models.contains_key(&spec.model))
        {
            return Err(AcquireError::UnknownModel(spec.model));
        }
        let stale = self.settings.load().stale_after_ms;
        if !inner
            .backends
            .iter()
            .any(|b| b.models.contains_key(&spec.model) && b.healthy(now, stale))
        {
            return Err(AcquireError::NoBackend {
                model: spec.model,
                retry_after_ms: stale,
            });
        }
        let id = inner.next_lease;
        let (tx, rx) = oneshot::channel();
        let priority = spec.priority;
        let tenant = spec.tenant.clone();
        let ticket = match inner.queue.push(priority, tenant, now, id) {
            Ok(ticket) => ticket,
            Err(_) => {
                return Err(AcquireError::QueueFull {
                    retry_after_ms: inner.estimated_wait_ms(&spec, now),
                    capacity: self.settings.load().queue_capacity,
                });
            }
        };
        inner.next_lease += 1;
        if !spec.request_id.is_empty() {
            inner.by_request.insert(spec.request_id.clone(), id);
        }
        inner.leases.insert(
            id,
            LeaseEntry {
                spec: Arc::new(spec),
                state: LeaseState::Queued { ticket, tx },
                enqueued_ms: now,
                excluded: Vec::new(),
            },
        );
        inner.admit(now, &self.settings.load());
        Ok((id, rx))
    }

    /// Releases lease `id` with `outcome` (a queued one leaves the queue) and admits what
    /// can run now. None when the lease is unknown.
    pub fn release(&self, id: u64, outcome: Outcome) -> Option<Released> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let released = inner.release(id, outcome, now);
        inner.admit(now, &self.settings.load());
        released
    }

    /// Gives up lease `id`'s backend after it failed before the first token: the backend is
    /// marked failing until its next good scrape, the request goes back to the front of the
    /// queue, excluding the backends it tried. Returns the receiver of the next grant, or
    /// `NoBackend` when none is left to try.
    pub fn retry(&self, id: u64) -> Result<oneshot::Receiver<Result<Grant, AcquireError>>, AcquireError> {
        let now = self.now_ms();
        let mut inner = self.lock();
        let rx = inner.requeue(id, now, &self.settings.load())?;
        inner.admit(now, &self.settings.load());
        Ok(rx)
    }

    /// Records that a backend's model list is `models` (from `/v1/models`) and which of them
    /// are loaded (`resident`, when the backend says). Returns the models newly loaded and
    /// newly unloaded there.
    pub fn set_models(
        &self,
        backend: usize,
        models: &[String],
        resident: Option<&[String]>,
    ) -> (Vec<String>, Vec<String>) {
        let mut inner = self.lock();
        let Some(b) = inner.backends.get_mut(backend) else {
            return (Vec::new(), Vec::new());
        };
        for m in models {
            b.models.entry(m.clone()).or_insert(0);
        }
        let Some(resident) = resident else {
            return (Vec::new(), Vec::new());
        };
        let now: std::collections::BTreeSet<String> = resident.iter().cloned().collect();
        let loaded = now.difference(&b.resident).cloned().collect();
        let unloaded = b.resident.difference(&now).cloned().collect();
        b.resident = now;
        (loaded, unloaded)
    }

    /// Marks `model` loaded on `backend` (restored from Postgres at start-up).
    pub fn set_resident(&self, backend: &str, model: &str) -> bool {
        let mut inner = self.lock();
        match inner.backends.iter_mut().find(|b| &*b.name == backend) {
            Some(b) if b.models.contains_key(model) => b.resident.insert(model.to_string()),
            _ => false,
        }
    }

    /// Marks `model` not loaded on backend `index` (it answered that it does not have it).
    pub fn set_unloaded(&self, index: usize, model: &str) {
        if let Some(b) = self.lock().backends.get_mut(index) {
            b.resident.remove(model);
        }
    }

    /// Records a metrics reading of `backend` (None: the scrape failed), then admits what
    /// can run.
    pub fn set_load(&self, backend: usize, load: Option<super::BackendLoad>) {
        let now = self.now_ms();
        let mut inner = self.lock();
        if let Some(b) = inner.backends.get_mut(backend) {
            b.failing = load.is_none();
            if load.is_some() {
                b.load = load;
            } else {
                let name = b.name.clone();
                inner.prefixes.forget_backend(&name);
            }
        }
        inner.admit(now, &self.settings.load());
    }

    /// Records that `backend` answered its metrics request without a load reading the
    /// gateway understands: it is reachable, so no longer failing.
    pub fn set_reachable(&self, backend: usize) {
        let now = self.now_ms();
        let mut inner = self.lock();
        if let Some(b) = inner.backends.get_mut(backend) {
            b.failing = false;
        }
        inner.admit(now, &self.settings.load());
    }

    /// How long a request for `spec` queued now would wait, in ms.
    pub fn estimated_wait_ms(&self, spec: &Spec) -> u64 {
        let now = self.now_ms();
        self.lock().estimated_wait_ms(spec, now)
    }

    /// The wait bound for requests, and the settings' first-token timeout.
    pub fn max_wait(&self) -> Duration {
        Duration::from_millis(self.settings.load().max_wait_ms)
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
