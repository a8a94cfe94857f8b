use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;
use sluice_core::body::{BoxError, ProxyBody, full};

// ---- request preparation ----

fn prepared_json(body: &str) -> (Prepared, Value) {
    let prepared = prepare_request(body.as_bytes());
    let value = serde_json::from_slice(&prepared.body).expect("still JSON");
    (prepared, value)
}

#[test]
fn usage_is_asked_for_on_a_stream_without_it() {
    let body = r#"{"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}"#;
    let (p, v) = prepared_json(body);
    assert!(p.stream && p.injected_usage);
    assert_eq!(p.model.as_deref(), Some("llama"));
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    assert_eq!(v["messages"], json!([{"role":"user","content":"hi"}]));
    // Everything else stays byte for byte: the option goes in first.
    assert_eq!(
        std::str::from_utf8(&p.body).unwrap(),
        r#"{"stream_options":{"include_usage":true},"model":"llama","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
    );
}

#[test]
fn other_stream_options_are_kept() {
    let body = r#"{"stream":true,"stream_options":{"continuous_usage_stats":true, "include_usage":false},"model":"m"}"#;
    let (p, v) = prepared_json(body);
    assert!(p.injected_usage);
    assert_eq!(
        v["stream_options"],
        json!({"continuous_usage_stats": true, "include_usage": true})
    );
    let (p, v) = prepared_json(r#"{"stream":true,"stream_options":{"x":1}}"#);
    assert!(p.injected_usage);
    assert_eq!(v["stream_options"], json!({"include_usage": true, "x": 1}));
    let (p, v) = prepared_json(r#"{"stream":true,"stream_options":null}"#);
    assert!(p.injected_usage);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
    let (p, v) = prepared_json(r#"{"stream":true,"stream_options":{}}"#);
    assert!(p.injected_usage);
    assert_eq!(v["stream_options"], json!({"include_usage": true}));
}

#[test]
fn bodies_that_need_nothing_go_unchanged() {
    for (body, stream) in [
        (r#"{"stream":true,"stream_options":{"include_usage":true}}"#, true),
        (r#"{"stream":false,"model":"m"}"#, false),
        (r#"{"model":"m"}"#, false),
        (r#"{"stream":"yes"}"#, false),
        ("not json {", false),
        ("[1,2]", false),
    ] {
        let p = prepare_request(body.as_bytes());
        assert_eq!(p.body, body.as_bytes(), "{body}");
        assert_eq!((p.stream, p.injected_usage), (stream, false), "{body}");
    }
}

// ---- bodies for the tests ----

fn chunked(parts: Vec<Bytes>) -> ProxyBody {
    let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts.into_iter().map(|b| Ok(Frame::data(b))).collect();
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

fn failing_after(parts: Vec<Bytes>, reason: &str) -> ProxyBody {
    let mut frames: Vec<Result<Frame<Bytes>, BoxError>> = parts.into_iter().map(|b| Ok(Frame::data(b))).collect();
    frames.push(Err(reason.into()));
    StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// A body fed through a channel, to see what goes out before the rest arrives.
fn channel() -> (mpsc::UnboundedSender<Result<Frame<Bytes>, BoxError>>, ProxyBody) {
    let (tx, rx) = mpsc::unbounded_channel();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    (tx, StreamBody::new(stream).boxed())
}

type Ends = Arc<Mutex<Vec<(UsageTap, bool)>>>;

fn recorder() -> (Ends, impl FnOnce(UsageTap, bool) + Send + 'static) {
    let ends: Ends = Arc::default();
    let sink = ends.clone();
    (ends, move |tap, completed| sink.lock().unwrap().push((tap, completed)))
}

async fn collect(body: ProxyBody) -> Bytes {
    body.collect().await.expect("the body ends without error").to_bytes()
}

async fn next_data(body: &mut ProxyBody) -> Bytes {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a frame comes without more input")
        .expect("the body goes on")
        .expect("no error");
    frame.into_data().expect("data")
}

// A chat stream as vLLM sends it when asked for usage, mixing line-ending styles.
const STREAM: &str = concat!(
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}],\"usage\":null}\r\n\r\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hél\"}}],\"usage\":null}\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n",
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,\"total_tokens\":7}}\r\n\r\n",
    "data: [DONE]\r\n\r\n",
);

// What the client gets when the gateway asked for the usage.
const STREAM_WITHOUT_USAGE: &str = concat!(
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\r\n\r\n",
    ": keep-alive\n\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hél\"}}]}\r\n\r\n",
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\n",
    "data: [DONE]\r\n\r\n",
);

fn assert_stream_tap(ends: &Ends) {
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 1, "on_end runs once");
    let (tap, completed) = &ends[0];
    assert!(completed);
    assert_eq!((tap.prompt_tokens, tap.completion_tokens), (Some(5), Some(2)));
    assert_eq!(tap.response_chars, 5);
    assert!(tap.first_token_at.is_some());
    assert_eq!(tap.error, None);
}

/// Splits `text` at every point, every pair of neighbouring points and into every even size.
fn splits(text: &[u8]) -> Vec<Vec<Bytes>> {
    let bytes = Bytes::copy_from_slice(text);
    let mut out = Vec::new();
    for i in 0..=bytes.len() {
        out.push(vec![bytes.slice(..i), bytes.slice(i..)]);
        if i < bytes.len() {
            out.push(vec![bytes.slice(..i), bytes.slice(i..i + 1), bytes.slice(i + 1..)]);
        }
    }
    for size in 1..=bytes.len() {
        out.push(bytes.chunks(size).map(|c| bytes.slice_ref(c)).collect());
    }
    out
}

// ---- streams ----

#[tokio::test]
async fn a_stream_split_anywhere_passes_unchanged_and_fills_the_tap() {
    for parts in splits(STREAM.as_bytes()) {
        let (ends, on_end) = recorder();
        let body = sse_body(Bytes::new(), chunked(parts), false, on_end);
        assert_eq!(collect(body).await, STREAM.as_bytes());
        assert_stream_tap(&ends);
    }
}

#[tokio::test]
async fn injected_usage_is_taken_out_again_wherever_chunks_split() {
    for parts in splits(STREAM.as_bytes()) {
        let (ends, on_end) = recorder();
        let body = sse_body(Bytes::new(), chunked(parts), true, on_end);
        assert_eq!(collect(body).await, STREAM_WITHOUT_USAGE.as_bytes());
        assert_stream_tap(&ends);
    }
}

#[tokio::test]
async fn already_read_bytes_go_first() {
    let at = STREAM
        .find("data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo")
        .unwrap()
        - 7;
    let (ends, on_end) = recorder();
    let first = Bytes::from_static(&STREAM.as_bytes()[..at]);
    let rest = chunked(vec![Bytes::from_static(&STREAM.as_bytes()[at..])]);
    assert_eq!(collect(sse_body(first, rest, false, on_end)).await, STREAM.as_bytes());
    assert_stream_tap(&ends);
}

#[tokio::test]
async fn each_event_goes_out_as_soon_as_it_is_complete() {
    let (tx, rest) = channel();
    let (ends, on_end) = recorder();
    let mut body = sse_body(Bytes::from_static(b"data: {\"a\":1}\n\nda"), rest, false, on_end);
    assert_eq!(next_data(&mut body).await, "data: {\"a\":1}\n\n");
    tx.send(Ok(Frame::data(Bytes::from_static(
        b"ta: {\"choices\":[{\"text\":\"x\"}]}\r\n",
    ))))
    .unwrap();
    tx.send(Ok(Frame::data(Bytes::from_static(b"\r\ndata: {\"b\""))))
        .unwrap();
    assert_eq!(
        next_data(&mut body).await,
        "data: {\"choices\":[{\"text\":\"x\"}]}\r\n\r\n"
    );
    drop(tx);
    assert_eq!(
        next_data(&mut body).await,
        "data: {\"b\"",
        "a partial last event still goes out"
    );
    assert!(body.frame().await.is_none());
    assert_eq!(ends.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_mid_stream_failure_ends_with_an_error_event() {
    let (ends, on_end) = recorder();
    let rest = failing_after(
        vec![Bytes::from_static(
            b"data: {\"choices\":[{\"text\":\"ab\"}]}\n\ndata: {\"cho",
        )],
        "reset",
    );
    let out = collect(sse_body(Bytes::new(), rest, false, on_end)).await;
    assert_eq!(
        out,
        concat!(
            "data: {\"choices\":[{\"text\":\"ab\"}]}\n\n",
            "data: {\"error\":{\"message\":\"the inference backend failed mid-stream: reset\",\"type\":\"server_error\",\"code\":\"backend_failed\"}}\n\n",
            "data: [DONE]\n\n",
        )
    );
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 1);
    assert_eq!(ends[0].0.response_chars, 2);
    assert!(ends[0].0.error.as_deref().unwrap().contains("reset"));
}

#[tokio::test]
async fn a_dropped_stream_reports_once_not_completed() {
    let (tx, rest) = channel();
    let (ends, on_end) = recorder();
    let mut body = sse_body(Bytes::new(), rest, true, on_end);
    tx.send(Ok(Frame::data(Bytes::from_static(
        b"data: {\"choices\":[{\"text\":\"abc\"}]}\n\n",
    ))))
    .unwrap();
    next_data(&mut body).await;
    drop(body);
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 1);
    assert!(!ends[0].1, "a disconnect is not a completion");
    assert_eq!(ends[0].0.response_chars, 3);
}

// ---- the first event ----

#[tokio::test]
async fn first_event_returns_everything_read_once_an_event_is_complete() {
    let mut body = chunked(vec![
        Bytes::from_static(b": ping\n\ndata: {\"choices\""),
        Bytes::from_static(b":[]}\r\n\r\ndata: {\"x\""),
        Bytes::from_static(b":1}\n\n"),
    ]);
    let read = first_event(&mut body, 1024).await.unwrap();
    assert_eq!(read, ": ping\n\ndata: {\"choices\":[]}\r\n\r\ndata: {\"x\"");
    assert_eq!(collect(body).await, ":1}\n\n", "the rest is still there");
}

#[tokio::test]
async fn first_event_failures() {
    let mut ends_early = chunked(vec![Bytes::from_static(b"data: {\"a\":1}\n")]);
    assert!(matches!(
        first_event(&mut ends_early, 1024).await,
        Err(FirstEventError::Ended(b)) if b == "data: {\"a\":1}\n"
    ));
    let mut fails = failing_after(vec![Bytes::from_static(b"data: ")], "connection reset");
    assert!(matches!(
        first_event(&mut fails, 1024).await,
        Err(FirstEventError::Body(_))
    ));
    let mut error = chunked(vec![Bytes::from_static(
        b"data: {\"error\":{\"message\":\"no such model\"}}\n\n",
    )]);
    match first_event(&mut error, 1024).await {
        Err(FirstEventError::ErrorEvent { message, bytes }) => {
            assert_eq!(message, "no such model");
            assert!(bytes.starts_with(b"data: {\"error\""));
        }
        other => panic!("expected an error event, got {other:?}"),
    }
    let mut endless = chunked(vec![Bytes::from(vec![b'x'; 600]), Bytes::from(vec![b'x'; 600])]);
    assert!(matches!(
        first_event(&mut endless, 1000).await,
        Err(FirstEventError::TooLarge(1000))
    ));
}

// ---- complete responses ----

#[tokio::test]
async fn a_json_response_passes_unchanged_and_fills_the_tap() {
    let response = json!({
        "choices": [{"message": {"role": "assistant", "content": "Hello!"}}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    })
    .to_string();
    let (a, b) = response.as_bytes().split_at(10);
    let (ends, on_end) = recorder();
    let rest = chunked(vec![Bytes::copy_from_slice(a), Bytes::copy_from_slice(b)]);
    assert_eq!(collect(json_body(rest, 1 << 20, on_end)).await, response.as_bytes());
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 1);
    let (tap, completed) = &ends[0];
    assert!(completed);
    assert_eq!(
        (tap.prompt_tokens, tap.completion_tokens, tap.response_chars),
        (Some(9), Some(3), 6)
    );
    assert!(tap.first_token_at.is_some());
}

#[tokio::test]
async fn a_json_response_over_the_cap_is_not_read() {
    let response = json!({"choices": [{"text": "abc"}], "usage": {"prompt_tokens": 1}}).to_string();
    let (ends, on_end) = recorder();
    assert_eq!(
        collect(json_body(full(response.clone()), 8, on_end)).await,
        response.as_bytes()
    );
    assert_eq!(ends.lock().unwrap()[0].0, UsageTap::default());
}

#[tokio::test]
async fn a_dropped_json_response_reports_once_not_completed() {
    let (tx, rest) = channel();
    let (ends, on_end) = recorder();
    let mut body = json_body(rest, 1024, on_end);
    tx.send(Ok(Frame::data(Bytes::from_static(b"{\"choices\"")))).unwrap();
    next_data(&mut body).await;
    drop(body);
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 1);
    assert!(!ends[0].1);
}
