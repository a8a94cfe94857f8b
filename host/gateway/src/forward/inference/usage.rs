//! What the host learns from an inference response on its way to the client: the backend's
//! token counts, how much text it generated and when the first of it came.

use std::time::Instant;

use serde_json::Value;

/// What an inference response told the host, filled in while it streams through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageTap {
    /// `usage.prompt_tokens` from the backend; `None` when it sent no usage.
    pub prompt_tokens: Option<u32>,
    /// `usage.completion_tokens` from the backend; `None` when it sent no usage.
    pub completion_tokens: Option<u32>,
    /// Characters of generated text: chat `choices[].delta.content` (and
    /// `delta.reasoning_content`) or `choices[].message.content`, completions `choices[].text`.
    pub response_chars: u64,
    /// When the first generated text passed: the first data event carrying some for a
    /// stream, the end of the body for a complete JSON response. `None`: no text came.
    pub first_token_at: Option<Instant>,
    /// What went wrong: an error payload from the backend, or the backend's body failing.
    pub error: Option<String>,
}

impl UsageTap {
    /// Takes what one response object (a stream chunk or a whole completion) carries: usage,
    /// generated text (its arrival marked `now` when it is the first) and an error payload.
    pub fn observe(&mut self, chunk: &Value, now: Instant) {
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            if let Some(n) = count(usage, "prompt_tokens") {
                self.prompt_tokens = Some(n);
            }
            if let Some(n) = count(usage, "completion_tokens") {
                self.completion_tokens = Some(n);
            }
        }
        let chars = generated_chars(chunk);
        if chars > 0 {
            self.response_chars += chars;
            self.first_token_at.get_or_insert(now);
        }
        if let Some(message) = error_message(chunk) {
            self.error = Some(message);
        }
    }
}

fn count(usage: &Value, key: &str) -> Option<u32> {
    usage.get(key)?.as_u64().map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Characters of generated text in a chunk's or completion's `choices`.
pub(crate) fn generated_chars(chunk: &Value) -> u64 {
    let Some(choices) = chunk.get("choices").and_then(Value::as_array) else {
        return 0;
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, |s| s.chars().count() as u64);
    choices
        .iter()
        .map(|choice| {
            let delta = choice.get("delta");
            let message = choice.get("message");
            text(delta.and_then(|d| d.get("content")))
                + text(delta.and_then(|d| d.get("reasoning_content")))
                + text(message.and_then(|m| m.get("content")))
                + text(choice.get("text"))
        })
        .sum()
}

/// The message of an error payload (`{"error": {"message": ...}}` or `{"error": "..."}`);
/// `None` when `chunk` is not one.
pub(crate) fn error_message(chunk: &Value) -> Option<String> {
    let error = chunk.get("error").filter(|e| !e.is_null())?;
    Some(match error {
        Value::String(s) => s.clone(),
        other => match other.get("message").and_then(Value::as_str) {
            Some(message) => message.to_owned(),
            None => other.to_string(),
        },
    })
}

/// Whether a stream chunk is the usage-only one a backend sends when asked for usage: no
/// choices, a usage object.
pub(crate) fn is_usage_only(chunk: &Value) -> bool {
    chunk
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|c| c.is_empty())
        && chunk.get("usage").is_some_and(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_text_of_every_response_shape() {
        let now = Instant::now();
        let mut tap = UsageTap::default();
        tap.observe(&json!({"choices":[{"delta":{"role":"assistant"}}]}), now);
        assert_eq!(tap.first_token_at, None, "a role-only chunk carries no text");
        tap.observe(&json!({"choices":[{"delta":{"content":"héllo"}}]}), now);
        tap.observe(&json!({"choices":[{"text":"ab"}]}), now);
        tap.observe(&json!({"choices":[{"message":{"content":"xyz"}}]}), now);
        assert_eq!(tap.response_chars, 10);
        assert_eq!(tap.first_token_at, Some(now));
    }

    #[test]
    fn takes_usage_and_errors() {
        let mut tap = UsageTap::default();
        tap.observe(&json!({"usage":null}), Instant::now());
        assert_eq!(tap.prompt_tokens, None);
        tap.observe(
            &json!({"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}),
            Instant::now(),
        );
        assert_eq!((tap.prompt_tokens, tap.completion_tokens), (Some(7), Some(3)));
        tap.observe(&json!({"error":{"message":"out of memory"}}), Instant::now());
        assert_eq!(tap.error.as_deref(), Some("out of memory"));
        assert_eq!(error_message(&json!({"error":"plain"})).as_deref(), Some("plain"));
        assert_eq!(error_message(&json!({"error":null})), None);
    }

    #[test]
    fn usage_only_chunks() {
        assert!(is_usage_only(&json!({"choices":[],"usage":{"prompt_tokens":1}})));
        assert!(!is_usage_only(&json!({"choices":[],"usage":null})));
        assert!(!is_usage_only(&json!({"choices":[{"delta":{}}],"usage":{}})));
        assert!(!is_usage_only(&json!({"usage":{}})));
    }
}
