//! Calls a capability named by the path (`/kv`, `/cache`, `/redis`, `/postgres`, `/http`,
//! `/gpu`) and answers 200 with the host's error text (or `granted`), so a test can read what
//! the host said. Other paths pass with `x-ungranted: ok`.

use sluice_plugin_sdk::{
    Config, Edits, Hook, HostError, Plugin, RequestExt, RequestHead, RequestVerdict, Response, cache, gpu, http_client,
    kv, postgres, redis,
};

struct Ungranted;

fn describe(result: Result<(), HostError>) -> String {
    match result {
        Ok(()) => "granted".into(),
        Err(HostError::Denied(m)) => format!("denied: {m}"),
        Err(HostError::NotConfigured(m)) => format!("not-configured: {m}"),
        Err(other) => format!("other: {other:?}"),
    }
}

impl Plugin for Ungranted {
    const NAME: &'static str = "ungranted";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(_config: Config) -> Result<Self, String> {
        Ok(Ungranted)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let outcome = match req.path_only() {
            "/kv" => kv::set("k", b"v", None),
            "/cache" => cache::invalidate("k").map(drop),
            "/redis" => redis::command("GET", &["k".to_string()], &[]).map(drop),
            "/postgres" => postgres::query("select 1", &[]).map(drop),
            "/http" => http_client::send(&http_client::Request {
                method: "GET".into(),
                url: "http://127.0.0.1:1/".into(),
                headers: vec![],
                body: vec![],
                timeout_ms: None,
            })
            .map(drop),
            "/gpu" => gpu::release(
                1,
                gpu::Usage {
                    prompt_tokens: 0,
                    completion_tokens: 0,
                    success: true,
                },
            ),
            _ => return Edits::new().set("x-ungranted", "ok").into(),
        };
        Response::new(200).body(describe(outcome)).into()
    }
}

sluice_plugin_sdk::export_plugin!(Ungranted);
