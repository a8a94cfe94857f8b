//! End-to-end tests: start the simulator on 127.0.0.1:0 and drive it with a hyper client.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sluice_gpu_sim::{ModelConfig, Sim, SimConfig};

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

fn fast_config() -> SimConfig {
    SimConfig {
        seed: 42,
        per_token_ms: 1,
        prefill_per_token_us: 100,
        ..SimConfig::default()
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Result<Bytes, String>,
}

impl Answer {
    fn bytes(&self) -> &Bytes {
        self.body.as_ref().expect("body should be complete")
    }
    fn json(&self) -> Value {
        serde_json::from_slice(self.bytes()).expect("body should be JSON")
    }
    fn text(&self) -> String {
        String::from_utf8(self.bytes().to_vec()).expect("UTF-8 body")
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("missing header {name}"))
            .to_str()
            .unwrap()
    }
}

async fn call(addr: SocketAddr, method: Method, path: &str, body: impl Into<Bytes>) -> Answer {
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

async fn post(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    call(addr, Method::POST, path, body.to_string()).await
}

fn chat(content: &str, extra: Value) -> Value {
    let mut body = json!({"model": "sim-small", "messages": [{"role": "user", "content": content}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn non_streaming_completion_is_deterministic_across_runs() {
    let mut outputs = Vec::new();
    for _ in 0..2 {
        let (addr, _sim) = Sim::start(fast_config()).await.unwrap();
        let chat = post(
            addr,
            "/v1/chat/completions",
            &chat("tell me about gateways", json!({"max_tokens": 8})),
        )
        .await;
        assert_eq!(chat.status, StatusCode::OK);
        let chat = chat.json();
        assert_eq!(chat["object"], "chat.completion");
        assert_eq!(chat["usage"]["prompt_tokens"], 4);
        assert!(chat["usage"]["completion_tokens"].as_u64().unwrap() <= 8);
        let completion = post(
            addr,
            "/v1/completions",
            &json!({"model": "sim-small", "prompt": "once upon"}),
        )
        .await;
        assert_eq!(completion.status, StatusCode::OK);
        let completion = completion.json();
        assert_eq!(completion["object"], "text_completion");
        outputs.push((chat["choices"].clone(), completion["choices"].clone()));
    }
    assert_eq!(outputs[0], outputs[1]);
    let (addr, _sim) = Sim::start(SimConfig {
        seed: 43,
        ..fast_config()
    })
    .await
    .unwrap();
    let other = post(
        addr,
        "/v1/chat/completions",
        &chat("tell me about gateways", json!({"max_tokens": 8})),
    )
    .await;
    assert_ne!(
        other.json()["choices"],
        outputs[0].0,
        "another seed gives another answer"
    );
}

#[tokio::test]
async fn streaming_yields_chunks_usage_and_done() {
    let (addr, _sim) = Sim::start(fast_config()).await.unwrap();
    let body = chat(
        "stream please",
        json!({"stream": true, "max_tokens": 6, "stream_options": {"include_usage": true}}),
    );
    let answer = post(addr, "/v1/chat/completions", &body).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.header("content-type"), "text/event-stream");
    let text = answer.text();
    let events: Vec<&str> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| e.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(events.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    let usage = &chunks.last().unwrap()["usage"];
    let generated = usage["completion_tokens"].as_u64().unwrap();
    assert!((1..=6).contains(&generated));
    assert_eq!(content.split_whitespace().count() as u64, generated);
    assert!(chunks.iter().any(|c| c["choices"][0]["finish_reason"].is_string()));

    // Streaming gives the same text as the non-streaming answer.
    let whole = post(
        addr,
        "/v1/chat/completions",
        &chat("stream please", json!({"max_tokens": 6})),
    )
    .await;
    assert_eq!(whole.json()["choices"][0]["message"]["content"], content.as_str());

    // Without include_usage there is no usage chunk.
    let plain = post(
        addr,
        "/v1/completions",
        &json!({"model": "sim-small", "prompt": "x", "stream": true}),
    )
    .await;
    assert!(plain.text().ends_with("data: [DONE]\n\n"));
    assert!(!plain.text().contains("\"usage\""));
}

#[tokio::test]
async fn prefix_reuse_skips_prefill() {
    let config = SimConfig {
        prefill_per_token_us: 2000,
        ..fast_config()
    };
    let (addr, _sim) = Sim::start(config).await.unwrap();
    let prompt = (0..100).map(|i| format!("word{i}")).collect::<Vec<_>>().join(" ");
    let first = post(
        addr,
        "/v1/completions",
        &json!({"model": "sim-small", "prompt": prompt, "max_tokens": 2}),
    )
    .await;
    assert_eq!(first.header("x-sim-prefix-hit-tokens"), "0");
    let first_ms: f64 = first.header("x-sim-prefill-ms").parse().unwrap();
    assert!(first_ms >= 199.0, "100 tokens at 2 ms: {first_ms}");

    let longer = format!("{prompt} and more");
    let second = post(
        addr,
        "/v1/completions",
        &json!({"model": "sim-small", "prompt": longer, "max_tokens": 2}),
    )
    .await;
    assert_eq!(second.header("x-sim-prefix-hit-tokens"), "100");
    let second_ms: f64 = second.header("x-sim-prefill-ms").parse().unwrap();
    assert!(second_ms < first_ms, "{second_ms} should be below {first_ms}");
    assert_eq!(second.json()["usage"]["prompt_tokens_details"]["cached_tokens"], 100);

    let metrics = call(addr, Method::GET, "/metrics", "").await.text();
    let usage = metric(&metrics, "vllm:kv_cache_usage_perc");
    assert!(usage > 0.0 && usage <= 1.0, "kv usage {usage}");
    assert_eq!(metric(&metrics, "vllm:prompt_tokens_total"), 202.0);
}

#[tokio::test]
async fn errors_use_the_openai_format() {
    let (addr, _sim) = Sim::start(fast_config()).await.unwrap();
    let unknown = post(
        addr,
        "/v1/chat/completions",
        &json!({"model": "nope", "messages": [{"content": "hi"}]}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "model_not_found");
    assert_eq!(unknown.json()["error"]["type"], "invalid_request_error");
    assert!(unknown.json()["error"]["message"].is_string());

    let invalid = call(addr, Method::POST, "/v1/chat/completions", "{not json").await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.json()["error"]["type"], "invalid_request_error");

    let embeddings = post(
        addr,
        "/v1/embeddings",
        &json!({"model": "sim-small", "input": ["a b", "c"]}),
    )
    .await;
    assert_eq!(embeddings.status, StatusCode::OK);
    let embeddings = embeddings.json();
    assert_eq!(embeddings["data"][1]["embedding"].as_array().unwrap().len(), 384);
    assert_eq!(embeddings["usage"]["prompt_tokens"], 3);
}

#[tokio::test]
async fn load_and_unload_change_the_model_list() {
    let mut big = ModelConfig::new("sim-big", 20_000);
    big.loaded = false;
    big.load_ms = 100;
    let config = SimConfig {
        memory_mb: 24_000,
        models: vec![ModelConfig::new("sim-small", 8_000), big],
        ..fast_config()
    };
    let (addr, _sim) = Sim::start(config).await.unwrap();
    let ids = |answer: Answer| -> Vec<String> {
        answer.json()["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(call(addr, Method::GET, "/v1/models", "").await), ["sim-small"]);

    let no_room = post(addr, "/v1/models/load", &json!({"model": "sim-big"})).await;
    assert_eq!(no_room.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(no_room.json()["error"]["code"], "insufficient_gpu_memory");

    assert_eq!(
        post(addr, "/v1/models/unload", &json!({"model": "sim-small"}))
            .await
            .status,
        StatusCode::OK
    );
    assert!(ids(call(addr, Method::GET, "/v1/models", "").await).is_empty());
    let gone = post(addr, "/v1/completions", &json!({"model": "sim-small", "prompt": "hi"})).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let started = std::time::Instant::now();
    assert_eq!(
        post(addr, "/v1/models/load", &json!({"model": "sim-big"})).await.status,
        StatusCode::OK
    );
    assert!(
        started.elapsed() >= Duration::from_millis(100),
        "load takes the configured time"
    );
    assert_eq!(ids(call(addr, Method::GET, "/v1/models", "").await), ["sim-big"]);
}

fn metric(text: &str, name: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test]
async fn metrics_show_running_and_waiting_when_slots_are_full() {
    let config = SimConfig {
        slots: 1,
        per_token_ms: 100,
        ..fast_config()
    };
    let (addr, _sim) = Sim::start(config).await.unwrap();
    let idle = call(addr, Method::GET, "/metrics", "").await.text();
    assert_eq!(metric(&idle, "vllm:num_requests_running"), 0.0);
    let slow = || {
        tokio::spawn(async move {
            post(
                addr,
                "/v1/completions",
                &json!({"model": "sim-small", "prompt": "slow", "max_tokens": 8}),
            )
            .await
        })
    };
    let (a, b) = (slow(), slow());
    let mut seen = false;
    for _ in 0..100 {
        let text = call(addr, Method::GET, "/metrics", "").await.text();
        if metric(&text, "vllm:num_requests_running") == 1.0 && metric(&text, "vllm:num_requests_waiting") == 1.0 {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "one request should run and one wait");
    assert_eq!(a.await.unwrap().status, StatusCode::OK);
    assert_eq!(b.await.unwrap().status, StatusCode::OK);
    let after = call(addr, Method::GET, "/metrics", "").await.text();
    assert_eq!(metric(&after, "vllm:num_requests_running"), 0.0);
    assert_eq!(metric(&after, "vllm:num_requests_waiting"), 0.0);
    assert!(metric(&after, "vllm:generation_tokens_total") >= 2.0);
}

#[tokio::test]
async fn injected_failures() {
    let (addr, _sim) = Sim::start(fast_config()).await.unwrap();
    let stream = chat("a prompt long enough", json!({"stream": true, "max_tokens": 10}));

    post(addr, "/sim/fail", &json!({"mode": "mid_stream", "count": 1})).await;
    let cut = post(addr, "/v1/chat/completions", &stream).await;
    assert_eq!(cut.status, StatusCode::OK);
    assert!(cut.body.is_err(), "the stream should be cut, got {:?}", cut.body);

    post(addr, "/sim/fail", &json!({"mode": "before_first_token", "count": 2})).await;
    for _ in 0..2 {
        let failed = post(addr, "/v1/chat/completions", &stream).await;
        assert_eq!(failed.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(failed.json()["error"]["type"], "server_error");
    }
    let healthy = post(addr, "/v1/chat/completions", &stream).await;
    assert!(
        healthy.text().ends_with("data: [DONE]\n\n"),
        "only `count` requests fail"
    );

    post(addr, "/sim/fail", &json!({"mode": "mid_stream", "count": 1})).await;
    let whole = post(addr, "/v1/completions", &json!({"model": "sim-small", "prompt": "x"})).await;
    assert!(whole.body.is_err(), "a non-streaming body is cut too");
    assert_eq!(call(addr, Method::GET, "/health", "").await.status, StatusCode::OK);
}
