//! Instance strategies: pooled instances are reused and recycled after N uses or when their
//! memory grows past the bound; fresh instances serve one request each.

use sluice_artifacts as wasm;
use sluice_runtime::NoBody;

use super::support::{header, plugin, request, route, table};

/// The per-instance request counts `good` reports for `n` sequential requests.
async fn served_counts(toml: &str, n: usize) -> Vec<String> {
    let (_h, table) = table(toml).await;
    let chain = table.chain("r").unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let mut head = request("r", "/");
        chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await;
        out.push(header(&head.headers, "x-served-by-instance").unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pooled_instances_are_reused_then_recycled_after_max_uses() {
    let toml = format!(
        "{}{}",
        plugin("good", wasm::GOOD, "pool = { max_uses = 3 }"),
        route("r", &["plugin = \"good\""])
    );
    assert_eq!(served_counts(&toml, 7).await, ["1", "2", "3", "1", "2", "3", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_instances_keep_no_state_between_requests() {
    let toml = format!(
        "{}{}",
        plugin("good", wasm::GOOD, "instance = \"fresh\""),
        route("r", &["plugin = \"good\""])
    );
    assert_eq!(served_counts(&toml, 3).await, ["1", "1", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_past_the_memory_bound_are_recycled() {
    // A Rust plugin starts with over 1 MiB of linear memory, so a 1 MiB bound recycles
    // every instance after its call.
    let toml = format!(
        "{}{}",
        plugin("good", wasm::GOOD, "pool = { recycle_memory_mb = 1 }"),
        route("r", &["plugin = \"good\""])
    );
    assert_eq!(served_counts(&toml, 3).await, ["1", "1", "1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_get_their_own_instances() {
    let toml = format!(
        "{}{}",
        plugin("good", wasm::GOOD, "pool = { max_idle = 4 }"),
        route("r", &["plugin = \"good\""])
    );
    let (h, table) = table(&toml).await;
    let chain = table.chain("r").unwrap().clone();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let chain = chain.clone();
            tokio::spawn(async move {
                let mut head = request("r", "/");
                chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await;
                header(&head.headers, "x-chain").unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), "good");
    }
    assert!(chain.plugins()[0].idle_instances() <= 4);
    let created = h
        .runtime
        .backends()
        .metrics
        .counter("sluice_plugin_instances_created_total", &[("plugin", "good")])
        .get();
    assert!(created >= 1);
}
