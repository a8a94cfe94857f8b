//! The client's side of a streaming inference response: events pass through as soon as each
//! is complete, the usage tap reads them on the way, and usage the gateway asked for on the
//! client's behalf is taken out again.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use serde_json::Value;

use super::json_text;
use super::sse::{event_data, event_end};
use super::usage::{UsageTap, is_usage_only};
use sluice_core::body::{BoxError, ProxyBody};

/// Passes a streaming (SSE) response to the client unbuffered: `already_read` first (what
/// [`super::first_event`] read), then `rest`; each complete event goes out as soon as it is
/// complete, only a partial trailing one is held back. Every `data:` event's JSON fills the
/// [`UsageTap`]. With `injected_usage` (the gateway asked for usage, the client did not) the
/// usage-only chunk is dropped and `"usage":null` members are removed, so the client gets
/// exactly what it asked for; otherwise bytes pass unchanged. When `rest` fails mid-stream
/// the client's stream ends with a well-formed error event and `data: [DONE]`, without a
/// body error. `on_end(tap, completed)` runs once: at the end (`true`) or when the body is
/// dropped before it (a disconnect, `false`).
pub fn sse_body(
    already_read: Bytes,
    rest: ProxyBody,
    injected_usage: bool,
    on_end: impl FnOnce(UsageTap, bool) + Send + 'static,
) -> ProxyBody {
    let mut body = SseBody {
        inner: rest,
        pending: BytesMut::from(&already_read[..]),
        scanned: 0,
        ready: None,
        state: State::Streaming,
        injected_usage,
        tap: UsageTap::default(),
        on_end: Mutex::new(Some(Box::new(on_end))),
    };
    body.ready = body.take_events(false);
    body.boxed()
}

/// The error event a client gets when the backend fails mid-stream.
pub(crate) fn mid_stream_error(reason: &str) -> Bytes {
    let message = format!("the inference backend failed mid-stream: {reason}");
    let message = serde_json::to_string(&message).unwrap_or_else(|_| "\"\"".to_owned());
    Bytes::from(format!(
        "data: {{\"error\":{{\"message\":{message},\"type\":\"server_error\",\"code\":\"backend_failed\"}}}}\n\ndata: [DONE]\n\n"
    ))
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Streaming,
    /// `rest` ended; what is pending goes out as the last event.
    Ended,
    /// `rest` failed; the error event goes out next.
    Failed(Bytes),
    /// Everything went out.
    Done,
}

/// The end callback. (In a `Mutex` only to make the body `Sync`, as `ProxyBody` needs: it
/// is reached through `&mut self`, never locked.)
type OnEnd = Mutex<Option<Box<dyn FnOnce(UsageTap, bool) + Send>>>;

struct SseBody {
    inner: ProxyBody,
    /// Bytes read and not yet forwarded: at most a partial event once events are taken.
    pending: BytesMut,
    /// How far `pending` was searched for an event's end.
    scanned: usize,
    /// Events taken from `already_read`, to go out first.
    ready: Option<Bytes>,
    state: State,
    injected_usage: bool,
    tap: UsageTap,
    on_end: OnEnd,
}

/// What to do with one event.
enum Edit {
    Keep,
    Drop,
    Replace(Vec<u8>),
}

impl SseBody {
    /// Takes the complete events out of `pending` (every byte of it when `all`: the stream
    /// ended), reads them for the tap and returns what goes to the client; `None` when
    /// nothing does.
    fn take_events(&mut self, all: bool) -> Option<Bytes> {
        let now = Instant::now();
        let mut edits = Vec::new();
        let mut start = 0;
        let mut from = self.scanned;
        loop {
            let end = match event_end(&self.pending, from) {
                Some(end) => end,
                None if all && start < self.pending.len() => self.pending.len(),
                None => break,
            };
            let edit = self.read_event(start..end, now);
            edits.push((start..end, edit));
            start = end;
            from = end;
        }
        // A blank line may straddle chunks: look again from a little before the end.
        self.scanned = self.pending.len().saturating_sub(start).saturating_sub(2);
        let taken = self.pending.split_to(start).freeze();
        if edits.iter().all(|(_, e)| matches!(e, Edit::Keep)) {
            return (!taken.is_empty()).then_some(taken);
        }
        let mut out = BytesMut::with_capacity(taken.len());
        for (range, edit) in edits {
            match edit {
                Edit::Keep => out.extend_from_slice(&taken[range]),
                Edit::Drop => {}
                Edit::Replace(event) => out.extend_from_slice(&event),
            }
        }
        (!out.is_empty()).then(|| out.freeze())
    }

    /// Reads one event for the tap and decides what the client gets of it.
    fn read_event(&mut self, range: std::ops::Range<usize>, now: Instant) -> Edit {
        let event = &self.pending[range];
        let Some(data) = event_data(event) else {
            return Edit::Keep;
        };
        let Ok(chunk) = serde_json::from_slice::<Value>(&data) else {
            return Edit::Keep; // `[DONE]`, or something the tap cannot read
        };
        self.tap.observe(&chunk, now);
        if !self.injected_usage {
            return Edit::Keep;
        }
        if is_usage_only(&chunk) {
            return Edit::Drop;
        }
        if chunk.get("usage").is_some_and(Value::is_null) {
            return without_null_usage(event).map_or(Edit::Keep, Edit::Replace);
        }
        Edit::Keep
    }

    fn finish(&mut self, completed: bool) {
        let on_end = self
            .on_end
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(on_end) = on_end {
            on_end(std::mem::take(&mut self.tap), completed);
        }
    }
}

/// `event` with the `"usage":null` member taken out of its (single-line) `data:` JSON;
/// `None` when the event is not shaped that way.
fn without_null_usage(event: &[u8]) -> Option<Vec<u8>> {
    let data_lines = event.split(|&b| b == b'\n').filter(|l| l.starts_with(b"data:")).count();
    if data_lines != 1 {
        return None;
    }
    let mut out = Vec::with_capacity(event.len());
    for line in event.split_inclusive(|&b| b == b'\n') {
        if let Some(value) = line.strip_prefix(b"data:") {
            let offset = line.len() - value.len();
            let members = json_text::members(value)?;
            let (index, member) = json_text::find(value, &members, "usage")?;
            if &value[member.value.clone()] != b"null" {
                return None;
            }
            out.extend_from_slice(&line[..offset]);
            out.extend(json_text::splice(value, json_text::removal(&members, index), b""));
        } else {
            out.extend_from_slice(line);
        }
    }
    Some(out)
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if let Some(ready) = this.ready.take() {
            return Poll::Ready(Some(Ok(Frame::data(ready))));
        }
        loop {
            match std::mem::replace(&mut this.state, State::Streaming) {
                State::Done => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                State::Failed(event) => {
                    this.state = State::Done;
                    this.finish(true);
                    return Poll::Ready(Some(Ok(Frame::data(event))));
                }
                State::Ended => {
                    this.state = State::Done;
                    let tail = this.take_events(true);
                    this.finish(true);
                    match tail {
                        Some(tail) => return Poll::Ready(Some(Ok(Frame::data(tail)))),
                        None => return Poll::Ready(None),
                    }
                }
                State::Streaming => {}
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => this.state = State::Ended,
                Some(Err(e)) => {
                    let reason = e.to_string();
                    this.tap.error = Some(format!("the inference backend failed mid-stream: {reason}"));
                    // A partial event is cut off: the error event starts on a boundary.
                    this.pending.clear();
                    this.scanned = 0;
                    this.state = State::Failed(mid_stream_error(&reason));
                }
                Some(Ok(frame)) => {
                    // Trailers have no place in an event stream; only data goes on.
                    if let Some(data) = frame.data_ref() {
                        this.pending.extend_from_slice(data);
                    }
                    if this.inner.is_end_stream() {
                        this.state = State::Ended;
                        continue;
                    }
                    if let Some(out) = this.take_events(false) {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done && self.ready.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

impl Drop for SseBody {
    fn drop(&mut self) {
        let completed = self.state == State::Done;
        self.finish(completed);
    }
}
