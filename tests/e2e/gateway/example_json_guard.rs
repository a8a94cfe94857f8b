//! The Python example plugin (`examples/python-json-guard`), built here the way its README
//! says (a virtualenv with componentize-py) and run in the gateway: valid JSON bodies reach the
//! upstream unchanged; a wrong content type gets 415, bad JSON and bad fields 400 naming each
//! field, an oversized body 413, and none of them reach the upstream.

use bytes::Bytes;
use sluice_e2e::{Answer, Gateway, Upstream, examples, full, get, send, start_gateway};

async fn post(gw: &Gateway, content_type: &str, body: &'static str) -> Answer {
    let req = hyper::Request::post(gw.url("/orders")).header("content-type", content_type);
    send(req.body(full(Bytes::from_static(body.as_bytes()))).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_example_checks_json_bodies() {
    let wasm = examples::build_python("python-json-guard", "app", "json_guard.wasm");
    let upstream = Upstream::start().await;
    let config = |limits: &str| {
        format!(
            "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.json-guard]\nmodule = {wasm:?}\n{limits}\n\
         [[routes]]\nname = \"orders\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"json-guard\", config = {{ fields = {{ customer = \"string\", \
         quantity = \"integer\", note = \"string?\" }}, max_body_bytes = 256 }} }}]\n",
            upstream.addr
        )
    };
    let gw = start_gateway(&config("")).await;

    let body = "{\"customer\": \"c-1\", \"quantity\": 2}";
    let ok = post(&gw, "application/json", body).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(
        ok.json()["body_len"],
        body.len(),
        "the body reaches the upstream unchanged"
    );
    assert_eq!(get(&gw.url("/orders")).await.status, 200, "GET is not checked");
    assert_eq!(upstream.hits(), 2);

    let bad_fields = post(&gw, "application/json", "{\"quantity\": \"2\", \"note\": 5}").await;
    assert_eq!(bad_fields.status, 400);
    let doc = bad_fields.json();
    assert_eq!(doc["error"], "invalid_body");
    // The gateway hands the route's config over as JSON with its keys sorted.
    assert_eq!(doc["fields"], serde_json::json!(["customer", "note", "quantity"]));
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .contains("`quantity` must be integer, not string")
    );

    let not_json = post(&gw, "application/json", "{\"customer\": ").await;
    assert_eq!(
        (not_json.status, not_json.json()["error"].as_str().unwrap()),
        (400, "invalid_json")
    );
    let wrong_type = post(&gw, "text/plain", "customer=c-1").await;
    assert_eq!(
        (wrong_type.status, wrong_type.json()["error"].as_str().unwrap()),
        (415, "json_required")
    );
    let big: &'static str = Box::leak(format!("{{\"customer\": \"{}\"}}", "x".repeat(300)).into_boxed_str());
    assert_eq!(post(&gw, "application/json", big).await.status, 413);
    assert_eq!(upstream.hits(), 2, "no refused request reached the upstream");

    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_plugin_rejected_total{plugin=\"json-guard\"} 3"),
        "{metrics}"
    );
    // The runtime the component carries (over half the default 16 MiB) is not growth: the
    // instance is reused, not replaced after every call.
    assert!(
        metrics.contains("sluice_plugin_instances_recycled_total{plugin=\"json-guard\"} 0"),
        "{metrics}"
    );

    // Too little memory for CPython: the reload says so and what to change; nothing changes.
    let reload = gw.reload_with(&config("limits = { memory_mb = 4 }")).await;
    assert_eq!(reload.status, 422);
    let error = reload.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("raise `limits.memory_mb` of [plugins.json-guard]"),
        "{error}"
    );
    assert_eq!(post(&gw, "application/json", body).await.status, 200);
}
