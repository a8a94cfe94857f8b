//! Request coalescing (the dedup plugin's `coalesce` verdict): identical in-flight requests
//! share one upstream request, identities never share, the waiter bound, a first caller that
//! leaves, errors that are not fanned out, and bodies that stream to every waiter. The
//! upstream holds its answers until the gateway's metrics show every request joined, so no
//! test depends on timing. Replay is in `dedup_replay.rs`.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use sluice_e2e::hold::{HoldUpstream, PAD};
use sluice_e2e::{Answer, Gateway, full, get, send, start_gateway};

/// A gateway with the dedup plugin (configured by `config`, a TOML inline table's contents) on
/// route `r`, proxying to `upstream`; `extra` is prepended.
pub async fn dedup_gateway(upstream: &HoldUpstream, config: &str, extra: &str) -> Gateway {
    start_gateway(&format!(
        "{extra}[upstreams.app]\ntargets = [\"{}\"]\nrequest_timeout_ms = 60000\n\
         [plugins.dedup]\nmodule = \"builtin:dedup\"\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"dedup\", config = {{ {config} }} }}]\n",
        upstream.addr
    ))
    .await
}

/// The value of `sluice_dedup_requests_total{outcome=OUTCOME}` on route `r`.
pub async fn dedup_count(gw: &Gateway, outcome: &str) -> u64 {
    let text = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("sluice_dedup_requests_total{"))
        .filter(|l| l.contains(&format!("outcome=\"{outcome}\"")) && l.contains("route=\"r\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

/// Waits until the outcomes in `outcomes` add up to `n` (the requests reached the gateway).
pub async fn until_counted(gw: &Gateway, outcomes: &[&str], n: u64) {
    for _ in 0..600 {
        let mut sum = 0;
        for outcome in outcomes {
            sum += dedup_count(gw, outcome).await;
        }
        assert!(sum <= n, "{sum} requests counted as {outcomes:?}, expected {n}");
        if sum == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the requests never all reached the gateway as {outcomes:?}");
}

fn get_with(url: &str, headers: &[(&str, &str)]) -> hyper::Request<sluice_e2e::Body> {
    let mut req = hyper::Request::get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    req.body(full(Bytes::new())).unwrap()
}

/// Sends `n` GETs of `url` with `headers` at once; their answers, in order.
fn spawn_many(n: usize, url: &str, headers: &[(&str, &str)]) -> Vec<tokio::task::JoinHandle<Answer>> {
    (0..n)
        .map(|_| {
            let req = get_with(url, headers);
            tokio::spawn(send(req))
        })
        .collect()
}

async fn all(tasks: Vec<tokio::task::JoinHandle<Answer>>) -> Vec<Answer> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_identical_gets_share_one_upstream_request() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "replay_ttl_ms = 0", "").await;
    let tasks = spawn_many(50, &gw.url("/hold/a?x=1"), &[]);
    until_counted(&gw, &["fetched", "joined"], 50).await;
    assert_eq!(dedup_count(&gw, "fetched").await, 1);
    upstream.open();
    for answer in all(tasks).await {
        assert_eq!(answer.status, 200);
        let doc = answer.json();
        assert_eq!(
            (doc["hit"].as_u64(), doc["uri"].as_str()),
            (Some(1), Some("/hold/a?x=1"))
        );
        assert_eq!(doc["pad"].as_str().map(str::len), Some(PAD));
    }
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn different_identities_never_share() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "", "").await;
    let alice = spawn_many(10, &gw.url("/hold/me"), &[("x-api-key", "alice")]);
    let bob = spawn_many(10, &gw.url("/hold/me"), &[("x-api-key", "bob")]);
    until_counted(&gw, &["fetched", "joined"], 20).await;
    assert_eq!(dedup_count(&gw, "fetched").await, 2, "one fetch per identity");
    upstream.open();
    for (who, tasks) in [("alice", alice), ("bob", bob)] {
        for answer in all(tasks).await {
            assert_eq!(answer.status, 200);
            assert_eq!(answer.json()["api_key"], who);
        }
    }
    assert_eq!(upstream.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn callers_beyond_max_waiters_go_upstream_on_their_own() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "max_waiters = 5, replay_ttl_ms = 0", "").await;
    let tasks = spawn_many(20, &gw.url("/hold/bounded"), &[]);
    until_counted(&gw, &["fetched", "joined", "alone"], 20).await;
    assert_eq!(dedup_count(&gw, "alone").await, 15);
    upstream.open();
    for answer in all(tasks).await {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["pad"].as_str().map(str::len), Some(PAD));
    }
    assert_eq!(upstream.hits(), 1 + 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_caller_leaving_does_not_cancel_the_shared_fetch() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "replay_ttl_ms = 0", "").await;
    let first = spawn_many(1, &gw.url("/hold/left"), &[]);
    until_counted(&gw, &["fetched"], 1).await;
    let others = spawn_many(5, &gw.url("/hold/left"), &[]);
    until_counted(&gw, &["fetched", "joined"], 6).await;
    // Aborting the task drops its client and so closes its connection.
    for t in first {
        t.abort();
    }
    while upstream.hits() == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Give the gateway a moment to see the close before the answer exists (not an assertion:
    // the test holds either way, but this is the case it is about).
    tokio::time::sleep(Duration::from_millis(200)).await;
    upstream.open();
    for answer in all(others).await {
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["pad"].as_str().map(str::len), Some(PAD));
    }
    assert_eq!(upstream.hits(), 1, "the fetch went on without its first caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_upstream_500_is_not_fanned_out_each_waiter_asks_for_itself() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "", "").await;
    let tasks = spawn_many(100, &gw.url("/fail/x"), &[]);
    until_counted(&gw, &["fetched", "joined"], 100).await;
    upstream.open();
    for answer in all(tasks).await {
        assert_eq!(answer.status, 500);
        assert_eq!(
            &answer.body[..],
            b"upstream says no",
            "the upstream's answer, never the gateway's"
        );
    }
    assert_eq!(
        upstream.hits(),
        100,
        "the first caller got the shared fetch's 500, the 99 others their own"
    );
    assert_eq!(dedup_count(&gw, "fallback").await, 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_share_errors_one_500_answers_every_waiter() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "share_errors = true", "").await;
    let tasks = spawn_many(30, &gw.url("/fail/shared"), &[]);
    until_counted(&gw, &["fetched", "joined"], 30).await;
    upstream.open();
    for answer in all(tasks).await {
        assert_eq!((answer.status, &answer.body[..]), (500, &b"upstream says no"[..]));
    }
    assert_eq!(upstream.hits(), 1);
}

/// Sends `n` GETs of `/stream` one after the other and reads each one's first chunk (the
/// upstream holds the second): the bodies, mid-stream.
async fn open_streams(gw: &Gateway, n: usize) -> Vec<hyper::body::Incoming> {
    let mut bodies = Vec::new();
    for i in 0..n {
        let resp = sluice_e2e::client()
            .request(get_with(&gw.url("/stream"), &[]))
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let mut body = resp.into_body();
        let first = tokio::time::timeout(Duration::from_secs(30), body.frame())
            .await
            .unwrap_or_else(|_| panic!("waiter {i} got nothing before the body ended"))
            .unwrap()
            .unwrap();
        assert_eq!(first.into_data().unwrap(), "first\n");
        bodies.push(body);
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_streamed_body_reaches_every_waiter_as_it_arrives() {
    let upstream = HoldUpstream::start().await;
    let gw = dedup_gateway(&upstream, "replay_ttl_ms = 0", "").await;
    let bodies = open_streams(&gw, 5).await;
    assert_eq!(dedup_count(&gw, "joined").await, 4, "the later callers joined mid-body");
    upstream.open_stream();
    for body in bodies {
        let rest = body.collect().await.unwrap().to_bytes();
        assert_eq!(rest, "second\n");
    }
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_body_outgrowing_the_shared_log_cuts_its_waiters_and_is_not_replayed() {
    let upstream = HoldUpstream::start().await;
    // `/stream` sends 6 bytes, then 7 more without a length: past a 10-byte log.
    let gw = dedup_gateway(&upstream, "", "[server]\nmax_body_bytes = 10\n").await;
    let bodies = open_streams(&gw, 3).await;
    assert_eq!(dedup_count(&gw, "joined").await, 2);
    upstream.open_stream();
    for (i, body) in bodies.into_iter().enumerate() {
        let rest = tokio::time::timeout(Duration::from_secs(30), body.collect())
            .await
            .expect("the body ends");
        assert!(rest.is_err(), "waiter {i} got a truncated body as if whole: {rest:?}");
    }
    assert_eq!(upstream.hits(), 1);
    // Not replayed: the next identical request goes upstream again, and is cut the same way.
    let resp = sluice_e2e::client()
        .request(get_with(&gw.url("/stream"), &[]))
        .await
        .unwrap();
    assert!(resp.into_body().collect().await.is_err());
    assert_eq!(upstream.hits(), 2);
    assert_eq!(dedup_count(&gw, "replayed").await, 0);
    assert_eq!(get(&gw.url("/small")).await.status, 200, "the gateway keeps serving");
}
