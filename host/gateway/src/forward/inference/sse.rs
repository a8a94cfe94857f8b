//! Server-sent events framing: where an event ends, what its `data` holds, and reading a
//! streaming response up to its first event (so the host can still retry another backend
//! when one fails before the first token).

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;

use super::usage::error_message;
use sluice_core::body::{BoxError, ProxyBody};

/// Why [`first_event`] gave up on a streaming response.
#[derive(Debug, thiserror::Error)]
pub enum FirstEventError {
    /// The backend's body failed before a complete event.
    #[error("the inference backend's stream failed before its first event: {0}")]
    Body(#[source] BoxError),
    /// The body ended before a complete event; what it sent is kept.
    #[error("the inference backend's stream ended before its first event")]
    Ended(Bytes),
    /// The first event is an error payload (`data: {"error": ...}`); the bytes read are kept
    /// so they can still be relayed when no other backend is left.
    #[error("the inference backend answered with an error event: {message}")]
    ErrorEvent {
        /// The error's message.
        message: String,
        /// Everything read.
        bytes: Bytes,
    },
    /// More than the limit arrived without a complete event.
    #[error("the inference backend sent more than {0} bytes without a complete event")]
    TooLarge(usize),
}

/// The index just past the blank line ending the first complete event in `buf[from..]`
/// (`\n\n`, `\r\n\r\n` or a mix of the two); `None` when no event is complete yet.
pub(crate) fn event_end(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(offset) = buf[i..].iter().position(|&b| b == b'\n') {
        let lf = i + offset;
        match buf.get(lf + 1) {
            Some(b'\n') => return Some(lf + 2),
            Some(b'\r') if buf.get(lf + 2) == Some(&b'\n') => return Some(lf + 3),
            _ => i = lf + 1,
        }
    }
    None
}

/// The payload of an event's `data:` fields, joined with `\n` as the SSE spec says; `None`
/// for an event without data (a comment, a keep-alive).
pub(crate) fn event_data(event: &[u8]) -> Option<Vec<u8>> {
    let mut data: Option<Vec<u8>> = None;
    for line in event.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(value) = line.strip_prefix(b"data:") else {
            continue;
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match &mut data {
            Some(joined) => {
                joined.push(b'\n');
                joined.extend_from_slice(value);
            }
            None => data = Some(value.to_vec()),
        }
    }
    data
}

/// Reads a streaming response until it holds at least one complete event carrying data
/// (comment-only keep-alives do not count) and returns every byte read so far, which may
/// be more than one event. Fails when the body fails or ends first, when that first event
/// is an error payload, or when more than `limit` bytes arrive without one. The caller puts
/// a timeout around it.
pub async fn first_event(body: &mut ProxyBody, limit: usize) -> Result<Bytes, FirstEventError> {
    let mut buf = BytesMut::new();
    // Where the next event starts.
    let mut event_start = 0;
    loop {
        while let Some(end) = event_end(&buf, event_start) {
            let event = &buf[event_start..end];
            event_start = end;
            let Some(data) = event_data(event) else {
                continue;
            };
            let payload = serde_json::from_slice::<serde_json::Value>(&data).ok();
            if let Some(message) = payload.as_ref().and_then(error_message) {
                return Err(FirstEventError::ErrorEvent {
                    message,
                    bytes: buf.freeze(),
                });
            }
            return Ok(buf.freeze());
        }
        if buf.len() > limit {
            return Err(FirstEventError::TooLarge(limit));
        }
        match body.frame().await {
            None => return Err(FirstEventError::Ended(buf.freeze())),
            Some(Err(e)) => return Err(FirstEventError::Body(e)),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    buf.extend_from_slice(data);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_end_at_a_blank_line_of_either_style() {
        assert_eq!(event_end(b"data: a\n\ndata: b\n\n", 0), Some(9));
        assert_eq!(event_end(b"data: a\r\n\r\nx", 0), Some(11));
        assert_eq!(event_end(b"data: a\r\n\n", 0), Some(10));
        assert_eq!(event_end(b"data: a\n\r\n", 0), Some(10));
        assert_eq!(event_end(b"data: a\r\n\r", 0), None);
        assert_eq!(event_end(b"data: a\n", 0), None);
        assert_eq!(event_end(b"data: a\n\ndata: b\n\n", 9), Some(18));
    }

    #[test]
    fn data_fields_are_joined() {
        assert_eq!(event_data(b"data: {\"a\":1}\n\n").unwrap(), b"{\"a\":1}");
        assert_eq!(event_data(b"event: x\r\ndata:1\r\ndata: 2\r\n\r\n").unwrap(), b"1\n2");
        assert_eq!(event_data(b": keep-alive\n\n"), None);
    }
}
