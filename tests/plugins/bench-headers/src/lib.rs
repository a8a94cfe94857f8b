//! The benchmark plugin: one header-only hook that reads a header, makes two host calls
//! (`clock.now-ms` and `metrics.counter-add`) and sets one header. With the config
//! `{"noop": true}` it is the do-nothing hook instead: it declares that it reads no header and
//! no context entry, makes no host call and answers `continue`, so a call costs only the
//! runtime's fixed work (instance checkout, the head's fixed fields, the verdict).

use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, Reads, RequestExt, RequestHead, RequestVerdict, clock, metrics};

struct BenchHeaders {
    noop: bool,
}

impl Plugin for BenchHeaders {
    const NAME: &'static str = "bench-headers";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(config: Config) -> Result<Self, String> {
        let noop = config.as_str().replace(' ', "").contains("\"noop\":true");
        Ok(BenchHeaders { noop })
    }

    fn reads(&self) -> Option<Reads> {
        self.noop
            .then(|| Reads::new(Vec::<String>::new(), Vec::<String>::new()))
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        if self.noop {
            return RequestVerdict::Continue;
        }
        let now = clock::now_ms();
        let _ = metrics::counter_add("seen", 1);
        let agent = req.header("user-agent").unwrap_or("-").len();
        Edits::new().set("x-bench", format!("{now}:{agent}")).into()
    }
}

sluice_plugin_sdk::export_plugin!(BenchHeaders);
