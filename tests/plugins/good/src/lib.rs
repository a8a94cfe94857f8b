//! A well-behaved plugin that exercises the host: header edits and chain context on requests,
//! edits on responses, edits to the response from the request hook (`/reply`), kv, cache,
//! metrics, log, audit, reading the body, and declaring what it reads (`/seen` reports the
//! headers and context entries its hooks were passed). Its config:
//! `{"tag": "a", "reject": false, "reads": {"headers": [...], "context": [...]}}`; `reject: true`
//! or an unknown field fails `init`, and so does a `reads` the host refuses.

use serde::Deserialize;
use sluice_plugin_sdk::{
    Config, Edits, Hook, LogEntry, Plugin, Reads, RequestExt, RequestHead, RequestVerdict, Response, ResponseHead,
    ResponseVerdict, audit, cache, clock, head, kv, log, metrics, response,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "default_tag")]
    tag: String,
    #[serde(default)]
    reject: bool,
    #[serde(default)]
    reads: Option<ReadsConfig>,
}

/// What the plugin declares it reads, when configured to.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadsConfig {
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    context: Vec<String>,
}

/// The names of `req`'s headers and context keys as the hook was passed them, comma-joined.
fn seen(req: &RequestHead) -> (String, String) {
    let headers: Vec<&str> = req.headers.iter().map(|(n, _)| n.as_str()).collect();
    let context: Vec<&str> = req.context.iter().map(|(k, _)| k.as_str()).collect();
    (headers.join(","), context.join(","))
}

fn default_tag() -> String {
    "good".into()
}

struct Good {
    tag: String,
    served: u64,
    reads: Option<Reads>,
}

impl Plugin for Good {
    const NAME: &'static str = "good";
    const HOOKS: &'static [Hook] = &[
        Hook::RequestHeaders,
        Hook::RequestBody,
        Hook::ResponseHeaders,
        Hook::Log,
    ];
    const MAX_BODY_BYTES: Option<u32> = Some(64);

    fn new(config: Config) -> Result<Self, String> {
        let settings: Settings = config.parse()?;
        if settings.reject {
            return Err("reject is true: this config is refused on purpose".into());
        }
        Ok(Good {
            tag: settings.tag,
            served: 0,
            reads: settings.reads.map(|r| Reads::new(r.headers, r.context)),
        })
    }

    fn reads(&self) -> Option<Reads> {
        self.reads.clone()
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        self.served += 1;
        let _ = metrics::counter_add("requests", 1);
        let chain = match req.header("x-chain") {
            Some(prev) => format!("{prev},{}", self.tag),
            None => self.tag.clone(),
        };
        let seen_before = req.context("seen-by").unwrap_or("").to_string();
        let mut edits = Edits::new()
            .set("x-chain", &chain)
            .set("x-served-by-instance", self.served.to_string())
            .context("seen-by", &format!("{seen_before}{}", self.tag));
        if !seen_before.is_empty() {
            edits = edits.set("x-seen-before", &seen_before);
        }
        match req.path_only() {
            "/body" => return RequestVerdict::NeedBody(16),
            "/kv" => {
                let n = kv::increment("hits", 1, None).unwrap_or(-1);
                edits = edits.set("x-kv-hits", n.to_string());
            }
            "/cache" => {
                let hit = cache::lookup("page").ok().flatten();
                if hit.is_none() {
                    let now = clock::now_ms();
                    let stored = cache::CachedResponse {
                        status: 200,
                        headers: vec![],
                        body: b"cached".to_vec(),
                        stored_at_ms: now,
                        expires_at_ms: now + 60_000,
                        tags: vec!["t".into()],
                    };
                    let _ = cache::insert("page", &stored);
                }
                edits = edits.set("x-cache-hit", if hit.is_some() { "1" } else { "0" });
            }
            "/audit" => {
                // The details the request asks for (`x-audit-details`), else a reason code.
                let details = req.header("x-audit-details").unwrap_or(r#"{"reason":"test"}"#);
                let event = audit::Event {
                    action: "test.decision".into(),
                    outcome: "allow".into(),
                    actor: Some(format!("key-{}", self.tag)),
                    subject: None,
                    details: details.to_string(),
                };
                let answer = match audit::emit(&event) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => format!("{e:?}"),
                };
                edits = edits.set("x-audit", answer);
            }
            "/reply" => {
                // Appends its tag to the response's `x-reply`; an invalid name is refused.
                let ok = response::edit(&Edits::new().append("x-reply", &self.tag).build());
                let bad = response::edit(&Edits::new().set("bad name", "x").build());
                let kind = |r: Result<(), sluice_plugin_sdk::HostError>| r.map_or_else(|e| e.kind(), |()| "ok");
                let calls = format!("{},{}", kind(ok), kind(bad));
                let _ = response::edit(&Edits::new().append("x-reply-calls", calls).build());
            }
            "/seen" => {
                let (headers, context) = seen(req);
                let late = head::reads(&[], &[]).map_or_else(|e| e.kind(), |()| "ok");
                edits = edits
                    .set(&format!("x-seen-headers-{}", self.tag), headers)
                    .set(&format!("x-seen-context-{}", self.tag), context)
                    .set(&format!("x-reads-from-hook-{}", self.tag), late);
            }
            "/respond" => {
                log::write(log::Level::Info, "answering locally");
                return Response::json(418, format!("{{\"tag\":\"{}\"}}", self.tag)).into();
            }
            _ => {}
        }
        edits.into()
    }

    fn on_request_body(&mut self, _req: &RequestHead, body: &[u8]) -> RequestVerdict {
        Edits::new().set("x-body-len", body.len().to_string()).into()
    }

    fn on_response_headers(&mut self, req: &RequestHead, resp: &ResponseHead) -> ResponseVerdict {
        let mut edits = Edits::new()
            .append("x-resp-chain", &self.tag)
            .set("x-upstream-status", resp.status.to_string());
        if req.path_only() == "/seen" {
            edits = edits.set(&format!("x-seen-in-response-hook-{}", self.tag), seen(req).0);
        }
        if req.path_only() == "/reply" {
            // How many `x-reply` values this hook sees, and what `response.edit` says here.
            let seen = resp.headers.iter().filter(|(n, _)| n == "x-reply").count();
            let from_here = response::edit(&Edits::new().set("x-late", "1").build());
            edits = edits
                .set(&format!("x-reply-seen-by-{}", self.tag), seen.to_string())
                .set(
                    "x-reply-from-response-hook",
                    from_here.map_or_else(|e| e.kind(), |()| "ok"),
                );
        }
        edits.into()
    }

    /// Records what it was told, for the tests to read in `/metrics`: `log_status_NNN` counts
    /// entries by status, `log_bytes_received` and `log_bytes_sent` sum the body bytes, and
    /// `log_errors` counts entries with an error.
    fn on_log(&mut self, entry: &LogEntry) {
        let _ = metrics::histogram_record("duration_us", entry.duration_us as f64);
        let _ = metrics::counter_add(&format!("log_status_{}", entry.status), 1);
        let _ = metrics::counter_add("log_bytes_received", entry.bytes_received);
        let _ = metrics::counter_add("log_bytes_sent", entry.bytes_sent);
        if entry.error.is_some() {
            let _ = metrics::counter_add("log_errors", 1);
        }
    }
}

sluice_plugin_sdk::export_plugin!(Good);
