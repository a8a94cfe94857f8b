//! `/v1/chat/completions` and `/v1/completions`: queueing, prefill, decode, streaming.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::{Response, header};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::body::{SimBody, channel, full};
use crate::error::ApiError;
use crate::state::{FaultMode, SimState, Slot};
use crate::text;

/// Which completion API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completion,
}

#[derive(Deserialize)]
struct Request {
    model: String,
    #[serde(default)]
    messages: Vec<Message>,
    #[serde(default)]
    prompt: Value,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Value,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// Text of a message `content` or a `prompt`: a string, or an array of strings / text parts.
fn text_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Object(part) => part.get("text").map(text_of).unwrap_or_default(),
                other => text_of(other),
            })
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

/// What a finished generation reports.
struct Outcome {
    id: String,
    created: u64,
    model: String,
    prompt_tokens: usize,
    cached_tokens: usize,
    words: Vec<&'static str>,
    max_tokens: u32,
}

impl Outcome {
    fn finish_reason(&self) -> &'static str {
        if self.words.len() as u32 >= self.max_tokens {
            "length"
        } else {
            "stop"
        }
    }

    fn usage(&self, generated: usize) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": generated,
            "total_tokens": self.prompt_tokens + generated,
            "prompt_tokens_details": { "cached_tokens": self.cached_tokens },
        })
    }

    fn object(&self, api: Api, chunk: bool) -> &'static str {
        match (api, chunk) {
            (Api::Chat, false) => "chat.completion",
            (Api::Chat, true) => "chat.completion.chunk",
            (Api::Completion, _) => "text_completion",
        }
    }

    /// The whole, non-streaming response.
    fn complete(&self, api: Api) -> Value {
        let text = self.words.join(" ");
        let choice = match api {
            Api::Chat => json!({"index": 0, "message": {"role": "assistant", "content": text},
                "finish_reason": self.finish_reason(), "logprobs": null}),
            Api::Completion => {
                json!({"index": 0, "text": text, "finish_reason": self.finish_reason(), "logprobs": null})
            }
        };
        json!({"id": self.id, "object": self.object(api, false), "created": self.created, "model": self.model,
            "choices": [choice], "usage": self.usage(self.words.len())})
    }

    /// One streamed chunk: a piece of text (`None` for the chat role chunk) or the finish.
    fn chunk(&self, api: Api, piece: Option<&str>, finish: Option<&str>) -> Value {
        let choice = match api {
            Api::Chat => {
                let delta = match (piece, finish) {
                    (_, Some(_)) => json!({}),
                    (None, None) => json!({"role": "assistant", "content": ""}),
                    (Some(text), None) => json!({"content": text}),
                };
                json!({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null})
            }
            Api::Completion => {
                json!({"index": 0, "text": piece.unwrap_or(""), "finish_reason": finish, "logprobs": null})
            }
        };
        json!({"id": self.id, "object": self.object(api, true), "created": self.created, "model": self.model,
            "choices": [choice]})
    }
}

fn sse(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// Handles a completion request body.
pub(crate) async fn handle(state: Arc<SimState>, api: Api, body: Bytes) -> Result<Response<SimBody>, ApiError> {
    let request: Request = serde_json::from_slice(&body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let prompt = match api {
        Api::Chat if request.messages.is_empty() => {
            return Err(ApiError::InvalidRequest("`messages` must not be empty".into()));
        }
        Api::Chat => request
            .messages
            .iter()
            .map(|m| text_of(&m.content))
            .collect::<Vec<_>>()
            .join(" "),
        Api::Completion => text_of(&request.prompt),
    };
    state.loaded_model(&request.model)?;
    let fault = state.take_fault();
    if fault == FaultMode::BeforeFirstToken {
        return Err(ApiError::InjectedFailure);
    }
    let max_tokens = request
        .max_completion_tokens
        .or(request.max_tokens)
        .unwrap_or(state.config.default_max_tokens);
    let include_usage = request.stream_options.is_some_and(|o| o.include_usage);

    let slot = state.acquire_slot().await;
    let tokens = text::tokenize(&prompt);
    let hit = state.kv.lock().admit(&request.model, &tokens);
    let prefill = Duration::from_micros((tokens.len() - hit) as u64 * state.config.prefill_per_token_us);
    tokio::time::sleep(prefill).await;
    state
        .prompt_tokens_total
        .fetch_add(tokens.len() as u64, Ordering::Relaxed);

    let words = text::generate(state.config.seed, &request.model, &tokens, max_tokens);
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let id_hash = fastrand::Rng::with_seed(state.config.seed ^ created).u64(..);
    let outcome = Outcome {
        id: format!("{}-{id_hash:016x}", if api == Api::Chat { "chatcmpl" } else { "cmpl" }),
        created,
        model: request.model,
        prompt_tokens: tokens.len(),
        cached_tokens: hit,
        words,
        max_tokens,
    };

    let content_type = if request.stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    let response = Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .header("x-sim-prefix-hit-tokens", hit)
        .header("x-sim-prompt-tokens", tokens.len())
        .header("x-sim-prefill-ms", format!("{:.3}", prefill.as_secs_f64() * 1000.0));
    let cut = fault == FaultMode::MidStream;
    let body = if request.stream {
        let (tx, body) = channel();
        tokio::spawn(stream(state, slot, api, outcome, include_usage, cut, tx));
        body
    } else {
        let per_token = Duration::from_millis(state.config.per_token_ms);
        tokio::time::sleep(per_token * outcome.words.len() as u32).await;
        let generated = outcome.words.len() as u64;
        state.generation_tokens_total.fetch_add(generated, Ordering::Relaxed);
        drop(slot);
        let json = Bytes::from(outcome.complete(api).to_string());
        if cut { cut_body(json) } else { full(json) }
    };
    Ok(response.body(body).expect("valid response parts"))
}

/// A body that sends the first half of `json`, lets it reach the client, then fails.
fn cut_body(json: Bytes) -> SimBody {
    let (tx, body) = channel();
    tokio::spawn(async move {
        if tx.send(Ok(json.slice(..json.len() / 2))).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(Err("simulated mid-stream failure".into())).await;
        }
    });
    body
}

/// Emits the SSE stream, one token per `per_token_ms`, holding the slot until the end.
async fn stream(
    state: Arc<SimState>,
    slot: Slot,
    api: Api,
    outcome: Outcome,
    include_usage: bool,
    cut: bool,
    tx: crate::body::BodySender,
) {
    let per_token = Duration::from_millis(state.config.per_token_ms);
    if api == Api::Chat && tx.send(Ok(sse(&outcome.chunk(api, None, None)))).await.is_err() {
        return;
    }
    let cut_at = 2.min(outcome.words.len() - 1);
    for (i, word) in outcome.words.iter().enumerate() {
        tokio::time::sleep(per_token).await;
        if cut && i == cut_at {
            let _ = tx.send(Err("simulated mid-stream failure".into())).await;
            return;
        }
        state.generation_tokens_total.fetch_add(1, Ordering::Relaxed);
        let piece = if i == 0 { (*word).to_owned() } else { format!(" {word}") };
        if tx.send(Ok(sse(&outcome.chunk(api, Some(&piece), None)))).await.is_err() {
            return;
        }
    }
    drop(slot);
    let mut tail = vec![sse(&outcome.chunk(api, None, Some(outcome.finish_reason())))];
    if include_usage {
        let mut usage_chunk = outcome.chunk(api, None, None);
        usage_chunk["choices"] = json!([]);
        usage_chunk["usage"] = outcome.usage(outcome.words.len());
        tail.push(sse(&usage_chunk));
    }
    tail.push(Bytes::from_static(b"data: [DONE]\n\n"));
    for bytes in tail {
        if tx.send(Ok(bytes)).await.is_err() {
            return;
        }
    }
}
