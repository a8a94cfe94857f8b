//! A plugin built against the frozen copy of `sluice:plugin@0.1.0` in `tests/compat/wit-0.1.0`,
//! without the SDK (which follows `wit/`): if the host's WIT changes in a way a 0.1 plugin
//! cannot link against, this component stops loading. It uses a host import of each common
//! kind and answers its request hook with an edit.

wit_bindgen::generate!({
    world: "plugin",
    path: "../../compat/wit-0.1.0",
});

use sluice::plugin::types::{HeaderEdits, Hook};

struct Frozen;

impl Guest for Frozen {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "frozen-0-1".into(),
            version: "0.1.0".into(),
            hooks: vec![Hook::RequestHeaders, Hook::Log],
            max_body_bytes: None,
        }
    }

    fn init(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn on_request_headers(_req: RequestHead) -> RequestVerdict {
        let now = sluice::plugin::clock::now_ms();
        sluice::plugin::log::write(sluice::plugin::log::Level::Debug, "frozen-0-1 saw a request");
        RequestVerdict::Edit(HeaderEdits {
            set: vec![
                ("x-frozen-wit".into(), b"0.1.0".to_vec()),
                ("x-frozen-clock".into(), (now > 0).to_string().into_bytes()),
            ],
            append: vec![],
            remove: vec![],
            context: vec![],
        })
    }

    fn on_request_body(_req: RequestHead, _body: Vec<u8>) -> RequestVerdict {
        RequestVerdict::Continue
    }

    fn on_response_headers(_req: RequestHead, _resp: ResponseHead) -> ResponseVerdict {
        ResponseVerdict::Continue
    }

    fn on_log(_entry: LogEntry) {}

    fn on_message(_channel: String, _message: Vec<u8>) {}

    fn on_tick() {}
}

export!(Frozen);
