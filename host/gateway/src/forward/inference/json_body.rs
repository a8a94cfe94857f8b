//! The client's side of a complete (non-streaming) inference response: chunks pass through
//! unchanged as they come, and a copy is read for usage once the body is over.

use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;

use super::usage::UsageTap;
use sluice_core::body::{BoxError, End, Observer, ProxyBody, Tap};

/// Passes a complete JSON response to the client unchanged, chunk by chunk, keeping a copy of
/// up to `cap` bytes; at the end the copy's `usage`, generated text and error payload fill the
/// [`UsageTap`] (nothing when the body was longer than `cap` or not JSON), with
/// `first_token_at` the end of the body. `on_end(tap, completed)` runs once: at the end
/// (`true`), or when the body fails or is dropped before it (`false`; a failure also sets
/// `tap.error`, and the error goes on to the client's connection).
pub fn json_body(rest: ProxyBody, cap: usize, on_end: impl FnOnce(UsageTap, bool) + Send + 'static) -> ProxyBody {
    let copy = UsageCopy {
        copy: Vec::new(),
        cap,
        overflowed: false,
        on_end: Mutex::new(Some(Box::new(on_end))),
    };
    Tap::new(rest, copy).boxed()
}

/// The end callback. (In a `Mutex` only to make the observer `Sync`; reached through `&mut`.)
type OnEnd = Mutex<Option<Box<dyn FnOnce(UsageTap, bool) + Send>>>;

/// The observer of [`json_body`]: a bounded copy of the body, read for usage at its end.
struct UsageCopy {
    copy: Vec<u8>,
    cap: usize,
    overflowed: bool,
    on_end: OnEnd,
}

impl Observer for UsageCopy {
    fn data(&mut self, data: &Bytes) -> bool {
        if !self.overflowed {
            if self.copy.len() + data.len() > self.cap {
                self.overflowed = true;
                self.copy = Vec::new();
            } else {
                self.copy.extend_from_slice(data);
            }
        }
        false
    }

    fn end(&mut self, end: End, error: Option<&BoxError>) {
        let Some(on_end) = self.on_end.get_mut().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let completed = end == End::Complete;
        let mut tap = UsageTap::default();
        if completed
            && !self.overflowed
            && let Ok(response) = serde_json::from_slice::<serde_json::Value>(&self.copy)
        {
            tap.observe(&response, Instant::now());
        }
        if let Some(e) = error {
            tap.error = Some(format!("the inference backend's body failed: {e}"));
        }
        self.copy = Vec::new();
        on_end(tap, completed);
    }
}
