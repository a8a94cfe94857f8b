//! What the GPU fleet keeps in Postgres: an `inference_logs` row per inference (through the
//! batched sink, so the request path only queues it), `model_performance_metrics` per backend
//! and model (aggregated in memory, upserted every few seconds), and `model_cache_state` per
//! backend and model (written in order on every load and unload, read back at start-up so a
//! restarted gateway knows where models are loaded before it reads a backend).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::sync::mpsc;

use crate::postgres::PostgresBackend;
use crate::sink::{SinkRow, Sinks};

use sluice_config::GpuBackendDef;

/// One finished inference, for `inference_logs` and the performance aggregate.
#[derive(Debug, Clone)]
pub struct InferenceRecord {
    /// The tenant (`inference_logs.domain`).
    pub tenant: String,
    /// The model.
    pub model: String,
    /// The backend that served it.
    pub backend: Option<String>,
    /// Characters of prompt and of generated text.
    pub prompt_chars: u32,
    /// Characters generated.
    pub response_chars: u32,
    /// Tokens in and out.
    pub prompt_tokens: u32,
    /// Tokens generated.
    pub completion_tokens: u32,
    /// End-to-end latency, ms.
    pub latency_ms: f64,
    /// The status sent.
    pub status: u16,
    /// The request id.
    pub request_id: String,
    /// The workflow.
    pub workflow_id: Option<String>,
    /// The model's size on that backend, MB (0: unknown).
    pub memory_mb: u32,
}

#[derive(Debug, Default)]
struct Perf {
    count: i64,
    latency_sum_ms: f64,
    memory_mb: u32,
    load_ms: Option<f64>,
}

struct ModelState {
    domain: String,
    model_type: &'static str,
    model: String,
    memory_mb: f64,
    data: serde_json::Value,
    resident: bool,
}

/// The fleet's Postgres writer.
#[derive(Clone)]
pub struct Persist {
    pg: Arc<PostgresBackend>,
    sinks: Option<Arc<Sinks>>,
    perf: Arc<Mutex<HashMap<(String, String), Perf>>>,
    states: mpsc::UnboundedSender<ModelState>,
}

impl std::fmt::Debug for Persist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Persist")
    }
}

impl Persist {
    /// A writer to `pg`, with inference rows through `sinks`. Starts the task that writes
    /// model states in order (must be called on a tokio runtime).
    pub fn new(pg: Arc<PostgresBackend>, sinks: Option<Arc<Sinks>>) -> Self {
        let (states, mut rx) = mpsc::unbounded_channel::<ModelState>();
        let writer = pg.clone();
        tokio::spawn(async move {
            while let Some(state) = rx.recv().await {
                if let Err(error) = write_state(&writer, &state).await {
                    tracing::warn!(%error, domain = state.domain, "gpu: model cache state not saved");
                }
            }
        });
        Persist {
            pg,
            sinks,
            perf: Arc::default(),
            states,
        }
    }

    /// Queues the `inference_logs` row of `record` and, when it was served (2xx), counts it
    /// for the model's performance.
    pub fn inference(&self, record: &InferenceRecord) {
        if let Some(backend) = record.backend.as_ref().filter(|_| (200..300).contains(&record.status)) {
            let mut perf = self.perf.lock().unwrap_or_else(|p| p.into_inner());
            let entry = perf.entry((backend.clone(), record.model.clone())).or_default();
            entry.count += 1;
            entry.latency_sum_ms += record.latency_ms;
            entry.memory_mb = record.memory_mb;
        }
        let Some(sinks) = &self.sinks else { return };
        let clamp = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        sinks.emit(SinkRow::InferenceLog {
            domain: record.tenant.clone(),
            model_name: record.model.clone(),
            prompt_length: clamp(record.prompt_chars),
            response_length: clamp(record.response_chars),
            latency_ms: record.latency_ms.max(0.0),
            tokens_generated: clamp(record.completion_tokens),
            tokens_prompt: clamp(record.prompt_tokens),
            backend: record.backend.clone(),
            status: i16::try_from(record.status).ok(),
            correlation_id: Some(record.request_id.clone()),
            created_at_us: crate::sink::now_us(),
            workflow_id: record.workflow_id.clone(),
            user_id: None,
        });
    }

    /// Records that `model` was loaded (`resident`) or unloaded on `backend`, with the load
    /// time when the gateway loaded it. Written in order, off the caller.
    pub fn model_state(&self, backend: &GpuBackendDef, model: &str, resident: bool, load_ms: Option<f64>) {
        let size = backend.models.iter().find(|m| m.name == model).map_or(0, |m| m.size_mb);
        if let Some(ms) = load_ms {
            let mut perf = self.perf.lock().unwrap_or_else(|p| p.into_inner());
            perf.entry((backend.name.clone(), model.to_string()))
                .or_default()
                .load_ms = Some(ms);
        }
        let _ = self.states.send(ModelState {
            domain: format!("{}/{model}", backend.name),
            model_type: backend.kind.model_type(),
            model: model.to_string(),
            memory_mb: f64::from(size),
            data: json!({ "backend": backend.name, "model": model, "url": backend.url, "resident": resident, "load_ms": load_ms }),
            resident,
        });
    }

    /// The (backend, model) pairs recorded as loaded.
    pub async fn restore(&self) -> Result<Vec<(String, String)>, sqlx::Error> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT cache_data->>'backend', cache_data->>'model' FROM model_cache_state \
             WHERE (cache_data->>'resident')::boolean AND cache_data ? 'backend' AND cache_data ? 'model'",
        )
        .fetch_all(self.pg.pool())
        .await?;
        Ok(rows)
    }

    /// Upserts the performance gathered since the last flush into `model_performance_metrics`.
    pub async fn flush_performance(&self) -> Result<usize, sqlx::Error> {
        let gathered: Vec<((String, String), Perf)> = {
            let mut perf = self.perf.lock().unwrap_or_else(|p| p.into_inner());
            perf.drain().collect()
        };
        for ((backend, model), p) in &gathered {
            let avg = (p.count > 0).then(|| p.latency_sum_ms / p.count as f64);
            sqlx::query(
                "INSERT INTO model_performance_metrics AS m \
                   (domain, model_name, loading_time_ms, memory_usage_mb, access_count, last_access, avg_latency_ms) \
                 VALUES ($1, $2, $3, $4, $5, CASE WHEN $5 > 0 THEN now() END, $6) \
                 ON CONFLICT (domain, model_name) DO UPDATE SET \
                   loading_time_ms = COALESCE(EXCLUDED.loading_time_ms, m.loading_time_ms), \
                   memory_usage_mb = CASE WHEN EXCLUDED.memory_usage_mb > 0 THEN EXCLUDED.memory_usage_mb ELSE m.memory_usage_mb END, \
                   avg_latency_ms = CASE WHEN EXCLUDED.access_count = 0 THEN m.avg_latency_ms \
                     ELSE (COALESCE(m.avg_latency_ms, 0) * m.access_count + EXCLUDED.avg_latency_ms * EXCLUDED.access_count) \
                          / (m.access_count + EXCLUDED.access_count) END, \
                   access_count = m.access_count + EXCLUDED.access_count, \
                   last_access = COALESCE(EXCLUDED.last_access, m.last_access), \
                   updated_at = now()",
            )
            .bind(backend)
            .bind(model)
            .bind(p.load_ms)
            .bind(f64::from(p.memory_mb))
            .bind(p.count)
            .bind(avg)
            .execute(self.pg.pool())
            .await?;
        }
        Ok(gathered.len())
    }
}

async fn write_state(pg: &PostgresBackend, s: &ModelState) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO model_cache_state (domain, model_type, model_path, loaded_at, memory_mb, cache_data, updated_at) \
         VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END, $5, $6, now()) \
         ON CONFLICT (domain) DO UPDATE SET model_type = EXCLUDED.model_type, model_path = EXCLUDED.model_path, \
           loaded_at = EXCLUDED.loaded_at, memory_mb = EXCLUDED.memory_mb, cache_data = EXCLUDED.cache_data, \
           access_count = model_cache_state.access_count + CASE WHEN $4 THEN 1 ELSE 0 END, \
           last_access = CASE WHEN $4 THEN now() ELSE model_cache_state.last_access END, updated_at = now()",
    )
    .bind(&s.domain)
    .bind(s.model_type)
    .bind(&s.model)
    .bind(s.resident)
    .bind(s.memory_mb)
    .bind(&s.data)
    .execute(pg.pool())
    .await?;
    Ok(())
}
