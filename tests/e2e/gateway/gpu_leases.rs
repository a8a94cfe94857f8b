//! GPU leases end with the request whatever happens to it: a client that goes away mid-stream
//! or while queued gives its slot back; a request that depends on another of its workflow
//! waits for it; a client that asked for usage still gets it.

use std::sync::Arc;

use http_body_util::BodyExt;
use serde_json::json;
use sluice_e2e::{Gateway, client, full};

use super::gpu_route::{chat, fleet_gateway, post, sim, sim_config, until};

fn chat_request(gw: &Gateway, body: &serde_json::Value, headers: &[(&str, &str)]) -> hyper::Request<sluice_e2e::Body> {
    let mut req = hyper::Request::post(gw.url("/v1/chat/completions")).header("content-type", "application/json");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.body(full(body.to_string())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_stream_or_in_the_queue_gives_its_lease_back() {
    let one = sim("one", sim_config(&[("m", true)], 1, 20), 1).await;
    let gw = Arc::new(fleet_gateway(&[&one], "", "").await);
    let mut long = chat("m", "a long story", 200);
    long["stream"] = json!(true);
    let resp = client().request(chat_request(&gw, &long, &[])).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    until(&gw, "the stream's lease", |s| {
        s["leases"].as_array().unwrap().len() == 1
    })
    .await;

    // A second request queues behind the stream; its client gives up.
    let queued_gw = gw.clone();
    let waiting = tokio::spawn(async move {
        let _ = client()
            .request(chat_request(&queued_gw, &chat("m", "short", 2), &[]))
            .await;
    });
    until(&gw, "the queued request", |s| s["queue"]["waiting"] == 1).await;
    waiting.abort();
    until(&gw, "the queue emptied by the disconnect", |s| {
        s["queue"]["waiting"] == 0
    })
    .await;

    // The streaming client goes away: its lease ends and the backend is free again.
    drop(body);
    let snapshot = until(&gw, "the stream's lease released", |s| {
        s["leases"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(snapshot["backends"][0]["in_flight"], 0, "{snapshot}");
    let after = post(&gw, "/v1/chat/completions", &chat("m", "again", 2), &[]).await;
    assert_eq!(after.status, 200, "the slot is free: {:?}", after.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_step_waits_for_the_step_it_depends_on() {
    // Two slots: without the dependency, step 2 would run beside step 1.
    let two = sim("two", sim_config(&[("m", true)], 2, 20), 2).await;
    let gw = Arc::new(fleet_gateway(&[&two], "", "").await);
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let step = |label: &'static str, tokens: u32, headers: Vec<(&'static str, &'static str)>| {
        let (gw, order) = (gw.clone(), order.clone());
        tokio::spawn(async move {
            let a = post(&gw, "/v1/chat/completions", &chat("m", label, tokens), &headers).await;
            assert_eq!(a.status, 200, "{label}: {:?}", a.body);
            order.lock().unwrap().push(label);
        })
    };
    let first = step(
        "step-1",
        30,
        vec![("x-request-id", "wf-step-1"), ("x-workflow-id", "wf")],
    );
    until(&gw, "step 1 running", |s| s["leases"].as_array().unwrap().len() == 1).await;
    let second = step(
        "step-2",
        2,
        vec![("x-workflow-id", "wf"), ("x-workflow-depends-on", "wf-step-1")],
    );
    until(&gw, "step 2 waiting for step 1", |s| s["queue"]["waiting"] == 1).await;
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(*order.lock().unwrap(), ["step-1", "step-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asked_for_usage_gets_it() {
    let a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(&[&a], "", "").await;
    let mut body = chat("m", "hello there", 4);
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let answer = post(&gw, "/v1/chat/completions", &body, &[]).await;
    assert_eq!(answer.status, 200);
    let text = String::from_utf8_lossy(&answer.body).into_owned();
    assert!(
        text.contains("\"completion_tokens\""),
        "the usage chunk reaches the client: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_completions_are_routed_and_their_usage_reaches_the_client() {
    let a = sim("a", sim_config(&[("m", true)], 4, 1), 4).await;
    let gw = fleet_gateway(&[&a], "", "").await;
    let body = json!({ "model": "m", "prompt": "Once upon a time", "max_tokens": 3 });
    let answer = post(&gw, "/v1/completions", &body, &[("x-priority", "7")]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.header("x-sluice-backend"), Some("a"));
    let value = answer.json();
    assert!(
        value["choices"][0]["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{value}"
    );
    assert_eq!(value["usage"]["completion_tokens"], 3, "{value}");
}
