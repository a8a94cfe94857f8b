//! `sluice plugin test FILE.wasm --request FILE [--response FILE] [--config JSON]`: runs a
//! plugin's hooks offline against a recorded request (and optionally a response) and prints
//! each verdict — a test kit for authors that needs no gateway, no Postgres and no Redis. The
//! plugin gets the in-memory capabilities (`kv`, `cache`, rate limits, crypto, clock, log,
//! metrics); Postgres, Redis, outbound HTTP and the GPU scheduler answer `not-configured`.
//!
//! The request file is JSON: `{"method": "POST", "path": "/orders?x=1", "headers":
//! {"x-signature": "..."}, "body": "text"}` (or `"body_base64"`; `authority`, `client_ip`
//! optional). The response file: `{"status": 200, "headers": {...}}`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine as _;
use serde::Deserialize;
use sluice_backends::Backends;
use sluice_bindings::{HeaderEdits, Hook, LocalResponse, LogEntry, RequestHead, ResponseHead};
use sluice_bindings::{RequestVerdict, ResponseVerdict};
use sluice_config::GatewayConfig;
use sluice_runtime::{Runtime, RuntimeError};

/// A recorded request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedRequest {
    #[serde(default = "default_method")]
    method: String,
    path: String,
    #[serde(default)]
    authority: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_base64: Option<String>,
    #[serde(default = "default_ip")]
    client_ip: String,
}

/// A recorded response head.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordedResponse {
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_ip() -> String {
    "127.0.0.1".into()
}

fn headers(map: &BTreeMap<String, String>) -> Vec<(String, Vec<u8>)> {
    map.iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("the {what} file {} is not the JSON expected", path.display()))
}

/// A gateway config with one route running the plugin in `file` with `config`, granted the
/// capabilities that work offline.
fn offline_config(file: &Path, config: serde_json::Value) -> anyhow::Result<GatewayConfig> {
    let file = std::fs::canonicalize(file).with_context(|| format!("cannot read {}", file.display()))?;
    let text = format!(
        "[runtime]\ncache_dir = \"\"\n[plugins.under-test]\nmodule = {:?}\ngrants = {{ kv = true, cache = true, ratelimit = true }}\n\
         [[routes]]\nname = \"test\"\nplugins = [{{ plugin = \"under-test\" }}]\n",
        file.display().to_string()
    );
    let mut parsed = GatewayConfig::parse(&text, Path::new("plugin-test.toml"), std::env::current_dir()?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    parsed.routes[0].plugins[0].config = Some(toml::Value::try_from(config).context("the --config JSON")?);
    Ok(parsed)
}

/// Runs the test and prints what each hook answered.
pub async fn run(file: &Path, request: &Path, response: Option<&Path>, config: &str) -> anyhow::Result<()> {
    let recorded: RecordedRequest = read_json(request, "request")?;
    let body = match (&recorded.body, &recorded.body_base64) {
        (Some(_), Some(_)) => bail!("give `body` or `body_base64`, not both"),
        (Some(text), None) => text.as_bytes().to_vec(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .context("body_base64")?,
        (None, None) => Vec::new(),
    };
    let response: Option<RecordedResponse> = response.map(|p| read_json(p, "response")).transpose()?;
    let config: serde_json::Value = serde_json::from_str(config).context("--config is not JSON")?;
    let gateway = offline_config(file, config)?;
    let runtime =
        Runtime::for_config(&gateway, Backends::in_memory()).map_err(|e: RuntimeError| anyhow::anyhow!("{e}"))?;
    let table = runtime
        .build_routes(&gateway)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let chain = table.chain("test").context("the test route")?;
    let plugin = &chain.plugins()[0];
    println!("{} (init ok)", file.display());

    let mut head = RequestHead {
        method: recorded.method.clone(),
        scheme: "http".into(),
        authority: recorded.authority.clone(),
        path: recorded.path.clone(),
        headers: headers(&recorded.headers),
        client_ip: recorded.client_ip.clone(),
        request_id: "plugin-test".into(),
        route: "test".into(),
        context: Vec::new(),
    };
    let (mut verdict, directives) = plugin
        .on_request_headers_with_directives(&head)
        .await
        .map_err(|f| anyhow::anyhow!("on-request-headers failed: {f}"))?;
    println!("on-request-headers -> {}", request_verdict(&verdict));
    if let Some(reply) = &directives.response {
        println!("  response.edit: {}", edits(reply));
    }
    if let RequestVerdict::NeedBody(limit) = verdict {
        let limit = limit as usize;
        if body.len() > limit {
            println!(
                "the host would answer 413: the body has {} bytes, the plugin reads up to {limit}",
                body.len()
            );
            return Ok(());
        }
        verdict = plugin
            .on_request_body(&head, &body)
            .await
            .map_err(|f| anyhow::anyhow!("on-request-body failed: {f}"))?;
        println!(
            "on-request-body ({} bytes) -> {}",
            body.len(),
            request_verdict(&verdict)
        );
    }
    if let RequestVerdict::Edit(edits) = &verdict {
        apply(&mut head.headers, edits);
    }
    let status = match (&verdict, &response) {
        (RequestVerdict::Respond(local), _) => local.status,
        (_, Some(recorded)) if !plugin.has_hook(Hook::ResponseHeaders) => {
            println!("on-response-headers: not in the plugin's hooks");
            recorded.status
        }
        (_, Some(recorded)) => {
            let mut resp = ResponseHead {
                status: recorded.status,
                headers: headers(&recorded.headers),
            };
            let verdict = plugin
                .on_response_headers(&head, &resp)
                .await
                .map_err(|f| anyhow::anyhow!("on-response-headers failed: {f}"))?;
            println!("on-response-headers -> {}", response_verdict(&verdict));
            if let ResponseVerdict::Replace(local) = &verdict {
                resp.status = local.status;
            }
            resp.status
        }
        _ => 200,
    };
    let entry = LogEntry {
        request: head,
        status,
        duration_us: 0,
        bytes_received: body.len() as u64,
        bytes_sent: 0,
        upstream: None,
        error: None,
        inference: None,
    };
    if !plugin.has_hook(Hook::Log) {
        println!("on-log: not in the plugin's hooks");
        return Ok(());
    }
    match plugin.on_log(&entry).await {
        Ok(()) => println!("on-log -> ok"),
        Err(f) => println!("on-log failed: {f}"),
    }
    Ok(())
}

fn apply(headers: &mut Vec<(String, Vec<u8>)>, edits: &HeaderEdits) {
    headers.retain(|(n, _)| {
        !edits.remove.iter().any(|r| r.eq_ignore_ascii_case(n))
            && !edits.set.iter().any(|(s, _)| s.eq_ignore_ascii_case(n))
    });
    headers.extend(edits.set.iter().cloned());
    headers.extend(edits.append.iter().cloned());
}

fn text(v: &[u8]) -> String {
    String::from_utf8_lossy(v).into_owned()
}

fn edits(e: &HeaderEdits) -> String {
    let mut parts = Vec::new();
    parts.extend(e.set.iter().map(|(n, v)| format!("set {n}: {}", text(v))));
    parts.extend(e.append.iter().map(|(n, v)| format!("append {n}: {}", text(v))));
    parts.extend(e.remove.iter().map(|n| format!("remove {n}")));
    parts.extend(e.context.iter().map(|(k, v)| format!("context {k} = {v}")));
    if parts.is_empty() {
        "no changes".into()
    } else {
        parts.join("; ")
    }
}

fn local(r: &LocalResponse) -> String {
    let headers: Vec<String> = r.headers.iter().map(|(n, v)| format!("{n}: {}", text(v))).collect();
    format!("{} [{}] {}", r.status, headers.join(", "), text(&r.body))
}

/// A request verdict as one line.
fn request_verdict(v: &RequestVerdict) -> String {
    match v {
        RequestVerdict::Continue => "continue".into(),
        RequestVerdict::Edit(e) => format!("edit: {}", edits(e)),
        RequestVerdict::Respond(r) => format!("respond {}", local(r)),
        RequestVerdict::Coalesce(spec) => format!("coalesce {spec:?}"),
        RequestVerdict::RouteTo(choice) => format!(
            "route-to {} (lease {:?}; {})",
            choice.url,
            choice.lease,
            edits(&choice.edits)
        ),
        RequestVerdict::NeedBody(n) => format!("need-body({n})"),
    }
}

/// A response verdict as one line.
fn response_verdict(v: &ResponseVerdict) -> String {
    match v {
        ResponseVerdict::Continue => "continue".into(),
        ResponseVerdict::Edit(e) => format!("edit: {}", edits(e)),
        ResponseVerdict::Replace(r) => format!("replace {}", local(r)),
        ResponseVerdict::Compress(spec) => format!("compress {spec:?}"),
        ResponseVerdict::Store(spec) => format!("store {spec:?}"),
    }
}
