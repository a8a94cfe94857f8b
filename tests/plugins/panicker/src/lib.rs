//! Panics on `/panic`; otherwise marks the request `x-panicker: ok`.

use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestExt, RequestHead, RequestVerdict};

struct Panicker;

impl Plugin for Panicker {
    const NAME: &'static str = "panicker";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(_config: Config) -> Result<Self, String> {
        Ok(Panicker)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        if req.path_only() == "/panic" {
            panic!("the panicker panicked on purpose");
        }
        Edits::new().set("x-panicker", "ok").into()
    }
}

sluice_plugin_sdk::export_plugin!(Panicker);
