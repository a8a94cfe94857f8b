//! Chain execution: request hooks in route order, response hooks in reverse, local answers
//! cut the chain, context flows forward, bodies reach plugins that ask, on-log runs.

use sluice_artifacts as wasm;
use sluice_bindings::LogEntry;
use sluice_runtime::{NoBody, RequestOutcome};

use super::support::{Body, Prefix, header, plugin, request, response, route, table};

fn three_goods() -> String {
    format!(
        "{}{}",
        plugin("good", wasm::GOOD, "grants = { kv = true }"),
        route(
            "r",
            &[
                "plugin = \"good\"\nconfig = { tag = \"a\" }",
                "plugin = \"good\"\nconfig = { tag = \"b\" }",
                "plugin = \"good\"\nconfig = { tag = \"c\" }",
            ]
        )
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_in_order_and_responses_in_reverse() {
    let (_h, table) = table(&three_goods()).await;
    let chain = table.chain("r").unwrap();
    let mut head = request("r", "/");
    let RequestOutcome::Forward(_) = chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await else {
        panic!()
    };
    assert_eq!(header(&head.headers, "x-chain").as_deref(), Some("a,b,c"));
    assert_eq!(
        header(&head.headers, "x-seen-before").as_deref(),
        Some("ab"),
        "context flows to later plugins"
    );
    assert_eq!(head.context, vec![("seen-by".to_string(), "abc".to_string())]);

    let mut resp = response();
    let outcome = chain
        .on_response(&head, &mut resp, chain.plugins().len(), &Default::default())
        .await;
    assert_eq!(header(&resp.headers, "x-resp-chain").as_deref(), Some("c,b,a"));
    assert_eq!(header(&resp.headers, "x-upstream-status").as_deref(), Some("200"));
    assert!(outcome.body.is_none() && outcome.compress.is_none() && outcome.store.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_answer_skips_later_plugins_and_earlier_response_hooks_run() {
    let (_h, table) = table(&three_goods()).await;
    let chain = table.chain("r").unwrap();
    let mut head = request("r", "/respond");
    let RequestOutcome::Respond { response: local, ran } =
        chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await
    else {
        panic!("expected a local answer")
    };
    assert_eq!(
        (local.status, local.body.as_slice()),
        (418, br#"{"tag":"a"}"#.as_slice())
    );
    assert_eq!(
        ran, 0,
        "the first plugin answered: no earlier plugin's response hook runs"
    );
    assert_eq!(header(&head.headers, "x-chain"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_that_ask_get_the_body() {
    let (_h, table) = table(&three_goods()).await;
    let chain = table.chain("r").unwrap();
    let mut head = request("r", "/body");
    let RequestOutcome::Forward(_) = chain
        .on_request(&mut head, &mut Prefix(vec![7; 100]), &mut Default::default())
        .await
    else {
        panic!()
    };
    assert_eq!(header(&head.headers, "x-body-len").as_deref(), Some("16"));

    let mut head = request("r", "/body");
    let RequestOutcome::Respond { response, .. } = chain
        .on_request(&mut head, &mut Body(vec![7; 100]), &mut Default::default())
        .await
    else {
        panic!("a body over the plugin's limit is answered")
    };
    assert_eq!(response.status, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_log_runs_after_the_response() {
    let (h, table) = table(&three_goods()).await;
    let chain = table.chain("r").unwrap();
    let entry = LogEntry {
        request: request("r", "/"),
        status: 200,
        duration_us: 1500,
        bytes_received: 0,
        bytes_sent: 10,
        upstream: Some("http://127.0.0.1:9".into()),
        error: None,
        inference: None,
    };
    chain.on_log(&entry).await;
    let text = h.runtime.backends().metrics.render_prometheus();
    assert!(
        text.contains("sluice_plugin_duration_us_count{plugin=\"good\"} 3"),
        "{text}"
    );
}
