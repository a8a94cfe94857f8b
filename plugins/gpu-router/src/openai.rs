//! OpenAI-compatible request bodies: which endpoint a request is for, and what its body tells
//! the scheduler (the model, an estimate of the prompt's tokens, the generation budget and a
//! hash of the prompt's prefix for KV-cache affinity).

use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::settings::Settings;

/// The inference endpoints the plugin routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl Endpoint {
    /// The endpoint of a `POST` to `path` (without the query), if it is one.
    pub fn of(path: &str) -> Option<Endpoint> {
        match path {
            "/v1/chat/completions" => Some(Endpoint::Chat),
            "/v1/completions" => Some(Endpoint::Completions),
            "/v1/embeddings" => Some(Endpoint::Embeddings),
            _ => None,
        }
    }
}

/// What a request body tells the scheduler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inference {
    /// The `model` field.
    pub model: String,
    /// Estimated prompt tokens: the prompt text's characters divided by `chars_per_token`
    /// (rounded up), plus any prompt given as token ids.
    pub prompt_tokens: u32,
    /// `max_completion_tokens`, else `max_tokens`, else the configured default, times `n`
    /// when it asks for several choices; 0 for embeddings.
    pub max_tokens: u32,
    /// FNV-1a of the prompt text's first `prefix_chars` characters; none for embeddings and
    /// for prompts shorter than `min_prefix_chars`.
    pub prefix_hash: Option<u64>,
}

/// The prompt as text, plus the tokens given as ids.
#[derive(Debug, Default, PartialEq, Eq)]
struct Prompt {
    text: String,
    token_ids: u64,
}

/// Parses the body of a request to `endpoint`.
pub fn parse(endpoint: Endpoint, body: &[u8], settings: &Settings) -> Result<Inference, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            "invalid_json",
            None,
            format!("The request body is not valid JSON: {e}."),
        )
    })?;
    let Value::Object(obj) = value else {
        return Err(ApiError::bad_request(
            "invalid_json",
            None,
            "The request body must be a JSON object.",
        ));
    };
    let Some(Value::String(model)) = obj.get("model") else {
        return Err(ApiError::bad_request(
            "missing_model",
            Some("model"),
            "The request must name a `model` as a string.",
        ));
    };
    let prompt = match endpoint {
        Endpoint::Chat => chat_prompt(obj.get("messages"))?,
        Endpoint::Completions => texts_or_tokens(obj.get("prompt"), "prompt")?,
        Endpoint::Embeddings => texts_or_tokens(obj.get("input"), "input")?,
    };
    let chars = prompt.text.chars().count() as u64;
    let estimate = chars.div_ceil(u64::from(settings.chars_per_token)) + prompt.token_ids;
    let (max_tokens, prefix_hash) = match endpoint {
        Endpoint::Embeddings => (0, None),
        _ => (
            max_tokens(&obj, settings)?,
            prefix_hash(&prompt.text, settings.prefix_chars, settings.min_prefix_chars),
        ),
    };
    Ok(Inference {
        model: model.clone(),
        prompt_tokens: saturate(estimate),
        max_tokens,
        prefix_hash,
    })
}

/// The chat prompt: each message as `role: content` on its own line, so that two
/// conversations share a prefix only when their leading messages (the system prompt first)
/// are the same. Content is a string, `null`, or a list of parts whose `text` parts count.
fn chat_prompt(messages: Option<&Value>) -> Result<Prompt, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_request",
            Some("messages"),
            "`messages` must be a list of message objects.",
        )
    };
    let messages = match messages {
        None => return Ok(Prompt::default()),
        Some(Value::Array(m)) => m,
        Some(_) => return Err(bad()),
    };
    let mut text = String::new();
    for message in messages {
        let Value::Object(m) = message else {
            return Err(bad());
        };
        text.push_str(m.get("role").and_then(Value::as_str).unwrap_or(""));
        text.push_str(": ");
        match m.get("content") {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => text.push_str(s),
            Some(Value::Array(parts)) => {
                for part in parts {
                    if part.get("type").and_then(Value::as_str) == Some("text")
                        && let Some(t) = part.get("text").and_then(Value::as_str)
                    {
                        text.push_str(t);
                    }
                }
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "invalid_request",
                    Some("messages"),
                    "A message's `content` must be a string or a list of content parts.",
                ));
            }
        }
        text.push('\n');
    }
    Ok(Prompt { text, token_ids: 0 })
}

/// A completions `prompt` or embeddings `input`: a string, a list of strings, a list of token
/// ids, or a list of lists of token ids. Strings are joined by newlines.
fn texts_or_tokens(value: Option<&Value>, param: &str) -> Result<Prompt, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_request",
            Some(param),
            format!("`{param}` must be a string, a list of strings or a list of token ids."),
        )
    };
    let mut prompt = Prompt::default();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => prompt.text.push_str(s),
        Some(Value::Array(items)) => {
            for item in items {
                match item {
                    Value::String(s) => {
                        if !prompt.text.is_empty() {
                            prompt.text.push('\n');
                        }
                        prompt.text.push_str(s);
                    }
                    Value::Number(n) if n.is_u64() => prompt.token_ids += 1,
                    Value::Array(ids) if ids.iter().all(Value::is_u64) => prompt.token_ids += ids.len() as u64,
                    _ => return Err(bad()),
                }
            }
        }
        Some(_) => return Err(bad()),
    }
    Ok(prompt)
}

/// The generation budget: `max_completion_tokens`, else `max_tokens`, else the default; times
/// `n` (choices) when given.
fn max_tokens(obj: &Map<String, Value>, settings: &Settings) -> Result<u32, ApiError> {
    let mut budget = u64::from(settings.default_max_tokens);
    for field in ["max_completion_tokens", "max_tokens"] {
        match obj.get(field) {
            None | Some(Value::Null) => continue,
            Some(v) => {
                budget = v.as_u64().ok_or_else(|| whole_number(field))?;
                break;
            }
        }
    }
    let choices = match obj.get("n") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_u64().filter(|n| *n >= 1).ok_or_else(|| whole_number("n"))?,
    };
    Ok(saturate(budget.saturating_mul(choices)))
}

fn whole_number(field: &str) -> ApiError {
    ApiError::bad_request(
        "invalid_request",
        Some(field),
        format!("`{field}` must be a non-negative whole number."),
    )
}

fn saturate(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// 64-bit FNV-1a over the UTF-8 of the first `prefix_chars` characters of `text`; none when
/// `text` has fewer than `min_chars` characters.
pub fn prefix_hash(text: &str, prefix_chars: u32, min_chars: u32) -> Option<u64> {
    let end = text
        .char_indices()
        .nth(prefix_chars as usize)
        .map_or(text.len(), |(i, _)| i);
    if text.chars().take(min_chars as usize).count() < min_chars as usize {
        return None;
    }
    Some(fnv1a64(&text.as_bytes()[..end]))
}

/// The 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, &b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

#[cfg(test)]
#[path = "openai_tests.rs"]
mod tests;
