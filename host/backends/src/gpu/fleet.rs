//! The fleet the scheduler runs against: one pooled client per backend, the background task
//! that reads each backend's `/metrics` (load) and `/v1/models` (loaded models), loading a
//! model before a request that was granted a cold backend, and the admin view.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use tokio::sync::watch;

use super::persist::Persist;
use super::scheduler::Scheduler;
use sluice_config::{GpuSettings, UpstreamDef};
use sluice_core::body::{ProxyBody, empty, full};
use sluice_core::telemetry::metrics::Registry;
use sluice_core::upstream::Upstream;

/// How often the model performance gathered in memory goes to Postgres.
const PERFORMANCE_FLUSH: Duration = Duration::from_secs(5);

/// Tries at restoring the model cache state at start-up.
const RESTORE_ATTEMPTS: u32 = 5;

/// The largest `/metrics` or `/v1/models` body read.
const MAX_SCRAPE_BYTES: usize = 1 << 20;

/// The GPU fleet: the scheduler plus what reaches the backends.
pub struct GpuFleet {
    /// The scheduler.
    pub scheduler: Arc<Scheduler>,
    /// One pooled client per backend index (retired backends keep theirs); grows on reload.
    upstreams: parking_lot::RwLock<Vec<Arc<Upstream>>>,
    /// Serialises reloads of the backend list, so clients and scheduler indexes stay aligned.
    reconfigure: parking_lot::Mutex<()>,
    /// Postgres records, when `[postgres]` is configured.
    pub persist: Option<Persist>,
    /// Merges concurrent embeddings requests (`embedding_window_ms` above 0).
    pub batcher: Option<super::EmbedBatcher>,
    metrics: Arc<Registry>,
}

impl std::fmt::Debug for GpuFleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuFleet")
            .field("backends", &self.upstreams.read().len())
            .finish()
    }
}

/// Why a model could not be loaded on a backend.
#[derive(Debug, thiserror::Error)]
#[error("loading model '{model}' on backend '{backend}': {reason}")]
pub struct LoadError {
    /// The backend.
    pub backend: String,
    /// The model.
    pub model: String,
    /// What went wrong.
    pub reason: String,
}

impl GpuFleet {
    /// The fleet of `settings`, its counters in `registry`, recording to `persist`.
    pub fn new(settings: &GpuSettings, registry: &Arc<Registry>, persist: Option<Persist>) -> Arc<Self> {
        let upstreams = settings
            .backends
            .iter()
            .map(|b| client_for(b, settings.first_token_timeout_ms, registry))
            .collect();
        Arc::new(GpuFleet {
            scheduler: Scheduler::new(settings),
            upstreams: parking_lot::RwLock::new(upstreams),
            reconfigure: parking_lot::Mutex::new(()),
            persist,
            batcher: (settings.embedding_window_ms > 0).then(|| {
                super::EmbedBatcher::new(
                    Duration::from_millis(settings.embedding_window_ms),
                    settings.embedding_max_inputs,
                )
            }),
            metrics: registry.clone(),
        })
    }

    /// The pooled client of backend `index`.
    pub fn upstream(&self, index: usize) -> Arc<Upstream> {
        self.upstreams.read()[index].clone()
    }

    /// Applies a reloaded `[gpu]`: backends no longer listed (or listed with another
    /// definition) are retired, new ones get a client and join the scheduler, and the
    /// scheduling policy is swapped in. Returns the `gpu.*` settings that wait for a restart.
    pub fn apply_reload(&self, next: &GpuSettings) -> Vec<&'static str> {
        let _one_at_a_time = self.reconfigure.lock();
        let active = self.scheduler.active_backends();
        for (index, def) in &active {
            if !next.backends.contains(def) {
                self.scheduler.retire(*index);
                tracing::info!(backend = %def.name, "gpu: backend retired by a reload; the requests it runs finish");
            }
        }
        let timeout_ms = self.scheduler.settings().first_token_timeout_ms;
        for def in &next.backends {
            if !active.iter().any(|(_, d)| d == def) {
                self.upstreams.write().push(client_for(def, timeout_ms, &self.metrics));
                let index = self.scheduler.add_backend(def);
                debug_assert_eq!(index + 1, self.upstreams.read().len());
                tracing::info!(backend = %def.name, url = %def.url, "gpu: backend added by a reload");
            }
        }
        self.scheduler.apply_reload(next)
    }

    /// Restores loaded models from Postgres, then reads every backend's metrics and models
    /// on their intervals until `shutdown`.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        self.restore().await;
        let settings = self.scheduler.settings();
        let mut scrape = tokio::time::interval(Duration::from_millis(settings.scrape_interval_ms));
        let mut discover = tokio::time::interval(Duration::from_millis(settings.discovery_interval_ms));
        let mut flush = tokio::time::interval(PERFORMANCE_FLUSH);
        for timer in [&mut scrape, &mut discover, &mut flush] {
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        enum Due {
            Scrape,
            Discover,
            Flush,
            Stop,
        }
        loop {
            // Only the timers are raced; the work runs after, one piece at a time.
            let due = tokio::select! {
                _ = scrape.tick() => Due::Scrape,
                _ = discover.tick() => Due::Discover,
                _ = flush.tick() => Due::Flush,
                _ = shutdown.changed() => Due::Stop,
            };
            match due {
                Due::Scrape => self.scrape_all().await,
                Due::Discover => self.discover_all().await,
                Due::Flush => self.flush_performance().await,
                Due::Stop => {
                    self.flush_performance().await;
                    return;
                }
            }
        }
    }

    /// Marks the models `model_cache_state` records as loaded, trying a few times while
    /// Postgres is unreachable or not migrated yet (the gateway serves meanwhile).
    async fn restore(&self) {
        let Some(persist) = self.persist.clone() else { return };
        for attempt in 1..=RESTORE_ATTEMPTS {
            match persist.restore().await {
                Ok(rows) => {
                    let mut restored = 0;
                    for (backend, model) in &rows {
                        restored += usize::from(self.scheduler.set_resident(backend, model));
                    }
                    tracing::info!(restored, "gpu: model cache state restored from postgres");
                    return;
                }
                Err(error) if attempt == RESTORE_ATTEMPTS => {
                    tracing::warn!(%error, "gpu: model cache state not restored");
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await,
            }
        }
    }

    /// Writes the gathered model performance to Postgres (a failure is logged; the numbers
    /// of that interval are lost, never the gateway).
    pub async fn flush_performance(&self) {
        if let Some(persist) = self.persist.clone()
            && let Err(error) = persist.flush_performance().await
        {
            tracing::warn!(%error, "gpu: model performance not saved");
        }
    }

    /// Reads every backend: its `/metrics`, or for a server without load metrics (Ollama,
    /// other OpenAI-compatible ones) its `/v1/models`, only to know it answers (a backend
    /// marked failing by a request comes back when it does).
    async fn scrape_all(&self) {
        let reads = self.backends_where(|_| true).into_iter().map(|i| self.scrape(i));
        futures_util::future::join_all(reads).await;
    }

    /// Reads backend `index`'s `/metrics` into the scheduler (a failure marks it failing).
    /// A backend that answers without the series the gateway reads (another server's metric
    /// names) stays healthy, scored by the gateway's own count alone.
    async fn scrape(&self, index: usize) {
        if !self.scheduler.settings().backends[index].kind.has_metrics() {
            match self.get(index, "/v1/models").await {
                Ok(_) => self.scheduler.set_reachable(index),
                Err(_) => self.scheduler.set_load(index, None),
            }
            return;
        }
        match self.get(index, "/metrics").await {
            Err(_) => self.scheduler.set_load(index, None),
            Ok(text) => match super::load::parse(&String::from_utf8_lossy(&text), self.scheduler.now_ms()) {
                Some(load) => self.scheduler.set_load(index, Some(load)),
                None => self.scheduler.set_reachable(index),
            },
        }
    }

    /// The indexes of the backends whose definition passes `keep`.
    fn backends_where(&self, keep: impl Fn(&sluice_config::GpuBackendDef) -> bool) -> Vec<usize> {
        let settings = self.scheduler.settings();
        let backends = &settings.backends;
        (0..backends.len())
            .filter(|i| keep(&backends[*i]) && !self.scheduler.is_retired(*i))
            .collect()
    }

    async fn discover_all(&self) {
        for i in self.backends_where(|_| true) {
            let Ok(body) = self.get(i, "/v1/models").await else {
                continue;
            };
            let settings = self.scheduler.settings();
            let b = &settings.backends[i];
            let Ok(list) = serde_json::from_slice::<serde_json::Value>(&body) else {
                continue;
            };
            let names: Vec<String> = list["data"]
                .as_array()
                .map(|d| d.iter().filter_map(|m| m["id"].as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            let (loaded, unloaded) = self.scheduler.set_models(i, &names, Some(&names));
            if let Some(persist) = &self.persist {
                for model in &loaded {
                    persist.model_state(b, model, true, None);
                }
                for model in &unloaded {
                    persist.model_state(b, model, false, None);
                }
            }
        }
    }

    /// GETs `path` on backend `index`; the body when it answered 200.
    async fn get(&self, index: usize, path: &'static str) -> Result<Bytes, String> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .body(empty())
            .map_err(|e| e.to_string())?;
        // `has_body` true: no replay (the backend's upstream has no retries anyway), and a
        // future that is Send for every lifetime, which the spawned fleet task needs.
        let upstream = self.upstream(index);
        let resp = upstream.send(req, true).await.map_err(|e| e.to_string())?;
        if resp.status() != StatusCode::OK {
            return Err(format!("status {}", resp.status()));
        }
        // Read frame by frame under the cap (`Limited`'s collect future is not Send for every
        // lifetime, which the spawned fleet task needs).
        let mut body = resp.into_body();
        let mut out = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            if let Ok(data) = frame.map_err(|e| e.to_string())?.into_data() {
                if out.len() + data.len() > MAX_SCRAPE_BYTES {
                    return Err(format!("the body is larger than {MAX_SCRAPE_BYTES} bytes"));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out.freeze())
    }

    /// Loads `model` on backend `index` (`POST /v1/models/load`) before a request that was
    /// granted it cold; returns how long the load took. The model is then resident and its
    /// load recorded.
    pub async fn load_model(&self, index: usize, model: &str) -> Result<Duration, LoadError> {
        let started = Instant::now();
        let fail = |reason: String| LoadError {
            backend: self.scheduler.settings().backends[index].name.clone(),
            model: model.to_string(),
            reason,
        };
        let body: ProxyBody = full(serde_json::json!({ "model": model }).to_string());
        let req = Request::builder()
            .method(Method::POST)
            .uri("/v1/models/load")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(body)
            .map_err(|e| fail(e.to_string()))?;
        let resp = self
            .upstream(index)
            .send(req, true)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let _ = resp.into_body().collect().await;
        if !status.is_success() {
            return Err(fail(format!("the backend answered {status}")));
        }
        let took = started.elapsed();
        let settings = self.scheduler.settings();
        let def = &settings.backends[index];
        self.scheduler.set_resident(&def.name, model);
        self.metrics
            .counter("sluice_gpu_model_loads_total", &[("backend", &def.name)])
            .add(1);
        self.metrics
            .histogram("sluice_gpu_model_load_seconds", &[])
            .record(took.as_secs_f64());
        if let Some(persist) = &self.persist {
            persist.model_state(def, model, true, Some(took.as_secs_f64() * 1000.0));
        }
        Ok(took)
    }

    /// Sends one embeddings request body to backend `index` and reads its JSON answer (the
    /// batcher's backend call).
    pub async fn embeddings_call(
        &self,
        index: usize,
        request: serde_json::Value,
    ) -> Result<(u16, serde_json::Value), String> {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/v1/embeddings")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(full(request.to_string()))
            .map_err(|e| e.to_string())?;
        let upstream = self.upstream(index);
        let resp = upstream.send(req, true).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        let value = serde_json::from_slice(&body).map_err(|e| format!("the backend's answer is not JSON: {e}"))?;
        self.metrics.counter("sluice_gpu_embedding_calls_total", &[]).add(1);
        Ok((status, value))
    }

    /// Counts one routed request's end: `sluice_gpu_requests_total{backend,result}` (`ok`,
    /// `failed`, `disconnected`), its queue wait (`sluice_gpu_queue_wait_seconds`) and the
    /// backends it tried before (`sluice_gpu_retries_total`).
    pub fn count_request(&self, backend: &str, result: &str, waited_ms: u32, retries: u32) {
        self.metrics
            .counter("sluice_gpu_requests_total", &[("backend", backend), ("result", result)])
            .add(1);
        self.metrics
            .histogram("sluice_gpu_queue_wait_seconds", &[])
            .record(f64::from(waited_ms) / 1000.0);
        if retries > 0 {
            self.metrics
                .counter("sluice_gpu_retries_total", &[])
                .add(u64::from(retries));
        }
    }

    /// What `GET /admin/gpu` shows: each backend's load, loaded models and leases, the queue
    /// by priority and the open leases.
    pub fn snapshot(&self) -> serde_json::Value {
        self.scheduler.snapshot()
    }
}

/// The pooled client of a backend: no retries (the scheduler retries elsewhere), the
/// first-token timeout as its request timeout, counted as upstream `gpu:NAME`.
fn client_for(backend: &sluice_config::GpuBackendDef, timeout_ms: u64, registry: &Arc<Registry>) -> Arc<Upstream> {
    let def: UpstreamDef = toml::from_str(&format!(
        "targets = [{:?}]\nretries = 0\nrequest_timeout_ms = {}\nbreaker_failures = 1000000",
        backend.url.trim_end_matches('/'),
        timeout_ms.max(1)
    ))
    .expect("an upstream definition from a validated backend");
    Upstream::new(&format!("gpu:{}", backend.name), &def, registry, 0)
}
