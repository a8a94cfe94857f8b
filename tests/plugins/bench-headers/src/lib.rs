//! The benchmark plugin: one header-only hook that reads a header, makes two host calls
//! (`clock.now-ms` and `metrics.counter-add`) and sets one header.

use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestExt, RequestHead, RequestVerdict, clock, metrics};

struct BenchHeaders;

impl Plugin for BenchHeaders {
    const NAME: &'static str = "bench-headers";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(_config: Config) -> Result<Self, String> {
        Ok(BenchHeaders)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let now = clock::now_ms();
        let _ = metrics::counter_add("seen", 1);
        let agent = req.header("user-agent").unwrap_or("-").len();
        Edits::new().set("x-bench", format!("{now}:{agent}")).into()
    }
}

sluice_plugin_sdk::export_plugin!(BenchHeaders);
