//! `head.reads`: a plugin that declared from `init` which request headers and context entries
//! it reads is passed only those (and every other field of the head), in its request hook and
//! its response hook; the upstream and the other plugins still get everything; a declaration
//! from a hook is refused with `invalid`, and one the host refuses fails `init`.

use bytes::Bytes;
use hyper::Request;
use sluice_artifacts as wasm;
use sluice_e2e::{Upstream, full, send, start_gateway};

/// `good` three times: `a` reads everything, `b` declares one header and one context entry,
/// `c` declares nothing at all.
fn config(upstream: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{upstream}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"good\", config = {{ tag = \"a\" }} }}, \
         {{ plugin = \"good\", config = {{ tag = \"b\", reads = {{ headers = [\"X-Wanted\"], context = [\"seen-by\"] }} }} }}, \
         {{ plugin = \"good\", config = {{ tag = \"c\", reads = {{ headers = [], context = [] }} }} }}]\n",
        wasm::GOOD
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_declared_its_reads_is_passed_only_those() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream.addr.to_string())).await;
    let req = Request::get(gw.url("/seen"))
        .header("x-wanted", "1")
        .header("x-other", "2")
        .body(full(Bytes::new()))
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.status, 200);
    let sent = &answer.json()["headers"];
    let seen_by = |tag: &str, what: &str| sent[format!("x-seen-{what}-{tag}")].as_str().unwrap().to_string();

    let all = seen_by("a", "headers");
    assert!(
        all.contains("x-wanted") && all.contains("x-other"),
        "a reads all: {all}"
    );
    assert_eq!(seen_by("b", "headers"), "x-wanted", "b declared one header");
    assert_eq!(seen_by("b", "context"), "seen-by", "b declared the entry a attached");
    assert_eq!(seen_by("c", "headers"), "", "c declared no headers");
    assert_eq!(seen_by("c", "context"), "", "c declared no entries");
    assert_eq!(
        answer.header("x-seen-in-response-hook-b"),
        Some("x-wanted"),
        "the response hook is passed the same view"
    );
    assert_eq!(sent["x-other"], "2", "what no plugin was passed still goes upstream");
    assert_eq!(
        sent["x-chain"], "c",
        "c was not passed the x-chain a and b set (it did not declare it), and its own edit applies"
    );
    assert_eq!(sent["x-reads-from-hook-b"], "invalid", "reads is for init only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declaration_the_host_refuses_fails_init() {
    let upstream = Upstream::start().await;
    let addr = upstream.addr.to_string();
    let gw = start_gateway(&config(&addr)).await;
    let refused = config(&addr).replace(r#"headers = ["X-Wanted"]"#, r#"headers = ["bad name"]"#);
    let reload = gw.reload_with(&refused).await;
    assert_eq!(reload.status, 422);
    let error = reload.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("the host refused what the plugin reads"), "{error}");
    assert!(error.contains("not a header name"), "{error}");
}
