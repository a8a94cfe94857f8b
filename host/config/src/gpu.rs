//! `[gpu]`: the inference backends the GPU scheduler routes to, and how it admits, scores,
//! retries and batches. Read at start-up.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The GPU scheduler's fleet and policy.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuSettings {
    /// The backends (`[[gpu.backends]]`).
    #[serde(default)]
    pub backends: Vec<GpuBackendDef>,
    /// Requests the gateway queues when every backend is saturated; beyond it, 429. Default 1000.
    #[serde(default = "default_queue_capacity")]
    pub queue_capacity: usize,
    /// The longest a request waits in the queue before a 503. Default 30 s.
    #[serde(default = "default_max_wait_ms")]
    pub max_wait_ms: u64,
    /// A queued request gains one priority level per this much waiting, so none starves.
    /// Default 2 s.
    #[serde(default = "default_aging_ms")]
    pub aging_ms: u64,
    /// How often each backend's `/metrics` is read. Default 1 s.
    #[serde(default = "default_scrape_interval_ms")]
    pub scrape_interval_ms: u64,
    /// A metrics reading older than this is stale: the gateway's own count decides alone.
    /// Default 5 s.
    #[serde(default = "default_stale_after_ms")]
    pub stale_after_ms: u64,
    /// How often each backend's `/v1/models` is read to discover models. Default 30 s.
    #[serde(default = "default_discovery_interval_ms")]
    pub discovery_interval_ms: u64,
    /// Prompt prefixes remembered for KV-cache affinity (least recently used go). Default 10,000.
    #[serde(default = "default_prefix_entries")]
    pub prefix_entries: usize,
    /// Scoring weights for every route without its own.
    #[serde(default)]
    pub weights: WeightsDef,
    /// Scoring weights by route name.
    #[serde(default)]
    pub route_weights: BTreeMap<String, WeightsDef>,
    /// How long a backend may take to send the first token (or the whole response head)
    /// before the request is tried on another. Default 30 s.
    #[serde(default = "default_first_token_timeout_ms")]
    pub first_token_timeout_ms: u64,
    /// Other backends tried when one fails before the first token. Default 2.
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Concurrent `/v1/embeddings` requests for one model on one backend within this window
    /// are merged into one backend call; 0 turns batching off. Default 5 ms.
    #[serde(default = "default_embedding_window_ms")]
    pub embedding_window_ms: u64,
    /// The most inputs in one merged embeddings call. Default 64.
    #[serde(default = "default_embedding_max_inputs")]
    pub embedding_max_inputs: usize,
}

/// One inference backend.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuBackendDef {
    /// Its name, in logs, metrics, leases and Postgres rows.
    pub name: String,
    /// Its base URL, e.g. `http://10.0.0.7:8000`.
    pub url: String,
    /// What serves there: `vllm`, `llamacpp`, `localai`, `ollama` or `openai-compatible`.
    #[serde(default)]
    pub kind: BackendKind,
    /// GPUs it has. Default 1.
    #[serde(default = "default_gpus")]
    pub gpus: u32,
    /// GPU memory in MB. Default 24,576.
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// Requests it runs at once; more wait at the gateway. Default 8.
    #[serde(default = "default_slots")]
    pub slots: u32,
    /// The models it can serve (more are discovered from `/v1/models`).
    #[serde(default)]
    pub models: Vec<GpuModelDef>,
}

/// A model a backend can serve.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuModelDef {
    /// The model name requests use.
    pub name: String,
    /// GPU memory it takes once loaded, in MB.
    #[serde(default)]
    pub size_mb: u32,
    /// Whether it is loaded when the gateway starts (before Postgres or discovery says more).
    #[serde(default)]
    pub resident: bool,
}

/// The software behind a backend; decides where its load is read.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum BackendKind {
    /// vLLM: `vllm:*` metrics.
    #[default]
    Vllm,
    /// llama.cpp server: `llamacpp:*` metrics.
    Llamacpp,
    /// LocalAI.
    Localai,
    /// Ollama (no load metrics: the gateway's count decides).
    Ollama,
    /// Any other OpenAI-compatible server.
    OpenaiCompatible,
}

impl BackendKind {
    /// Whether the backend publishes Prometheus load metrics worth reading.
    pub fn has_metrics(self) -> bool {
        matches!(self, BackendKind::Vllm | BackendKind::Llamacpp | BackendKind::Localai)
    }

    /// The model format it loads, as `model_cache_state.model_type` names it.
    pub fn model_type(self) -> &'static str {
        match self {
            BackendKind::Vllm => "safetensors",
            BackendKind::Llamacpp | BackendKind::Ollama => "gguf",
            BackendKind::Localai | BackendKind::OpenaiCompatible => "transformers",
        }
    }
}

/// Scoring weights (see `gpu::Weights`).
#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WeightsDef {
    /// Cost per second of expected cold-load time. Default 4.
    pub cold_per_s: f64,
    /// Cost per request queued or running ahead. Default 1.
    pub per_queued: f64,
    /// Cost of a full KV cache. Default 2.
    pub kv_full: f64,
    /// Bonus for holding the prompt's prefix. Default 3.
    pub prefix_hit: f64,
    /// Cost per 1,000 tokens in flight there. Default 0.25.
    pub per_1k_tokens: f64,
}

impl Default for WeightsDef {
    fn default() -> Self {
        let w = crate::Weights::default();
        WeightsDef {
            cold_per_s: w.cold_per_s,
            per_queued: w.per_queued,
            kv_full: w.kv_full,
            prefix_hit: w.prefix_hit,
            per_1k_tokens: w.per_1k_tokens,
        }
    }
}

impl From<WeightsDef> for crate::Weights {
    fn from(w: WeightsDef) -> Self {
        crate::Weights {
            cold_per_s: w.cold_per_s,
            per_queued: w.per_queued,
            kv_full: w.kv_full,
            prefix_hit: w.prefix_hit,
            per_1k_tokens: w.per_1k_tokens,
        }
    }
}

fn default_queue_capacity() -> usize {
    1000
}
fn default_max_wait_ms() -> u64 {
    30_000
}
fn default_aging_ms() -> u64 {
    2_000
}
fn default_scrape_interval_ms() -> u64 {
    1_000
}
fn default_stale_after_ms() -> u64 {
    5_000
}
fn default_discovery_interval_ms() -> u64 {
    30_000
}
fn default_prefix_entries() -> usize {
    10_000
}
fn default_first_token_timeout_ms() -> u64 {
    30_000
}
fn default_max_retries() -> u32 {
    2
}
fn default_embedding_window_ms() -> u64 {
    5
}
fn default_embedding_max_inputs() -> usize {
    64
}
fn default_gpus() -> u32 {
    1
}
fn default_memory_mb() -> u32 {
    24_576
}
fn default_slots() -> u32 {
    8
}

impl GpuSettings {
    /// Checks that the fleet and policy make sense.
    pub fn validate(&self) -> Result<(), String> {
        let mut names = std::collections::HashSet::new();
        for b in &self.backends {
            if b.name.is_empty() || !b.name.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c)) {
                return Err(format!(
                    "[gpu] backend name '{}': use letters, digits, '-', '_', '.'",
                    b.name
                ));
            }
            if !names.insert(b.name.as_str()) {
                return Err(format!("[gpu] backend '{}' is listed twice", b.name));
            }
            let uri: hyper::Uri = b
                .url
                .parse()
                .map_err(|e| format!("[gpu] backend '{}': url '{}': {e}", b.name, b.url))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(format!("[gpu] backend '{}': url must be http://host:port", b.name));
            }
            if b.slots == 0 {
                return Err(format!("[gpu] backend '{}': slots must be at least 1", b.name));
            }
        }
        if self.queue_capacity == 0 {
            return Err("[gpu] queue_capacity must be at least 1".into());
        }
        if self.aging_ms == 0 || self.scrape_interval_ms == 0 || self.discovery_interval_ms == 0 {
            return Err("[gpu] aging_ms, scrape_interval_ms and discovery_interval_ms must be above 0".into());
        }
        if self.prefix_entries == 0 || self.embedding_max_inputs == 0 {
            return Err("[gpu] prefix_entries and embedding_max_inputs must be at least 1".into());
        }
        for (route, w) in
            std::iter::once(("(default)", &self.weights)).chain(self.route_weights.iter().map(|(r, w)| (r.as_str(), w)))
        {
            if [w.cold_per_s, w.per_queued, w.kv_full, w.prefix_hit, w.per_1k_tokens]
                .iter()
                .any(|v| !v.is_finite() || *v < 0.0)
            {
                return Err(format!(
                    "[gpu] weights for {route}: every weight must be a finite number ≥ 0"
                ));
            }
        }
        Ok(())
    }

    /// The weights for `route`.
    pub fn weights_for(&self, route: &str) -> crate::Weights {
        self.route_weights.get(route).copied().unwrap_or(self.weights).into()
    }
}

/// How much each factor counts (per route).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weights {
    /// Cost per second of expected cold-load time.
    pub cold_per_s: f64,
    /// Cost per request queued or running ahead.
    pub per_queued: f64,
    /// Cost of a full KV cache (scaled by its usage, 0–1).
    pub kv_full: f64,
    /// Bonus for holding the prompt's prefix.
    pub prefix_hit: f64,
    /// Cost per 1,000 tokens (prompt plus most new) the gateway has in flight there: between
    /// backends with as many requests, the one with the lighter ones wins.
    pub per_1k_tokens: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            cold_per_s: 4.0,
            per_queued: 1.0,
            kv_full: 2.0,
            prefix_hit: 3.0,
            per_1k_tokens: 0.25,
        }
    }
}
