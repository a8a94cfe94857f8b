//! Loops forever on `/loop`, sleeps for a minute on `/sleep` (a WASI wait that uses no CPU);
//! otherwise marks the request `x-spin: ok`.

use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestExt, RequestHead, RequestVerdict};

struct SpinLoop;

impl Plugin for SpinLoop {
    const NAME: &'static str = "spin-loop";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(_config: Config) -> Result<Self, String> {
        Ok(SpinLoop)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        if req.path_only() == "/sleep" {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
        if req.path_only() == "/loop" {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        Edits::new().set("x-spin", "ok").into()
    }
}

sluice_plugin_sdk::export_plugin!(SpinLoop);
