//! Calls its configured URL (`{"url": "http://…/path"}`) through the host's `http-client` with
//! the incoming request's method and its `x-forward` header (as `x-forwarded-by-plugin`), a
//! budget from `x-timeout-ms` when given, and answers with the response's status and body (and
//! its `content-type`). When the host refused or the call failed: 502 with
//! `{"error": kind, "message": text}`.

use serde::Deserialize;
use serde_json::json;
use sluice_plugin_sdk::http_client::{self, Request};
use sluice_plugin_sdk::{Config, Hook, Plugin, RequestExt, RequestHead, RequestVerdict, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    url: String,
}

struct HttpCall(Settings);

impl Plugin for HttpCall {
    const NAME: &'static str = "http-call";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(config: Config) -> Result<Self, String> {
        config.parse().map(HttpCall)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let mut headers = Vec::new();
        if let Some(value) = req.header("x-forward") {
            headers.push(("x-forwarded-by-plugin".to_string(), value.as_bytes().to_vec()));
        }
        let request = Request {
            method: req.method.clone(),
            url: self.0.url.clone(),
            headers,
            body: Vec::new(),
            timeout_ms: req.header("x-timeout-ms").and_then(|t| t.parse().ok()),
        };
        match http_client::send(&request) {
            Ok(response) => {
                let mut answer = Response::new(response.status);
                if let Some((_, ct)) = response.headers.iter().find(|(n, _)| n == "content-type") {
                    answer = answer.header("content-type", ct);
                }
                answer.body(response.body).into()
            }
            Err(e) => Response::new(502)
                .header("content-type", "application/json")
                .body(json!({ "error": e.kind(), "message": e.message() }).to_string())
                .into(),
        }
    }
}

sluice_plugin_sdk::export_plugin!(HttpCall);
