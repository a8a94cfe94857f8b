//! The data plane of OpenAI-compatible inference (vLLM, llama.cpp, LocalAI): the request is
//! prepared so streaming backends report usage, the response is read on its way to the client
//! for what the host meters ([`UsageTap`]), and a stream's first event can be awaited so a
//! backend failing before the first token can be retried on another.
//!
//! - [`prepare_request`] asks a streaming backend for usage when the client did not.
//! - [`first_event`] reads a stream up to its first event (`sse.rs`).
//! - [`sse_body`] passes a stream through, unbuffered, taking injected usage out again
//!   (`sse_body.rs`); [`json_body`] passes a complete response through (`json_body.rs`).

mod json_body;
mod json_text;
mod sse;
mod sse_body;
mod usage;

use bytes::Bytes;
use serde_json::Value;

pub use json_body::json_body;
pub use sse::{FirstEventError, first_event};
pub use sse_body::sse_body;
pub use usage::UsageTap;

/// An inference request body as it goes to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The body to send: the client's, with `stream_options.include_usage` set when
    /// `injected_usage`.
    pub body: Bytes,
    /// Whether the client asked for a stream (`"stream": true`).
    pub stream: bool,
    /// Whether the gateway asked for usage on the client's behalf; its answer must then be
    /// taken out of the stream again (`sse_body`'s `injected_usage`).
    pub injected_usage: bool,
    /// The requested `model`, when the body names one.
    pub model: Option<String>,
}

/// Prepares a request body: when it asks for a stream (`"stream": true`) without
/// `stream_options.include_usage: true`, that option is set (the other `stream_options` and
/// every other member stay as they were, byte for byte) and `injected_usage` is true.
/// Anything else, including a body that is not JSON, goes unchanged (`stream` false for
/// non-JSON: the plugin chain before this answers invalid JSON).
pub fn prepare_request(body: &[u8]) -> Prepared {
    let unchanged = |stream: bool, model: Option<String>| Prepared {
        body: Bytes::copy_from_slice(body),
        stream,
        injected_usage: false,
        model,
    };
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
        return unchanged(false, None);
    };
    let model = request.get("model").and_then(Value::as_str).map(str::to_owned);
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    let has_usage = request
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    if !stream || has_usage {
        return unchanged(stream, model);
    }
    match with_usage(body) {
        Some(injected) => Prepared {
            body: Bytes::from(injected),
            stream,
            injected_usage: true,
            model,
        },
        None => unchanged(stream, model),
    }
}

/// `body` with `stream_options.include_usage` set to true, at the text level.
fn with_usage(body: &[u8]) -> Option<Vec<u8>> {
    const INCLUDE: &[u8] = b"\"include_usage\":true";
    let members = json_text::members(body)?;
    let Some((_, options)) = json_text::find(body, &members, "stream_options") else {
        // Insert as the first member; the object has at least `stream`, so a comma follows.
        let first = members.first()?;
        let member = [b"\"stream_options\":{", INCLUDE, b"},"].concat();
        return Some(json_text::splice(body, first.span.start..first.span.start, &member));
    };
    let value = &body[options.value.clone()];
    let replaced = match json_text::members(value) {
        Some(inner) => match (json_text::find(value, &inner, "include_usage"), inner.first()) {
            (Some((_, include)), _) => json_text::splice(value, include.value.clone(), b"true"),
            (None, Some(first)) => {
                json_text::splice(value, first.span.start..first.span.start, &[INCLUDE, b","].concat())
            }
            (None, None) => [b"{", INCLUDE, b"}"].concat(),
        },
        // `null`, or something else that is no object.
        None => [b"{", INCLUDE, b"}"].concat(),
    };
    Some(json_text::splice(body, options.value.clone(), &replaced))
}

#[cfg(test)]
#[path = "inference/tests.rs"]
mod tests;
