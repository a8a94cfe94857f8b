//! Request routing and the small endpoints: models, load/unload, embeddings, health, metrics, faults.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::{SimBody, full};
use crate::error::ApiError;
use crate::generate::{self, Api};
use crate::state::{FaultMode, LoadStart, SimState};
use crate::text;

/// Routes one request; errors are rendered in OpenAI's error format.
pub(crate) async fn route(state: Arc<SimState>, request: Request<Incoming>) -> Response<SimBody> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    tracing::debug!(%method, %path, "request");
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return ApiError::InvalidRequest(format!("reading the body: {e}")).into_response(),
    };
    let result = match (&method, path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => generate::handle(state, Api::Chat, body).await,
        (&Method::POST, "/v1/completions") => generate::handle(state, Api::Completion, body).await,
        (&Method::POST, "/v1/embeddings") => embeddings(&state, &body),
        (&Method::GET, "/v1/models") => Ok(models(&state)),
        (&Method::POST, "/v1/models/load") => load(&state, &body).await,
        (&Method::POST, "/v1/models/unload") => unload(&state, &body),
        (&Method::GET, "/health") => Ok(Response::new(full("OK"))),
        (&Method::GET, "/metrics") => Ok(metrics(&state)),
        (&Method::POST, "/sim/fail") => fail(&state, &body),
        _ => Err(ApiError::NotFound(format!("{method} {path}"))),
    };
    result.unwrap_or_else(ApiError::into_response)
}

fn json_response(status: StatusCode, value: &Value) -> Response<SimBody> {
    let mut response = Response::new(full(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::InvalidJson(e.to_string()))
}

#[derive(Deserialize)]
struct ModelRequest {
    model: String,
}

fn models(state: &SimState) -> Response<SimBody> {
    let data: Vec<Value> = state
        .loaded_names()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "sluice-gpu-sim"}))
        .collect();
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

async fn load(state: &Arc<SimState>, body: &[u8]) -> Result<Response<SimBody>, ApiError> {
    let request: ModelRequest = parse(body)?;
    if let LoadStart::Started(load_ms) = state.begin_load(&request.model)? {
        // The load finishes even if the client goes away.
        let state = Arc::clone(state);
        let name = request.model.clone();
        let done = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(load_ms)).await;
            state.finish_load(&name);
        });
        let _ = done.await;
    }
    Ok(json_response(
        StatusCode::OK,
        &json!({"model": request.model, "status": "loaded"}),
    ))
}

fn unload(state: &SimState, body: &[u8]) -> Result<Response<SimBody>, ApiError> {
    let request: ModelRequest = parse(body)?;
    state.unload(&request.model)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"model": request.model, "status": "unloaded"}),
    ))
}

#[derive(Deserialize)]
struct EmbeddingRequest {
    model: String,
    input: Value,
}

fn embeddings(state: &SimState, body: &[u8]) -> Result<Response<SimBody>, ApiError> {
    let request: EmbeddingRequest = parse(body)?;
    let inputs: Vec<String> = match request.input {
        Value::String(s) => vec![s],
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                _ => Err(ApiError::InvalidRequest(
                    "`input` must be a string or an array of strings".into(),
                )),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(ApiError::InvalidRequest(
                "`input` must be a string or an array of strings".into(),
            ));
        }
    };
    let model = state.loaded_model(&request.model)?;
    let mut prompt_tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            prompt_tokens += text::tokenize(input).len();
            let embedding = text::embed(state.config.seed, &model.name, input, model.embedding_dim);
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    state
        .prompt_tokens_total
        .fetch_add(prompt_tokens as u64, Ordering::Relaxed);
    let usage = json!({"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens});
    Ok(json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model.name, "usage": usage}),
    ))
}

fn metrics(state: &SimState) -> Response<SimBody> {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
    };
    let running = state.running.load(Ordering::SeqCst);
    let waiting = state.waiting.load(Ordering::SeqCst);
    metric(
        "vllm:num_requests_running",
        "gauge",
        "Requests holding a generation slot.",
        running.to_string(),
    );
    metric(
        "vllm:num_requests_waiting",
        "gauge",
        "Requests queued for a slot.",
        waiting.to_string(),
    );
    let usage = state.kv.lock().usage();
    metric(
        "vllm:kv_cache_usage_perc",
        "gauge",
        "KV cache usage, 1 means 100 percent.",
        usage.to_string(),
    );
    let prompt = state.prompt_tokens_total.load(Ordering::Relaxed);
    metric(
        "vllm:prompt_tokens_total",
        "counter",
        "Prompt tokens processed.",
        prompt.to_string(),
    );
    let generated = state.generation_tokens_total.load(Ordering::Relaxed);
    metric(
        "vllm:generation_tokens_total",
        "counter",
        "Tokens generated.",
        generated.to_string(),
    );
    let mut response = Response::new(full(out));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

#[derive(Deserialize)]
struct FailRequest {
    mode: FaultMode,
    #[serde(default = "one")]
    count: u64,
}

fn one() -> u64 {
    1
}

fn fail(state: &SimState, body: &[u8]) -> Result<Response<SimBody>, ApiError> {
    let request: FailRequest = parse(body)?;
    let count = if request.mode == FaultMode::None {
        0
    } else {
        request.count
    };
    state.set_fault(request.mode, count);
    Ok(json_response(
        StatusCode::OK,
        &json!({"mode": request.mode_name(), "count": count}),
    ))
}

impl FailRequest {
    fn mode_name(&self) -> &'static str {
        match self.mode {
            FaultMode::BeforeFirstToken => "before_first_token",
            FaultMode::MidStream => "mid_stream",
            FaultMode::None => "none",
        }
    }
}
