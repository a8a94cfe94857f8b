//! Shared simulator state: models on GPUs, slots, the KV cache, counters and injected faults.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{ModelConfig, SimConfig};
use crate::error::ApiError;
use crate::kv::KvCache;

/// How the next requests should fail, set through `POST /sim/fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FaultMode {
    /// Answer 500 before any token is produced.
    BeforeFirstToken,
    /// Cut the response body after a few chunks.
    MidStream,
    /// Behave normally.
    None,
}

/// Where a model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Loading { gpu: usize },
    Loaded { gpu: usize },
}

struct Gpus {
    free_mb: Vec<u64>,
    models: HashMap<String, Placement>,
}

/// Outcome of a load request that may proceed.
pub(crate) enum LoadStart {
    /// The model was already loaded.
    AlreadyLoaded,
    /// Memory is reserved; the load completes after this many milliseconds.
    Started(u64),
}

/// Everything the request handlers share.
pub(crate) struct SimState {
    pub(crate) config: SimConfig,
    gpus: Mutex<Gpus>,
    pub(crate) kv: Mutex<KvCache>,
    slots: Arc<Semaphore>,
    pub(crate) waiting: AtomicUsize,
    pub(crate) running: AtomicUsize,
    pub(crate) prompt_tokens_total: AtomicU64,
    pub(crate) generation_tokens_total: AtomicU64,
    fault: Mutex<(FaultMode, u64)>,
}

/// A held generation slot; dropping it frees the slot.
pub(crate) struct Slot {
    state: Arc<SimState>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.state.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a request as waiting while it exists.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl SimState {
    /// Builds the state, placing the models configured as loaded.
    pub(crate) fn new(config: SimConfig) -> Result<Self, crate::SimError> {
        config.validate()?;
        let mut gpus = Gpus {
            free_mb: vec![config.memory_mb; config.gpus],
            models: HashMap::new(),
        };
        for model in config.models.iter().filter(|m| m.loaded) {
            let gpu = gpus.emptiest();
            if gpus.free_mb[gpu] < model.size_mb {
                return Err(crate::SimError::InvalidConfig(format!(
                    "the models marked `loaded` do not fit in GPU memory (at `{}`)",
                    model.name
                )));
            }
            gpus.free_mb[gpu] -= model.size_mb;
            gpus.models.insert(model.name.clone(), Placement::Loaded { gpu });
        }
        Ok(Self {
            kv: Mutex::new(KvCache::new(config.kv_cache_tokens)),
            slots: Arc::new(Semaphore::new(config.slots)),
            gpus: Mutex::new(gpus),
            config,
            waiting: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            prompt_tokens_total: AtomicU64::new(0),
            generation_tokens_total: AtomicU64::new(0),
            fault: Mutex::new((FaultMode::None, 0)),
        })
    }

    fn model_config(&self, name: &str) -> Option<&ModelConfig> {
        self.config.models.iter().find(|m| m.name == name)
    }

    /// The configuration of `name` if it is loaded, else a 404 error.
    pub(crate) fn loaded_model(&self, name: &str) -> Result<&ModelConfig, ApiError> {
        let loaded = matches!(self.gpus.lock().models.get(name), Some(Placement::Loaded { .. }));
        match self.model_config(name) {
            Some(model) if loaded => Ok(model),
            _ => Err(ApiError::ModelNotFound(name.to_owned())),
        }
    }

    /// Names of the loaded models, in configuration order.
    pub(crate) fn loaded_names(&self) -> Vec<String> {
        let gpus = self.gpus.lock();
        self.config
            .models
            .iter()
            .filter(|m| matches!(gpus.models.get(&m.name), Some(Placement::Loaded { .. })))
            .map(|m| m.name.clone())
            .collect()
    }

    /// Reserves memory for loading `name` on the emptiest GPU.
    pub(crate) fn begin_load(&self, name: &str) -> Result<LoadStart, ApiError> {
        let model = self
            .model_config(name)
            .ok_or_else(|| ApiError::ModelNotFound(name.to_owned()))?;
        let mut gpus = self.gpus.lock();
        match gpus.models.get(name) {
            Some(Placement::Loaded { .. }) => return Ok(LoadStart::AlreadyLoaded),
            Some(Placement::Loading { .. }) => return Err(ApiError::ModelLoading(name.to_owned())),
            None => {}
        }
        let gpu = gpus.emptiest();
        if gpus.free_mb[gpu] < model.size_mb {
            return Err(ApiError::InsufficientMemory {
                model: name.to_owned(),
                need_mb: model.size_mb,
                free_mb: gpus.free_mb[gpu],
            });
        }
        gpus.free_mb[gpu] -= model.size_mb;
        gpus.models.insert(name.to_owned(), Placement::Loading { gpu });
        Ok(LoadStart::Started(model.load_ms))
    }

    /// Marks a model whose load time has passed as loaded.
    pub(crate) fn finish_load(&self, name: &str) {
        let mut gpus = self.gpus.lock();
        if let Some(placement) = gpus.models.get_mut(name)
            && let Placement::Loading { gpu } = *placement
        {
            *placement = Placement::Loaded { gpu };
        }
    }

    /// Unloads a loaded model and frees its memory.
    pub(crate) fn unload(&self, name: &str) -> Result<(), ApiError> {
        let size = self
            .model_config(name)
            .map(|m| m.size_mb)
            .ok_or_else(|| ApiError::ModelNotFound(name.into()))?;
        let mut gpus = self.gpus.lock();
        match gpus.models.get(name).copied() {
            Some(Placement::Loaded { gpu }) => {
                gpus.models.remove(name);
                gpus.free_mb[gpu] += size;
                Ok(())
            }
            Some(Placement::Loading { .. }) => Err(ApiError::ModelLoading(name.to_owned())),
            None => Err(ApiError::ModelNotFound(name.to_owned())),
        }
    }

    /// Sets the fault injected into the next `count` generation requests.
    pub(crate) fn set_fault(&self, mode: FaultMode, count: u64) {
        *self.fault.lock() = (mode, count);
    }

    /// The fault for the current request, consuming one from the injected count.
    pub(crate) fn take_fault(&self) -> FaultMode {
        let mut fault = self.fault.lock();
        if fault.1 == 0 {
            return FaultMode::None;
        }
        fault.1 -= 1;
        fault.0
    }

    /// Waits for a free slot, counting the request as waiting meanwhile.
    pub(crate) async fn acquire_slot(self: &Arc<Self>) -> Slot {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(&self.waiting);
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .expect("the slot semaphore is never closed");
        self.running.fetch_add(1, Ordering::SeqCst);
        drop(waiting);
        Slot {
            state: Arc::clone(self),
            _permit: permit,
        }
    }
}

impl Gpus {
    fn emptiest(&self) -> usize {
        (0..self.free_mb.len())
            .max_by_key(|&i| (self.free_mb[i], usize::MAX - i))
            .unwrap_or(0)
    }
}
