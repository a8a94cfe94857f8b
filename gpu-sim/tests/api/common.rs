//! Helpers: a hyper client and request shorthands.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sluice_gpu_sim::SimConfig;

pub(crate) fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

pub(crate) fn fast_config() -> SimConfig {
    SimConfig {
        seed: 42,
        per_token_ms: 1,
        prefill_per_token_us: 100,
        ..SimConfig::default()
    }
}

pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Result<Bytes, String>,
}

impl Answer {
    pub(crate) fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("body should be complete")
    }
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).expect("body should be JSON")
    }
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.bytes().to_vec()).expect("UTF-8 body")
    }
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap()
    }
}

pub(crate) async fn call(addr: SocketAddr, method: Method, path: &str, body: impl Into<Bytes>) -> Answer {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(body.into()))
        .unwrap();
    let response = client().request(request).await.expect("request should be answered");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.map(|c| c.to_bytes()).map_err(|e| e.to_string());
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub(crate) async fn post(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    call(addr, Method::POST, path, body.to_string()).await
}

pub(crate) fn chat(content: &str, extra: Value) -> Value {
    let mut body = json!({"model": "sim-small", "messages": [{"role": "user", "content": content}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

pub(crate) fn metric(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}
