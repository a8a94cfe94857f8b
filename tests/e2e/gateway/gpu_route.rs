//! GPU routing end to end: the gpu-router plugin in front of simulated backends
//! (`sluice-gpu-sim`), the host's scheduler choosing among them. Which backend served a
//! request is read from `x-sluice-backend`; order under saturation from completion order.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_e2e::{Answer, Gateway, full, get, send, start_gateway};
use sluice_gpu_sim::{ModelConfig, Sim, SimConfig, SimHandle};

/// A simulated backend and the `[[gpu.backends]]` entry for it.
pub struct SimBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    handle: Option<SimHandle>,
    entry: String,
}

impl SimBackend {
    /// Its `[[gpu.backends]]` entry.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Stops the simulator: connections to it are refused from now on.
    pub fn stop(&mut self) {
        self.handle.take();
    }
}

/// Starts a simulator named `name` with `config`; the gateway gives it `slots` slots.
pub async fn sim(name: &str, config: SimConfig, slots: u32) -> SimBackend {
    let all: Vec<String> = config.models.iter().map(|m| m.name.clone()).collect();
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    sim_listing(name, config.clone(), slots, &all).await
}

/// Like [`sim`], but the gateway's config lists only `listed` of its models (the others are
/// for discovery to find).
pub async fn sim_listing(name: &str, config: SimConfig, slots: u32, listed: &[&str]) -> SimBackend {
    let models: Vec<String> = config
        .models
        .iter()
        .filter(|m| listed.contains(&m.name.as_str()))
        .map(|m| {
            format!(
                "{{ name = {:?}, size_mb = {}, resident = {} }}",
                m.name, m.size_mb, m.loaded
            )
        })
        .collect();
    let (addr, handle) = Sim::start(config).await.unwrap();
    let entry = format!(
        "[[gpu.backends]]\nname = {name:?}\nurl = \"http://{addr}\"\nslots = {slots}\nmodels = [{}]\n",
        models.join(", ")
    );
    SimBackend {
        addr,
        handle: Some(handle),
        entry,
    }
}

/// A simulator config with `models` (name, loaded) at 8 GB each and fast tokens.
pub fn sim_config(models: &[(&str, bool)], slots: usize, per_token_ms: u64) -> SimConfig {
    SimConfig {
        slots,
        per_token_ms,
        models: models
            .iter()
            .map(|(name, loaded)| ModelConfig {
                loaded: *loaded,
                load_ms: 150,
                ..ModelConfig::new(*name, 8_000)
            })
            .collect(),
        ..SimConfig::default()
    }
}

/// A gateway routing `/v1/` through gpu-router to `backends`, with `gpu` settings and
/// `extra` config (e.g. `[postgres]`).
pub async fn fleet_gateway(backends: &[&SimBackend], gpu: &str, extra: &str) -> Gateway {
    start_gateway(&fleet_config(backends, gpu, extra)).await
}

/// The config [`fleet_gateway`] runs (for reloading it with other settings).
pub fn fleet_config(backends: &[&SimBackend], gpu: &str, extra: &str) -> String {
    let entries: String = backends.iter().map(|b| b.entry.clone()).collect();
    format!(
        "{extra}[gpu]\nscrape_interval_ms = 100\n{gpu}\n{entries}\
         [plugins.router]\nmodule = \"builtin:gpu-router\"\ngrants = {{ gpu = true }}\n\
         [[routes]]\nname = \"inference\"\nmatch = {{ path_prefix = \"/v1/\" }}\n\
         plugins = [{{ plugin = \"router\" }}]\n"
    )
}

/// Polls `/admin/gpu` until `done` holds for it (at most 5 s) and returns that snapshot.
pub async fn until(gw: &Gateway, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..250 {
        last = get(&gw.admin_url("/admin/gpu")).await.json();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} never happened: {last}");
}

/// POSTs `body` to `path` on the gateway with `headers`.
pub async fn post(gw: &Gateway, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
    post_raw(gw, path, Bytes::from(body.to_string()), headers).await
}

async fn post_raw(gw: &Gateway, path: &str, body: Bytes, headers: &[(&str, &str)]) -> Answer {
    let mut req = hyper::Request::post(gw.url(path)).header("content-type", "application/json");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    send(req.body(full(body)).unwrap()).await
}

/// A chat request for `model` with `prompt` and `max_tokens`.
pub fn chat(model: &str, prompt: &str, max_tokens: u32) -> Value {
    json!({ "model": model, "messages": [{ "role": "user", "content": prompt }], "max_tokens": max_tokens })
}

fn backend_of(a: &Answer) -> String {
    a.header("x-sluice-backend").unwrap_or("-").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_warm_backend_beats_a_cold_one_and_a_cold_one_is_loaded_when_it_is_the_only_one() {
    let cold = sim("cold", sim_config(&[("m", false), ("only-cold", false)], 4, 1), 4).await;
    let warm = sim("warm", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(&[&cold, &warm], "", "").await;
    for _ in 0..3 {
        let a = post(&gw, "/v1/chat/completions", &chat("m", "hello", 3), &[]).await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        assert_eq!(backend_of(&a), "warm");
    }
    // Only `cold` lists this model: the gateway loads it there, then it is warm.
    let a = post(&gw, "/v1/chat/completions", &chat("only-cold", "hello", 3), &[]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(backend_of(&a), "cold");
    let admin = get(&gw.admin_url("/admin/gpu")).await.json();
    let resident = &admin["backends"][0]["resident"];
    assert!(resident.as_array().unwrap().contains(&json!("only-cold")), "{admin}");
    let models = get(&gw.url("/v1/models")).await;
    assert_eq!(models.status, 200);
    let ids: Vec<String> = models.json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["m", "only-cold"], "the fleet's combined list");
    let one = get(&gw.url("/v1/models/only-cold")).await;
    assert_eq!(one.status, 200, "{:?}", one.body);
    assert_eq!(one.json()["id"], "only-cold");
    assert_eq!(one.json()["object"], "model");
    let missing = get(&gw.url("/v1/models/no-such-model")).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["code"], "model_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_a_backend_lists_are_discovered_and_served() {
    let a = sim_listing("a", sim_config(&[("m", true), ("found", true)], 4, 1), 4, &["m"]).await;
    let gw = fleet_gateway(&[&a], "discovery_interval_ms = 100", "").await;
    let mut served = None;
    for _ in 0..50 {
        let answer = post(&gw, "/v1/chat/completions", &chat("found", "hi", 2), &[]).await;
        if answer.status == 200 {
            served = Some(answer);
            break;
        }
        assert_eq!(answer.status, 404, "unknown until discovered: {:?}", answer.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(backend_of(&served.expect("the discovered model is served")), "a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_unloaded_behind_the_gateways_back_is_loaded_again() {
    let a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(&[&a], "discovery_interval_ms = 3600000", "").await;
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat("m", "hi", 2), &[]).await.status,
        200
    );
    let unload = hyper::Request::post(format!("http://{}/v1/models/unload", a.addr))
        .body(full(json!({ "model": "m" }).to_string()))
        .unwrap();
    assert_eq!(send(unload).await.status, 200);
    let again = post(&gw, "/v1/chat/completions", &chat("m", "hi again", 2), &[]).await;
    assert_eq!(again.status, 200, "{:?}", again.body);
    let models = get(&format!("http://{}/v1/models", a.addr)).await.json();
    assert_eq!(models["data"][0]["id"], "m", "loaded again on the backend");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_saturation_high_priority_goes_first_and_low_priority_still_completes() {
    // One slot, so requests run one at a time in the order the scheduler admits them.
    let one = sim("one", sim_config(&[("m", true)], 1, 20), 1).await;
    let gw = fleet_gateway(&[&one], "aging_ms = 600000", "").await;
    let gw = std::sync::Arc::new(gw);
    let order = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let spawn = |label: &'static str, priority: &'static str, tokens: u32| {
        let (gw, order) = (gw.clone(), order.clone());
        tokio::spawn(async move {
            let a = post(
                &gw,
                "/v1/chat/completions",
                &chat("m", label, tokens),
                &[("x-priority", priority)],
            )
            .await;
            assert_eq!(a.status, 200, "{label}: {:?}", a.body);
            order.lock().unwrap().push(label);
        })
    };
    // Waits until the gateway's queue holds `want` requests of `priority`.
    let queued = |priority: &'static str, want: u64| {
        let gw = gw.clone();
        async move {
            for _ in 0..200 {
                let snapshot = get(&gw.admin_url("/admin/gpu")).await.json();
                if snapshot["queue"]["by_priority"][priority].as_u64() == Some(want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("{want} requests of priority {priority} never queued");
        }
    };
    // The blocker holds the only slot for about 2 s while the others queue behind it.
    let mut tasks = vec![spawn("blocker", "5", 100)];
    tokio::time::sleep(Duration::from_millis(50)).await;
    for label in ["low-1", "low-2", "low-3"] {
        tasks.push(spawn(label, "1", 5));
    }
    queued("1", 3).await;
    for label in ["high-1", "high-2"] {
        tasks.push(spawn(label, "9", 5));
    }
    queued("9", 2).await;
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .expect("every request completes")
            .unwrap();
    }
    let order = order.lock().unwrap().clone();
    assert_eq!(order[0], "blocker");
    assert!(order[1..3].iter().all(|l| l.starts_with("high")), "{order:?}");
    assert!(order[3..].iter().all(|l| l.starts_with("low")), "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_up_goes_to_the_backend_holding_its_prefix() {
    let a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    let b = sim("b", sim_config(&[("m", true)], 4, 1), 4).await;
    // KV usage out of the score, so only the queue and the prefix decide.
    let gw = fleet_gateway(&[&a, &b], "[gpu.weights]\nkv_full = 0.0", "").await;
    let system = "You are a careful assistant. ".repeat(10);
    let first = post(
        &gw,
        "/v1/chat/completions",
        &chat("m", &format!("{system} First question?"), 2),
        &[],
    )
    .await;
    assert_eq!(first.status, 200);
    let holder = backend_of(&first);
    let other_gw = gw.url("/v1/chat/completions");
    // Keep the holder busy with one long request: without affinity the idle one would win.
    let busy_body = chat("m", "unrelated", 1000);
    let busy = tokio::spawn(async move {
        let req = hyper::Request::post(other_gw)
            .header("content-type", "application/json")
            .body(full(busy_body.to_string()))
            .unwrap();
        send(req).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let follow = post(
        &gw,
        "/v1/chat/completions",
        &chat("m", &format!("{system} Second question?"), 2),
        &[],
    )
    .await;
    assert_eq!(follow.status, 200);
    assert_eq!(backend_of(&follow), holder, "the prefix holder serves the follow-up");
    let reused: u64 = follow.header("x-sim-prefix-hit-tokens").unwrap().parse().unwrap();
    assert!(reused > 0, "the backend's KV cache held the prefix");
    busy.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_failing_before_the_first_token_is_replaced_and_one_failing_mid_stream_ends_cleanly() {
    let a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    let b = sim("b", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(&[&a, &b], "", "").await;
    // `a` is first among equals: make it fail before the first token.
    let fail = |addr: SocketAddr, mode: &str| {
        let body = json!({ "mode": mode, "count": 1 }).to_string();
        async move {
            let req = hyper::Request::post(format!("http://{addr}/sim/fail"))
                .body(full(body))
                .unwrap();
            assert_eq!(send(req).await.status, 200);
        }
    };
    fail(a.addr, "before_first_token").await;
    let mut stream = chat("m", "tell me", 4);
    stream["stream"] = json!(true);
    let answer = post(&gw, "/v1/chat/completions", &stream, &[]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(backend_of(&answer), "b", "retried on the other backend");
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("\"usage\""), "the client did not ask for usage: {text}");

    // Now the backend dies mid-stream (either one): the client gets a well-formed error event.
    fail(a.addr, "mid_stream").await;
    fail(b.addr, "mid_stream").await;
    let mut long = chat("m", "tell me more", 10);
    long["stream"] = json!(true);
    let answer = post(&gw, "/v1/chat/completions", &long, &[]).await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.trim().is_empty()).collect();
    let error = events.iter().find(|e| e.contains("\"error\"")).expect("an error event");
    let payload: Value = serde_json::from_str(error.trim().strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(payload["error"]["code"], "backend_failed", "{payload}");
    assert_eq!(events.last().unwrap().trim(), "data: [DONE]", "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_load_metrics_comes_back_after_a_failure() {
    let mut a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    a.entry = a.entry.replace("slots = 4", "slots = 4\nkind = \"ollama\"");
    let b = sim("b", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(&[&a, &b], "", "").await;
    let fail = hyper::Request::post(format!("http://{}/sim/fail", a.addr))
        .body(full(json!({ "mode": "before_first_token", "count": 1 }).to_string()))
        .unwrap();
    assert_eq!(send(fail).await.status, 200);
    let answer = post(&gw, "/v1/chat/completions", &chat("m", "hi", 2), &[]).await;
    assert_eq!(
        (answer.status, backend_of(&answer).as_str()),
        (200, "b"),
        "retried on b"
    );
    // `a` has no metrics to read: its /v1/models answering brings it back.
    let mut healthy = false;
    for _ in 0..100 {
        let snapshot = get(&gw.admin_url("/admin/gpu")).await.json();
        if snapshot["backends"][0]["healthy"] == json!(true) {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(healthy, "the backend came back");
    let again = post(&gw, "/v1/chat/completions", &chat("m", "hi", 2), &[]).await;
    assert_eq!((again.status, backend_of(&again).as_str()), (200, "a"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_openai_errors() {
    let a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(
        &[&a],
        "",
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 65536\n",
    )
    .await;
    let invalid = post_raw(&gw, "/v1/chat/completions", Bytes::from_static(b"{not json"), &[]).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.json()["error"]["code"], "invalid_json");
    // Paths the router does not serve: OpenAI's 404, never the gateway's 502 (no upstream).
    for (method, path) in [
        ("GET", "/v1/files"),
        ("GET", "/v1/chat/completions"),
        ("POST", "/v1/models"),
    ] {
        let req = hyper::Request::builder()
            .method(method)
            .uri(gw.url(path))
            .body(full(""))
            .unwrap();
        let answer = sluice_e2e::send(req).await;
        assert_eq!(answer.status, 404, "{method} {path}");
        let error = &answer.json()["error"];
        assert_eq!(error["code"], "unknown_url");
        assert_eq!(error["message"], format!("Invalid URL ({method} {path})"));
    }
    let unknown = post(&gw, "/v1/chat/completions", &chat("no-such-model", "hi", 2), &[]).await;
    assert_eq!(unknown.status, 404);
    let error = &unknown.json()["error"];
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], "model");
    let big = chat("m", &"x".repeat(100_000), 2);
    assert_eq!(post(&gw, "/v1/chat/completions", &big, &[]).await.status, 413);
    for bad in ["0", "11", "high"] {
        let a = post(&gw, "/v1/chat/completions", &chat("m", "hi", 2), &[("x-priority", bad)]).await;
        assert_eq!(a.status, 400, "priority {bad}");
        assert_eq!(a.json()["error"]["param"], "x-priority");
    }
    // Nothing was lost: a good request still goes through.
    assert_eq!(
        post(&gw, "/v1/chat/completions", &chat("m", "hi", 2), &[]).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after() {
    let one = sim("one", sim_config(&[("m", true)], 1, 50), 1).await;
    let gw = std::sync::Arc::new(fleet_gateway(&[&one], "queue_capacity = 1", "").await);
    let start = |gw: std::sync::Arc<Gateway>| {
        tokio::spawn(async move { post(&gw, "/v1/chat/completions", &chat("m", "slow", 20), &[]).await })
    };
    let running = start(gw.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = start(gw.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = post(&gw, "/v1/chat/completions", &chat("m", "hi", 2), &[]).await;
    assert_eq!(refused.status, 429, "{:?}", refused.body);
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    assert_eq!(running.await.unwrap().status, 200);
    assert_eq!(queued.await.unwrap().status, 200);
}
