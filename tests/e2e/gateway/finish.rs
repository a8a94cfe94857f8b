//! Every routed response ends in one place (`finish`): the gateway's own answers go through
//! the response hooks of the plugins whose request hooks ran and through `on-log`, as the
//! upstream's do; `on-log` is told the body bytes received.

use std::time::{Duration, Instant};

use sluice_artifacts as wasm;
use sluice_e2e::{Gateway, Upstream, closed_port, full, get, send, start_gateway};

/// A gateway with `good` on route `app`, whose upstream is `upstream` (none when `None`),
/// taking bodies of at most 1000 bytes.
fn config(upstream: Option<String>) -> String {
    let (def, uses) = match upstream {
        Some(addr) => (
            format!("[upstreams.app]\ntargets = [\"{addr}\"]\nconnect_timeout_ms = 500\n"),
            "upstream = \"app\"\n",
        ),
        None => (String::new(), ""),
    };
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 1000\n{def}\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"app\"\n{uses}plugins = [{{ plugin = \"good\" }}]\n",
        wasm::GOOD
    )
}

/// The value of `good`'s metric `name`, once it reaches `want` (on-log runs after the body
/// was sent, on a task of its own); the last value seen after 5 s.
async fn good_metric(gw: &Gateway, name: &str, want: u64) -> u64 {
    let series = format!("sluice_plugin_{name}{{plugin=\"good\"}} ");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(&series).and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or(0.0) as u64;
        if value >= want || Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_answered_through_the_response_hooks_and_on_log() {
    let gw = start_gateway(&config(Some(format!("127.0.0.1:{}", closed_port())))).await;
    let answer = get(&gw.url("/anything")).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"], "upstream_unreachable");
    assert_eq!(
        answer.header("x-resp-chain"),
        Some("good"),
        "the response hook saw the 502"
    );
    assert_eq!(answer.header("x-upstream-status"), Some("502"));
    assert_eq!(good_metric(&gw, "log_status_502", 1).await, 1, "on-log ran for the 502");
    assert_eq!(
        good_metric(&gw, "log_errors", 1).await,
        1,
        "with the refusal as its error"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_without_an_upstream_is_answered_through_the_response_hooks_and_on_log() {
    let gw = start_gateway(&config(None)).await;
    let answer = get(&gw.url("/")).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"], "no_upstream");
    assert_eq!(answer.header("x-resp-chain"), Some("good"));
    assert_eq!(good_metric(&gw, "log_status_502", 1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_refused_before_the_chain_is_logged_but_gets_no_response_hook() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(Some(upstream.addr.to_string()))).await;
    let req = hyper::Request::post(gw.url("/")).body(full(vec![b'x'; 2000])).unwrap();
    let answer = send(req).await;
    assert_eq!(answer.status, 413);
    assert_eq!(
        answer.header("x-resp-chain"),
        None,
        "no request hook ran, so no response hook runs"
    );
    assert_eq!(good_metric(&gw, "log_status_413", 1).await, 1);
    assert_eq!(good_metric(&gw, "log_errors", 1).await, 1);
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_log_is_told_the_request_body_bytes_received_streamed_or_buffered() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(Some(upstream.addr.to_string()))).await;
    let streamed = send(hyper::Request::post(gw.url("/")).body(full(vec![b'x'; 300])).unwrap()).await;
    assert_eq!(streamed.status, 200);
    assert_eq!(streamed.json()["body_len"], 300);
    assert_eq!(good_metric(&gw, "log_bytes_received", 300).await, 300);
    // `/body` makes `good` read the body (need-body 16): buffered, then sent on.
    let buffered = send(hyper::Request::post(gw.url("/body")).body(full("0123456789")).unwrap()).await;
    assert_eq!(buffered.status, 200);
    assert_eq!(buffered.header("x-resp-chain"), Some("good"));
    assert_eq!(good_metric(&gw, "log_bytes_received", 310).await, 310);
    assert_eq!(good_metric(&gw, "log_errors", 0).await, 0);
}
