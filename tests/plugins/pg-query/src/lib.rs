//! Runs the Postgres statement named in its config (`{"statement": "...", "execute": false}`)
//! with the parameters in the request's `x-params` header (a JSON array: `null`, booleans,
//! integers, floats, strings, `{"json": "..."}`, `{"bytes": [..]}`, `{"ts": micros}`), and
//! answers 200 with `{"columns": [...], "rows": [[...]]}` or `{"affected": n}`; when the host
//! refused or the call failed, `{"error": kind, "message": text}` with 503 for `unavailable`
//! and `timeout` (the client may retry), 500 otherwise.

use serde::Deserialize;
use serde_json::{Value, json};
use sluice_plugin_sdk::postgres::{self, PgValue};
use sluice_plugin_sdk::{Config, Hook, HostError, Plugin, RequestExt, RequestHead, RequestVerdict, Response};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    statement: String,
    #[serde(default)]
    execute: bool,
}

struct PgQuery(Settings);

fn param(v: &Value) -> Result<PgValue, String> {
    Ok(match v {
        Value::Null => PgValue::Null,
        Value::Bool(b) => PgValue::Boolean(*b),
        Value::Number(n) if n.is_i64() => PgValue::Int(n.as_i64().unwrap_or_default()),
        Value::Number(n) => PgValue::Float(n.as_f64().unwrap_or_default()),
        Value::String(s) => PgValue::Text(s.clone()),
        Value::Object(o) => match o.iter().next() {
            Some((k, Value::String(s))) if k == "json" => PgValue::Json(s.clone()),
            Some((k, Value::Number(n))) if k == "ts" => PgValue::TimestampUs(n.as_i64().unwrap_or_default()),
            Some((k, Value::Array(a))) if k == "bytes" => {
                PgValue::Bytes(a.iter().map(|b| b.as_u64().unwrap_or_default() as u8).collect())
            }
            _ => return Err(format!("unknown parameter {v}")),
        },
        Value::Array(_) => return Err(format!("unknown parameter {v}")),
    })
}

fn value(v: &PgValue) -> Value {
    match v {
        PgValue::Null => Value::Null,
        PgValue::Boolean(b) => json!(b),
        PgValue::Int(n) => json!(n),
        PgValue::Float(f) => json!(f),
        PgValue::Text(s) => json!(s),
        PgValue::Bytes(b) => json!({ "bytes": b }),
        PgValue::Json(s) => json!({ "json": s }),
        PgValue::TimestampUs(us) => json!({ "ts": us }),
    }
}

fn error(e: &HostError) -> (u16, Value) {
    let status = if e.is_transient() { 503 } else { 500 };
    (status, json!({ "error": e.kind(), "message": e.message() }))
}

impl Plugin for PgQuery {
    const NAME: &'static str = "pg-query";
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(config: Config) -> Result<Self, String> {
        config.parse().map(PgQuery)
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let raw = req.header("x-params").unwrap_or("[]");
        let params: Result<Vec<PgValue>, String> = serde_json::from_str::<Vec<Value>>(raw)
            .map_err(|e| e.to_string())
            .and_then(|list| list.iter().map(param).collect());
        let params = match params {
            Ok(p) => p,
            Err(e) => return Response::new(400).body(e).into(),
        };
        let (status, answer) = if self.0.execute {
            match postgres::execute(&self.0.statement, &params) {
                Ok(n) => (200, json!({ "affected": n })),
                Err(e) => error(&e),
            }
        } else {
            match postgres::query(&self.0.statement, &params) {
                Ok(rows) => (
                    200,
                    json!({
                        "columns": rows.columns,
                        "rows": rows.rows.iter().map(|r| r.iter().map(value).collect::<Vec<_>>()).collect::<Vec<_>>(),
                    }),
                ),
                Err(e) => error(&e),
            }
        };
        Response::new(status)
            .header("content-type", "application/json")
            .body(answer.to_string())
            .into()
    }
}

sluice_plugin_sdk::export_plugin!(PgQuery);
