//! The dashboard: a page at `/` on the admin listener (HTML, script and style embedded in the
//! binary, nothing fetched from elsewhere), and the endpoints only it needs besides the JSON
//! ones that exist: `/admin/history` (the last 15 minutes, one sample per second, and the
//! running totals of decisions and failures by reason), `/admin/config` (the config in force
//! with its secrets replaced) and `/admin/reloads` (the last reloads and their errors).
//!
//! The page's files answer without the admin token (they hold no data); everything they show
//! comes from endpoints that need it, sent by the page as an `Authorization` header.

use std::collections::BTreeMap;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::history::HISTORY_SAMPLES;
use crate::state::{GatewayState, RELOAD_HISTORY};
use sluice_core::body::{ProxyBody, full};
use sluice_core::errors::json_response as json;
use sluice_core::telemetry::metrics::Registry;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const CHARTS: &str = include_str!("dashboard/charts.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// Only this page's own files, no inline script or style, and never inside a frame.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// The page's file at `path`, or none when `path` is not one of them. The page says whether
/// the admin API wants a token (`token_required`), so it asks before its first call.
pub fn asset(path: &str, token_required: bool) -> Option<Response<ProxyBody>> {
    let (body, kind) = match path {
        "/" => (
            INDEX_HTML.replace("{{TOKEN_REQUIRED}}", if token_required { "true" } else { "false" }),
            "text/html; charset=utf-8",
        ),
        "/dashboard.js" => (SCRIPT.to_string(), "text/javascript; charset=utf-8"),
        "/charts.js" => (CHARTS.to_string(), "text/javascript; charset=utf-8"),
        "/dashboard.css" => (STYLE.to_string(), "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = Response::new(full(body));
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("content-security-policy", HeaderValue::from_static(POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    Some(resp)
}

/// The counter families whose running totals `/admin/history` lists, by their labels.
const TOTALS: [&str; 6] = [
    "sluice_audit_events_total",
    "sluice_ratelimit_decisions_total",
    "sluice_plugin_failures_total",
    "sluice_config_reloads_total",
    "sluice_http_cache_lookups_total",
    "sluice_gpu_model_loads_total",
];

/// `GET /admin/history?since=T`: the samples after `T` (seconds since the epoch; all of
/// them without it) and the running totals of [`TOTALS`].
pub fn history(state: &GatewayState, query: Option<&str>) -> Response<ProxyBody> {
    let since = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| pair.strip_prefix("since="))
        .map(str::parse::<u64>);
    let since = match since {
        None => 0,
        Some(Ok(t)) => t,
        Some(Err(_)) => {
            return sluice_core::errors::json_error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "since must be a whole number of seconds since the Unix epoch",
                "-",
            );
        }
    };
    let totals: BTreeMap<&str, Value> = TOTALS
        .iter()
        .map(|family| (*family, totals_of(state.metrics(), family)))
        .collect();
    json(
        StatusCode::OK,
        json!({
            "interval_seconds": 1,
            "capacity": HISTORY_SAMPLES,
            "samples": state.history().since(since),
            "totals": totals,
        }),
    )
}

/// Each series of counter `family` as `{labels, value}`.
fn totals_of(registry: &Registry, family: &str) -> Value {
    let series = registry.counters_named(family);
    let rows = series.into_iter().map(|(labels, value)| {
        let labels: serde_json::Map<String, Value> = labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        json!({ "labels": labels, "value": value })
    });
    Value::Array(rows.collect())
}

/// `GET /admin/config`: where the config in force came from and its text with secrets
/// replaced (`sluice_config::redact`).
pub fn config(state: &GatewayState) -> Response<ProxyBody> {
    let gateway = state.current();
    let text = sluice_config::redact::redacted_toml(&gateway.config.source_text)
        .unwrap_or_else(|e| format!("# the config text could not be read back: {e}\n"));
    json(
        StatusCode::OK,
        json!({ "origin": state.config_origin(), "redacted": true, "toml": text }),
    )
}

/// `GET /admin/reloads`: the last reloads, newest first.
pub fn reloads(state: &GatewayState) -> Response<ProxyBody> {
    json(
        StatusCode::OK,
        json!({ "capacity": RELOAD_HISTORY, "reloads": state.reloads() }),
    )
}
