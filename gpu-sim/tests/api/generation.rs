//! Completions, streaming, prefix reuse and error formats.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_gpu_sim::{Sim, SimConfig};

use crate::common::{call, chat, fast_config, metric, post};

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
    assert_ne!(embeddings["data"][0]["embedding"], embeddings["data"][1]["embedding"]);
}

#[tokio::test]
async fn embeddings_are_deterministic_with_the_model_dimension() {
    let mut model = sluice_gpu_sim::ModelConfig::new("embedder", 100);
    model.embedding_dim = 16;
    let config = SimConfig {
        models: vec![model],
        ..fast_config()
    };
    let mut vectors = Vec::new();
    for _ in 0..2 {
        let (addr, _sim) = Sim::start(config.clone()).await.unwrap();
        let answer = post(
            addr,
            "/v1/embeddings",
            &json!({"model": "embedder", "input": "hello world"}),
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK);
        let vector = answer.json()["data"][0]["embedding"].clone();
        assert_eq!(vector.as_array().unwrap().len(), 16);
        vectors.push(vector);
    }
    assert_eq!(vectors[0], vectors[1]);
}
