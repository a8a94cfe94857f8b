//! Embedding batching: concurrent `/v1/embeddings` requests for one model within the window go
//! to the backend as one call, and each caller gets exactly its own vectors (the same the
//! backend gives for its input alone) with its share of the usage.

use std::sync::Arc;

use serde_json::{Value, json};
use sluice_e2e::{full, get, send};

use super::gpu_route::{fleet_gateway, post, sim, sim_config};

async fn direct(addr: std::net::SocketAddr, body: &Value) -> Value {
    let req = hyper::Request::post(format!("http://{addr}/v1/embeddings"))
        .header("content-type", "application/json")
        .body(full(body.to_string()))
        .unwrap();
    send(req).await.json()
}

fn calls(metrics: &str) -> u64 {
    metrics
        .lines()
        .find(|l| l.starts_with("sluice_gpu_embedding_calls_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_embeddings_are_sent_as_one_call_and_split_back() {
    let a = sim("a", sim_config(&[("emb", true)], 4, 1), 4).await;
    let gw = Arc::new(fleet_gateway(&[&a], "embedding_window_ms = 300", "").await);
    let inputs = [json!("the first text"), json!(["second a", "second b"]), json!("third")];
    let tasks: Vec<_> = inputs
        .iter()
        .map(|input| {
            let (gw, body) = (gw.clone(), json!({ "model": "emb", "input": input }));
            tokio::spawn(async move { post(&gw, "/v1/embeddings", &body, &[]).await })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, 200, "{:?}", a.body);
        answers.push(a.json());
    }
    let metrics = String::from_utf8_lossy(&get(&gw.admin_url("/metrics")).await.body).into_owned();
    assert_eq!(calls(&metrics), 1, "one backend call for the three requests");
    let mut prompt_total = 0;
    for (input, answer) in inputs.iter().zip(&answers) {
        let alone = direct(a.addr, &json!({ "model": "emb", "input": input })).await;
        let got: Vec<&Value> = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["embedding"])
            .collect();
        let want: Vec<&Value> = alone["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| &d["embedding"])
            .collect();
        assert_eq!(got, want, "{input}: its own vectors, in order");
        let indexes: Vec<u64> = answer["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["index"].as_u64().unwrap())
            .collect();
        assert_eq!(indexes, (0..want.len() as u64).collect::<Vec<_>>());
        prompt_total += answer["usage"]["prompt_tokens"].as_u64().unwrap();
    }
    let together = direct(
        a.addr,
        &json!({ "model": "emb", "input": ["the first text", "second a", "second b", "third"] }),
    )
    .await;
    assert_eq!(
        prompt_total,
        together["usage"]["prompt_tokens"].as_u64().unwrap(),
        "the usage is shared out"
    );
}
