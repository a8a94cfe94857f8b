//! Model load/unload, slot metrics and fault injection.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::json;
use sluice_gpu_sim::{ModelConfig, Sim, SimConfig};

use crate::common::{Answer, call, chat, fast_config, metric, post};

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
