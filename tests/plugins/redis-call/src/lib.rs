//! Runs the Redis operation named in its config (`{"op": "command" | "script" | "publish",
//! "name": "GET"}`) with the keys and arguments in the request's `x-keys` and `x-args`
//! headers (JSON arrays of strings; `publish` sends the first argument), and answers 200 with
//! the reply as JSON (`null`, a number, a string, or an array of those); when the host refused
//! or the call failed, `{"error": kind, "message": text}` with 503 for `unavailable` and
//! `timeout`, 500 otherwise.
//!
//! Messages on subscribed channels are appended (comma-separated) to the kv key
//! `received:CHANNEL`; op `received` answers that list for channel `name`.

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_plugin_sdk::kv;
use sluice_plugin_sdk::redis::{self, Scalar};
use sluice_plugin_sdk::{Config, Hook, HostError, Plugin, RequestExt, RequestHead, RequestVerdict, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    op: String,
    name: String,
}

struct RedisCall(Settings);

fn scalar(s: &Scalar) -> Value {
    match s {
        Scalar::Nil => Value::Null,
        Scalar::Int(n) => json!(n),
        Scalar::Float(f) => json!(f),
        Scalar::Text(t) => json!(t),
        Scalar::Bytes(b) => json!(String::from_utf8_lossy(b)),
    }
}

fn reply(v: &redis::Value) -> Value {
    match v {
        redis::Value::Scalar(s) => scalar(s),
        redis::Value::Array(items) => Value::Array(items.iter().map(scalar).collect()),
    }
}

fn error(e: &HostError) -> (u16, Value) {
    let status = if e.is_transient() { 503 } else { 500 };
    (status, json!({ "error": e.kind(), "message": e.message() }))
}

fn list(req: &RequestHead, header: &str) -> Vec<String> {
    req.header(header)
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_default()
}

impl Plugin for RedisCall {
    const NAME: &'static str = "redis-call";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders, Hook::Message];

    fn new(config: Config) -> Result<Self, String> {
        config.parse().map(RedisCall)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let keys = list(req, "x-keys");
        let args: Vec<Vec<u8>> = list(req, "x-args").into_iter().map(String::into_bytes).collect();
        let name = &self.0.name;
        let outcome = match self.0.op.as_str() {
            "command" => redis::command(name, &keys, &args).map(|v| reply(&v)),
            "script" => redis::run_script(name, &keys, &args).map(|v| reply(&v)),
            "publish" => redis::publish(name, args.first().map_or(&[][..], |a| a)).map(|n| json!(n)),
            "received" => kv::get(&format!("received:{name}")).map(|v| {
                json!(v.map(|bytes| {
                    String::from_utf8_lossy(&bytes)
                        .split(',')
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                }))
            }),
            other => return Response::new(400).body(format!("unknown op {other}")).into(),
        };
        let (status, answer) = match outcome {
            Ok(v) => (200, v),
            Err(e) => error(&e),
        };
        Response::new(status)
            .header("content-type", "application/json")
            .body(answer.to_string())
            .into()
    }

    fn on_message(&mut self, channel: &str, message: &[u8]) {
        let key = format!("received:{channel}");
        let mut list = kv::get(&key).ok().flatten().unwrap_or_default();
        if !list.is_empty() {
            list.push(b',');
        }
        list.extend_from_slice(message);
        let _ = kv::set(&key, &list, None);
    }
}

sluice_plugin_sdk::export_plugin!(RedisCall);
