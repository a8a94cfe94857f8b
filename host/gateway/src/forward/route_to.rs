//! A request a plugin routed through the GPU scheduler (`route-to` with a lease): wait for
//! the grant (429/503 with `Retry-After` when the fleet stays saturated), load the model when
//! the backend is cold, send, and try another backend when one fails before the first token.
//! The response streams through a tap that captures usage; when it ends — or the client goes
//! away — the lease is released with the usage and the inference is logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Request, Response, StatusCode};

use crate::answer::UsageSlot;
use crate::forward::inference::{self, Prepared, UsageTap};
use sluice_backends::gpu::persist::InferenceRecord;
use sluice_backends::gpu::{AcquireError, GpuFleet, Grant, LeaseGuard, Outcome};
use sluice_bindings::{InferenceUsage, UpstreamChoice};
use sluice_core::body::{ProxyBody, full};
use sluice_core::headers;

/// The most bytes read from a stream before its first complete event.
const FIRST_EVENT_LIMIT: usize = 256 << 10;
/// The most bytes of a whole (non-streamed) response kept to read its usage.
const USAGE_CAP: usize = 4 << 20;

/// The response header naming the backend that served the request.
pub static X_SLUICE_BACKEND: hyper::header::HeaderName = hyper::header::HeaderName::from_static("x-sluice-backend");

/// A routed request, ready to go.
pub struct GpuRequest<'a> {
    /// The fleet.
    pub fleet: &'a Arc<GpuFleet>,
    /// What the plugin chose.
    pub choice: UpstreamChoice,
    /// The leases the plugins took for this request.
    pub leases: Vec<LeaseGuard>,
    /// The request head as the plugins left it (path and query in the URI).
    pub parts: hyper::http::request::Parts,
    /// The buffered body.
    pub body: Bytes,
    /// The request id.
    pub request_id: &'a str,
    /// When the gateway received the request.
    pub started: Instant,
}

/// An OpenAI-format error response, with `Retry-After` when given.
pub fn openai_error(status: StatusCode, code: &str, message: &str, retry_after_ms: Option<u64>) -> Response<ProxyBody> {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    let body = serde_json::json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    let mut resp = Response::new(full(body.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(ms) = retry_after_ms {
        resp.headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000).max(1)));
    }
    resp
}

fn refused(e: &AcquireError) -> Response<ProxyBody> {
    let (status, code) = match e {
        AcquireError::QueueFull { .. } => (StatusCode::TOO_MANY_REQUESTS, "queue_full"),
        AcquireError::WaitedTooLong { .. } => (StatusCode::SERVICE_UNAVAILABLE, "fleet_saturated"),
        AcquireError::NoBackend { .. } => (StatusCode::SERVICE_UNAVAILABLE, "no_backend"),
        AcquireError::UnknownModel(_) => (StatusCode::NOT_FOUND, "model_not_found"),
        AcquireError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        AcquireError::UnknownLease(_) => (StatusCode::BAD_GATEWAY, "lease_lost"),
    };
    tracing::info!(%e, status = status.as_u16(), "gpu: request refused");
    openai_error(status, code, &e.to_string(), e.retry_after_ms())
}

/// What one attempt on a backend gave.
enum Attempt {
    /// A stream that sent its first event.
    Stream(hyper::http::response::Parts, Bytes, ProxyBody),
    /// A whole response (or the backend's own 4xx).
    Whole(hyper::http::response::Parts, ProxyBody),
}

/// Sends `req` through the scheduler; the response (the backend's or the gateway's refusal)
/// and the slot its usage lands in.
pub async fn send(req: GpuRequest<'_>) -> (Response<ProxyBody>, Option<UsageSlot>) {
    let GpuRequest {
        fleet,
        choice,
        mut leases,
        parts,
        body,
        request_id,
        started,
    } = req;
    let Some(position) = choice.lease.and_then(|id| leases.iter().position(|g| g.id() == id)) else {
        let message =
            "a plugin chose a backend (route-to) without a lease of this request from gpu.reserve or gpu.acquire";
        return (
            openai_error(StatusCode::BAD_GATEWAY, "route_to_without_lease", message, None),
            None,
        );
    };
    let mut guard = leases.swap_remove(position);
    drop(leases);
    let settings = fleet.scheduler.settings();
    let bound = fleet.scheduler.max_wait();
    let prompt_chars = prompt_chars(&body);
    // A request the fleet did not serve is still an inference on record (status 429, 502, 503).
    let spec = fleet.scheduler.spec(guard.id());
    let unserved = |resp: Response<ProxyBody>, backend: Option<&str>| {
        if let (Some(persist), Some(spec)) = (&fleet.persist, &spec) {
            persist.inference(&InferenceRecord {
                tenant: spec.tenant.to_string(),
                model: spec.model.clone(),
                backend: backend.map(str::to_string),
                prompt_chars,
                response_chars: 0,
                prompt_tokens: spec.prompt_tokens,
                completion_tokens: 0,
                latency_ms: started.elapsed().as_secs_f64() * 1000.0,
                status: resp.status().as_u16(),
                request_id: request_id.to_string(),
                workflow_id: spec.workflow_id.clone(),
                memory_mb: 0,
            });
        }
        (resp, None)
    };
    let mut grant = match guard.granted(bound).await {
        Ok(grant) => grant,
        Err(e) => return unserved(refused(&e), None),
    };
    let prepared = inference::prepare_request(&body);
    let mut retries = 0u32;
    let (attempt, sent_at) = loop {
        let sent_at = Instant::now();
        match attempt(fleet, &grant, &parts, &prepared).await {
            Ok(done) => break (done, sent_at),
            Err(reason) => {
                tracing::warn!(backend = %grant.name, %reason, retries, "gpu: backend failed before the first token");
                if retries >= settings.max_retries {
                    let message = format!("the inference backend failed before the first token: {reason}");
                    guard.finish(Outcome::default());
                    let resp = openai_error(StatusCode::BAD_GATEWAY, "backend_failed", &message, None);
                    return unserved(resp, Some(&grant.name));
                }
                retries += 1;
                if let Err(e) = guard.retry() {
                    return unserved(refused(&e), Some(&grant.name));
                }
                grant = match guard.granted(bound).await {
                    Ok(grant) => grant,
                    Err(e) => return unserved(refused(&e), None),
                };
            }
        }
    };
    let slot: UsageSlot = Arc::default();
    let model = prepared.model.clone().unwrap_or_default();
    let backend_name = grant.name.to_string();
    let finished = Finished {
        fleet: fleet.clone(),
        slot: slot.clone(),
        model,
        grant: grant.clone(),
        retries,
        request_id: request_id.to_string(),
        workflow_id: headers_value(&parts.headers, "x-workflow-id"),
        prompt_chars,
        started,
        sent_at,
    };
    let (mut resp_parts, body) = match attempt {
        Attempt::Stream(resp_parts, already, rest) => {
            let status = resp_parts.status;
            let body = inference::sse_body(already, rest, prepared.injected_usage, move |tap, completed| {
                finished.done(guard, status, &tap, completed)
            });
            (resp_parts, body)
        }
        Attempt::Whole(resp_parts, rest) => {
            let status = resp_parts.status;
            let body = inference::json_body(rest, USAGE_CAP, move |tap, completed| {
                finished.done(guard, status, &tap, completed)
            });
            (resp_parts, body)
        }
    };
    headers::strip_hop_by_hop(&mut resp_parts.headers);
    if prepared.injected_usage || resp_parts.headers.contains_key(hyper::header::TRANSFER_ENCODING) {
        // The body may change length (the usage chunk the client did not ask for goes).
        resp_parts.headers.remove(CONTENT_LENGTH);
    }
    if let Ok(v) = HeaderValue::from_str(&backend_name) {
        resp_parts.headers.insert(X_SLUICE_BACKEND.clone(), v);
    }
    (Response::from_parts(resp_parts, body), Some(slot))
}

/// Characters of prompt in an OpenAI request body: chat messages' text, a completion's
/// prompt, embeddings' input (0 when the body is not JSON).
fn prompt_chars(body: &[u8]) -> u32 {
    fn text_len(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => s.chars().count(),
            serde_json::Value::Array(items) => items.iter().map(text_len).sum(),
            serde_json::Value::Object(o) => o.get("content").or_else(|| o.get("text")).map_or(0, text_len),
            _ => 0,
        }
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    let n = ["messages", "prompt", "input"]
        .iter()
        .filter_map(|k| v.get(*k))
        .map(text_len)
        .sum::<usize>();
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn headers_value(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// One try on the granted backend: load the model when cold, send, and for a stream wait for
/// its first event. An error means "try another backend".
async fn attempt(
    fleet: &GpuFleet,
    grant: &Grant,
    parts: &hyper::http::request::Parts,
    prepared: &Prepared,
) -> Result<Attempt, String> {
    let model = prepared.model.as_deref().unwrap_or_default();
    if grant.cold {
        fleet
            .load_model(grant.backend, model)
            .await
            .map_err(|e| e.to_string())?;
    }
    if let Some(batcher) = &fleet.batcher
        && parts.uri.path() == "/v1/embeddings"
        && let Ok(request) = serde_json::from_slice::<serde_json::Value>(&prepared.body)
    {
        return embeddings(fleet, batcher, grant, model, request).await;
    }
    let resp = send_once(fleet, grant, parts, prepared).await?;
    let resp = if resp.status() == StatusCode::NOT_FOUND && !grant.cold {
        // The backend no longer has the model loaded (unloaded since the gateway last
        // looked): load it and send again, once.
        tracing::info!(backend = %grant.name, model, "gpu: model no longer loaded; loading it again");
        drop(resp);
        fleet.scheduler.set_unloaded(grant.backend, model);
        fleet
            .load_model(grant.backend, model)
            .await
            .map_err(|e| e.to_string())?;
        send_once(fleet, grant, parts, prepared).await?
    } else {
        resp
    };
    let status = resp.status();
    if status.is_server_error() {
        return Err(format!("the backend answered {status}"));
    }
    let is_stream = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let (resp_parts, mut body) = resp.into_parts();
    if !(is_stream && status.is_success()) {
        return Ok(Attempt::Whole(resp_parts, body));
    }
    let timeout = Duration::from_millis(fleet.scheduler.settings().first_token_timeout_ms);
    match tokio::time::timeout(timeout, inference::first_event(&mut body, FIRST_EVENT_LIMIT)).await {
        Ok(Ok(already)) => Ok(Attempt::Stream(resp_parts, already, body)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no first token within {} ms", timeout.as_millis())),
    }
}

/// Sends the request to the granted backend and waits for the response head.
async fn send_once(
    fleet: &GpuFleet,
    grant: &Grant,
    parts: &hyper::http::request::Parts,
    prepared: &Prepared,
) -> Result<Response<ProxyBody>, String> {
    let mut req = Request::new(full(prepared.body.clone()));
    *req.method_mut() = parts.method.clone();
    *req.uri_mut() = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|e| format!("{e}"))?;
    let mut out_headers = parts.headers.clone();
    headers::strip_hop_by_hop(&mut out_headers);
    out_headers.remove(HOST);
    out_headers.insert(CONTENT_LENGTH, HeaderValue::from(prepared.body.len()));
    *req.headers_mut() = out_headers;
    fleet
        .upstream(grant.backend)
        .send(req, true)
        .await
        .map_err(|e| e.to_string())
}

/// An embeddings request through the batcher: merged with others for the same model on the
/// same backend within the window, answered with its own part. A 5xx or a failed call is an
/// error (another backend is tried); anything else is the answer.
async fn embeddings(
    fleet: &GpuFleet,
    batcher: &sluice_backends::gpu::EmbedBatcher,
    grant: &Grant,
    model: &str,
    request: serde_json::Value,
) -> Result<Attempt, String> {
    let key = sluice_backends::gpu::BatchKey {
        backend: grant.name.clone(),
        model: Arc::from(model),
    };
    let backend = grant.backend;
    let send = |merged: serde_json::Value| fleet.embeddings_call(backend, merged);
    let (status, value) = batcher.submit(key, request, send).await.map_err(|e| e.to_string())?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    if status.is_server_error() {
        return Err(format!("the backend answered {status}"));
    }
    let mut resp = Response::new(full(value.to_string()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let (parts, body) = resp.into_parts();
    Ok(Attempt::Whole(parts, body))
}

/// What the end of a routed response needs: release, usage for `on-log`, the log row.
struct Finished {
    fleet: Arc<GpuFleet>,
    slot: UsageSlot,
    model: String,
    grant: Grant,
    retries: u32,
    request_id: String,
    workflow_id: Option<String>,
    prompt_chars: u32,
    started: Instant,
    sent_at: Instant,
}

impl Finished {
    fn done(self, guard: LeaseGuard, status: StatusCode, tap: &UsageTap, completed: bool) {
        let first_token_ms = tap
            .first_token_at
            .map(|at| at.saturating_duration_since(self.sent_at).as_secs_f64() * 1000.0);
        let outcome = Outcome {
            success: completed && tap.error.is_none() && status.is_success(),
            prompt_tokens: tap.prompt_tokens.unwrap_or(0),
            completion_tokens: tap.completion_tokens.unwrap_or(0),
            first_token_ms,
        };
        let released = guard.finish(outcome);
        let result = match (completed, outcome.success) {
            (false, _) => "disconnected",
            (true, true) => "ok",
            (true, false) => "failed",
        };
        self.fleet
            .count_request(&self.grant.name, result, self.grant.waited_ms, self.retries);
        let (tenant, estimated_prompt) = released.as_ref().map_or((String::from("default"), 0), |r| {
            (r.spec.tenant.to_string(), r.spec.prompt_tokens)
        });
        let prompt_tokens = tap.prompt_tokens.unwrap_or(estimated_prompt);
        if let Ok(mut slot) = self.slot.lock() {
            *slot = Some(InferenceUsage {
                model: self.model.clone(),
                backend: self.grant.name.to_string(),
                prompt_tokens,
                completion_tokens: outcome.completion_tokens,
                waited_ms: self.grant.waited_ms,
                first_token_ms: first_token_ms.unwrap_or(0.0) as u32,
                retries: self.retries,
            });
        }
        if let Some(persist) = &self.fleet.persist {
            let memory_mb = self
                .fleet
                .scheduler
                .settings()
                .backends
                .get(self.grant.backend)
                .and_then(|b| b.models.iter().find(|m| m.name == self.model))
                .map_or(0, |m| m.size_mb);
            persist.inference(&InferenceRecord {
                tenant,
                model: self.model,
                backend: Some(self.grant.name.to_string()),
                prompt_chars: self.prompt_chars,
                response_chars: u32::try_from(tap.response_chars).unwrap_or(u32::MAX),
                prompt_tokens,
                completion_tokens: outcome.completion_tokens,
                latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
                status: if completed { status.as_u16() } else { 499 },
                request_id: self.request_id,
                workflow_id: self.workflow_id,
                memory_mb,
            });
        }
    }
}
