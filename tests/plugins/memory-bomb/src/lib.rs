//! Allocates 1 MiB blocks without bound on `/bomb` (and touches them so they are real);
//! otherwise marks the request `x-bomb: ok`.

use sluice_plugin_sdk::{Config, Edits, Hook, Plugin, RequestExt, RequestHead, RequestVerdict};

struct MemoryBomb {
    hoard: Vec<Vec<u8>>,
}

impl Plugin for MemoryBomb {
    const NAME: &'static str = "memory-bomb";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(_config: Config) -> Result<Self, String> {
        Ok(MemoryBomb { hoard: Vec::new() })
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        if req.path_only() == "/bomb" {
            loop {
                self.hoard.push(vec![0xA5; 1 << 20]);
            }
        }
        Edits::new().set("x-bomb", "ok").into()
    }
}

sluice_plugin_sdk::export_plugin!(MemoryBomb);
