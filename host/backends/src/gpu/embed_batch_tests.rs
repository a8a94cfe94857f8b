use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::*;
use crate::gpu::embed_batcher::{BatchError, BatchKey, EmbedBatcher};

// ---- merge and split ----

#[test]
fn merge_lists_every_input_in_order() {
    let requests = [
        json!({"model": "e5", "input": "one", "user": "a"}),
        json!({"model": "e5", "input": ["two", "three"]}),
        json!({"model": "e5", "input": [1, 2, 3]}),
        json!({"model": "e5", "input": [[4, 5], [6]]}),
    ];
    let (merged, ranges) = merge(&requests).unwrap();
    assert_eq!(
        merged,
        json!({"model": "e5", "user": "a", "input": ["one", "two", "three", [1, 2, 3], [4, 5], [6]]})
    );
    assert_eq!(ranges, vec![0..1, 1..3, 3..4, 4..6]);
}

#[test]
fn merge_refuses_what_cannot_share_a_call() {
    let a = json!({"model": "e5", "input": "x", "encoding_format": "float"});
    let b = json!({"model": "e5", "input": "y", "encoding_format": "base64"});
    assert_eq!(
        merge(&[a.clone(), b]),
        Err(MergeError::Mismatch {
            index: 1,
            field: "encoding_format"
        })
    );
    let c = json!({"model": "e5", "input": "y", "encoding_format": "float", "dimensions": 256});
    assert!(matches!(
        merge(&[a.clone(), c]),
        Err(MergeError::Mismatch {
            field: "dimensions",
            ..
        })
    ));
    for bad in [
        json!({"model": "e5"}),
        json!({"model": "e5", "input": []}),
        json!({"input": ["a", 1]}),
    ] {
        assert!(matches!(
            merge(&[a.clone(), bad]),
            Err(MergeError::BadInput(1) | MergeError::Mismatch { .. })
        ));
    }
    assert_eq!(merge(&[]), Err(MergeError::Empty));
}

fn response(n: usize, prompt_tokens: u64) -> Value {
    // Out of order on purpose: the split goes by `index`.
    let data: Vec<Value> = (0..n)
        .rev()
        .map(|i| json!({"object": "embedding", "index": i, "embedding": [i as f64]}))
        .collect();
    json!({"object": "list", "data": data, "model": "e5",
           "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}})
}

#[test]
fn split_renumbers_and_shares_usage() {
    let parts = split(&response(6, 10), &[0..1, 1..3, 3..6]).unwrap();
    assert_eq!(
        parts[1],
        json!({"object": "list", "model": "e5",
               "data": [{"object": "embedding", "index": 0, "embedding": [1.0]},
                        {"object": "embedding", "index": 1, "embedding": [2.0]}],
               "usage": {"prompt_tokens": 3, "total_tokens": 3}})
    );
    let shares: Vec<u64> = parts
        .iter()
        .map(|p| p["usage"]["prompt_tokens"].as_u64().unwrap())
        .collect();
    assert_eq!(shares.iter().sum::<u64>(), 10, "the shares add up: {shares:?}");
    assert_eq!(parts[2]["data"][2]["embedding"], json!([5.0]));
}

#[test]
fn split_refuses_a_response_that_does_not_fit() {
    assert_eq!(
        split(&response(2, 4), &[0..1, 1..3]),
        Err(SplitError::CountMismatch { expected: 3, got: 2 })
    );
    assert_eq!(split(&json!({"error": "x"}), &[0..1, 1..1]), Err(SplitError::NoData));
    let twice = json!({"data": [{"index": 0, "embedding": []}, {"index": 0, "embedding": []}]});
    assert_eq!(split(&twice, &[0..1, 1..2]), Err(SplitError::BadIndex(2)));
}

// ---- the batcher ----

/// A fake backend: answers one embedding per input item, 2 tokens each, and records calls.
#[derive(Clone, Default)]
struct Backend {
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Value>>>,
}

impl Backend {
    fn send(&self) -> impl FnOnce(Value) -> std::future::Ready<Result<(u16, Value), String>> + use<> {
        let this = self.clone();
        move |request: Value| {
            this.calls.fetch_add(1, Ordering::SeqCst);
            let n = input_items(&request).map_or(0, |items| items.len());
            this.seen.lock().push(request);
            std::future::ready(Ok((200, response(n, 2 * n as u64))))
        }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn key(model: &str) -> BatchKey {
    BatchKey {
        backend: Arc::from("gpu-1"),
        model: Arc::from(model),
    }
}

fn embeddings(answer: &(u16, Value)) -> Vec<f64> {
    assert_eq!(answer.0, 200);
    let data = answer.1["data"].as_array().unwrap();
    data.iter().map(|d| d["embedding"][0].as_f64().unwrap()).collect()
}

#[tokio::test(start_paused = true)]
async fn concurrent_requests_share_one_call() {
    let batcher = EmbedBatcher::new(Duration::from_millis(5), 64);
    let backend = Backend::default();
    let (a, b, c) = tokio::join!(
        batcher.submit(key("e5"), json!({"model": "e5", "input": "a"}), backend.send()),
        batcher.submit(key("e5"), json!({"model": "e5", "input": ["b", "c"]}), backend.send()),
        batcher.submit(key("e5"), json!({"model": "e5", "input": "d"}), backend.send()),
    );
    assert_eq!(backend.calls(), 1);
    assert_eq!(backend.seen.lock()[0]["input"], json!(["a", "b", "c", "d"]));
    assert_eq!(embeddings(&a.unwrap()), [0.0]);
    let b = b.unwrap();
    assert_eq!(embeddings(&b), [1.0, 2.0]);
    assert_eq!(b.1["usage"]["prompt_tokens"], 4);
    assert_eq!(embeddings(&c.unwrap()), [3.0]);
}

#[tokio::test(start_paused = true)]
async fn max_inputs_cuts_a_batch() {
    let batcher = EmbedBatcher::new(Duration::from_secs(3600), 3);
    let backend = Backend::default();
    let started = tokio::time::Instant::now();
    let (a, b, c) = tokio::join!(
        batcher.submit(key("e5"), json!({"model": "e5", "input": ["a", "b"]}), backend.send()),
        batcher.submit(key("e5"), json!({"model": "e5", "input": "c"}), backend.send()),
        batcher.submit(key("e5"), json!({"model": "e5", "input": "d"}), backend.send()),
    );
    assert!(
        started.elapsed() >= Duration::from_secs(3600),
        "the last batch waited its window"
    );
    assert_eq!(backend.calls(), 2);
    let seen = backend.seen.lock();
    assert_eq!(
        seen[0]["input"],
        json!(["a", "b", "c"]),
        "the full batch went without waiting"
    );
    assert_eq!(seen[1]["input"], json!("d"), "a batch of one goes as it came");
    assert_eq!(embeddings(&a.unwrap()), [0.0, 1.0]);
    assert_eq!(embeddings(&b.unwrap()), [2.0]);
    assert_eq!(embeddings(&c.unwrap()), [0.0]);
}

#[tokio::test(start_paused = true)]
async fn different_models_get_separate_calls() {
    let batcher = EmbedBatcher::new(Duration::from_millis(5), 64);
    let backend = Backend::default();
    let (a, b) = tokio::join!(
        batcher.submit(key("e5"), json!({"model": "e5", "input": "a"}), backend.send()),
        batcher.submit(key("bge"), json!({"model": "bge", "input": "b"}), backend.send()),
    );
    assert_eq!(backend.calls(), 2);
    assert_eq!(embeddings(&a.unwrap()), [0.0]);
    assert_eq!(embeddings(&b.unwrap()), [0.0]);
}

#[tokio::test(start_paused = true)]
async fn a_backend_failure_reaches_every_member() {
    let batcher = EmbedBatcher::new(Duration::from_millis(5), 64);
    let calls = Arc::new(AtomicUsize::new(0));
    let overloaded = || {
        let calls = calls.clone();
        move |_: Value| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Ok::<_, String>((503, json!({"error": {"message": "busy"}}))))
        }
    };
    let (a, b) = tokio::join!(
        batcher.submit(key("e5"), json!({"model": "e5", "input": "a"}), overloaded()),
        batcher.submit(key("e5"), json!({"model": "e5", "input": "b"}), overloaded()),
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let expected = (503, json!({"error": {"message": "busy"}}));
    assert_eq!((a.unwrap(), b.unwrap()), (expected.clone(), expected));

    let failing = |_: Value| std::future::ready(Err::<(u16, Value), _>("connection refused".to_owned()));
    let (a, b) = tokio::join!(
        batcher.submit(key("e5"), json!({"model": "e5", "input": "a"}), failing),
        batcher.submit(key("e5"), json!({"model": "e5", "input": "b"}), failing),
    );
    let expected = Err(BatchError::Backend("connection refused".to_owned()));
    assert_eq!((a, b), (expected.clone(), expected));
}

#[tokio::test(start_paused = true)]
async fn a_single_request_goes_as_it_came() {
    let batcher = EmbedBatcher::new(Duration::from_millis(5), 64);
    let backend = Backend::default();
    let request = json!({"model": "e5", "input": ["a", "b"], "dimensions": 8});
    let answer = batcher
        .submit(key("e5"), request.clone(), backend.send())
        .await
        .unwrap();
    assert_eq!(backend.seen.lock().as_slice(), [request]);
    assert_eq!(answer, (200, response(2, 4)), "the backend's answer, untouched");
}

#[tokio::test(start_paused = true)]
async fn unmergeable_requests_go_alone() {
    let batcher = EmbedBatcher::new(Duration::from_millis(5), 64);
    let backend = Backend::default();
    let (a, b, c) = tokio::join!(
        batcher.submit(key("e5"), json!({"model": "e5", "input": "a"}), backend.send()),
        batcher.submit(
            key("e5"),
            json!({"model": "e5", "input": "b", "dimensions": 8}),
            backend.send()
        ),
        batcher.submit(
            key("e5"),
            json!({"model": "e5", "input": {"odd": true}}),
            backend.send()
        ),
    );
    assert_eq!(backend.calls(), 3);
    assert_eq!(embeddings(&a.unwrap()), [0.0]);
    assert_eq!(embeddings(&b.unwrap()), [0.0]);
    assert_eq!(c.unwrap().0, 200);
}

#[tokio::test(start_paused = true)]
async fn members_send_alone_when_the_leader_goes_away() {
    let batcher = EmbedBatcher::new(Duration::from_millis(5), 64);
    let backend = Backend::default();
    let leader = batcher.submit(key("e5"), json!({"model": "e5", "input": "a"}), backend.send());
    let member = batcher.submit(key("e5"), json!({"model": "e5", "input": "b"}), backend.send());
    let mut leader = Box::pin(leader);
    // Open the batch, then give up on the leader.
    assert!(futures_util::poll!(leader.as_mut()).is_pending());
    let mut member = Box::pin(member);
    assert!(futures_util::poll!(member.as_mut()).is_pending());
    drop(leader);
    let answer = member.await.unwrap();
    assert_eq!(backend.seen.lock()[0]["input"], json!("b"));
    assert_eq!(embeddings(&answer), [0.0]);
}
