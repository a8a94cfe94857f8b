//! `response.edit`: a request hook's edits reach whatever response the request gets, applied
//! where the plugin's response hook runs (reverse route order, just before it); refused edits
//! and calls from outside request hooks fail with `invalid` and leave nothing behind.

use sluice_artifacts as wasm;
use sluice_e2e::{Answer, Upstream, closed_port, get, start_gateway};

/// `good` twice on one route (tags `a` then `b`) in front of `upstream`.
fn config(upstream: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{upstream}\"]\nconnect_timeout_ms = 500\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"good\", config = {{ tag = \"a\" }} }}, {{ plugin = \"good\", config = {{ tag = \"b\" }} }}]\n",
        wasm::GOOD
    )
}

fn values<'a>(answer: &'a Answer, name: &str) -> Vec<&'a str> {
    answer
        .headers
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// What every `/reply` answer carries, whoever produced it.
fn assert_replied(answer: &Answer) {
    assert_eq!(
        values(answer, "x-reply"),
        ["b", "a"],
        "the later plugin's edits come first"
    );
    assert_eq!(
        answer.header("x-reply-seen-by-b"),
        Some("1"),
        "b's hook saw its own edit"
    );
    assert_eq!(answer.header("x-reply-seen-by-a"), Some("2"), "a's hook saw both");
    assert_eq!(values(answer, "x-reply-calls"), ["ok,invalid", "ok,invalid"]);
    assert_eq!(answer.header("bad name"), None);
    assert_eq!(answer.header("x-reply-from-response-hook"), Some("invalid"));
    assert_eq!(
        answer.header("x-late"),
        None,
        "an edit asked for from a response hook is not made"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_hooks_edit_the_upstreams_response_in_reverse_route_order() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream.addr.to_string())).await;
    let answer = get(&gw.url("/reply")).await;
    assert_eq!(answer.status, 200);
    assert_replied(&answer);
    let plain = get(&gw.url("/other")).await;
    assert_eq!(plain.status, 200);
    assert!(values(&plain, "x-reply").is_empty(), "only the requests that asked");
    assert_eq!(plain.header("x-resp-chain"), Some("b"), "the response hooks still ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateways_own_refusal_gets_the_edits_too() {
    let gw = start_gateway(&config(&format!("127.0.0.1:{}", closed_port()))).await;
    let answer = get(&gw.url("/reply")).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"], "upstream_unreachable");
    assert_replied(&answer);
}
