//! Returns a broken verdict chosen by the path: `/bad-name` (a header name with a space),
//! `/bad-value` (a value with a newline), `/many` (10,000 headers), `/huge` (a 1 MiB value),
//! `/bad-status` (status 42). Other paths pass with `x-bad-verdict: ok`.

use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestExt, RequestHead, RequestVerdict, Response};

struct BadVerdict;

impl Plugin for BadVerdict {
    const NAME: &'static str = "bad-verdict";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(_config: Config) -> Result<Self, String> {
        Ok(BadVerdict)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        match req.path_only() {
            "/bad-name" => Edits::new().set("bad name", "v").into(),
            "/bad-value" => Edits::new().set("x-ok", "line\r\nbreak: injected").into(),
            "/many" => (0..10_000)
                .fold(Edits::new(), |e, i| e.append(&format!("x-h{i}"), "v"))
                .into(),
            "/huge" => Edits::new().set("x-huge", vec![b'a'; 1 << 20]).into(),
            "/bad-status" => Response::new(42).into(),
            _ => Edits::new().set("x-bad-verdict", "ok").into(),
        }
    }
}

sluice_plugin_sdk::export_plugin!(BadVerdict);
