//! The WIT compatibility promise: a plugin built against the frozen `sluice:plugin@0.1.0`
//! (`tests/compat/wit-0.1.0`) loads in this host and its hooks work. A change to `wit/` that
//! breaks 0.1 plugins fails here first.

use sluice_artifacts as wasm;
use sluice_bindings::RequestVerdict;

use super::support::{plugin, request, route, table};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_built_against_the_frozen_0_1_wit_loads_and_runs() {
    let (_h, table) = table(&format!(
        "{}{}",
        plugin("frozen", wasm::FROZEN_0_1, ""),
        route("r", &["plugin = \"frozen\""])
    ))
    .await;
    let chain = table.chain("r").unwrap();
    let verdict = chain.plugins()[0].on_request_headers(&request("r", "/")).await.unwrap();
    let RequestVerdict::Edit(edits) = verdict else {
        panic!("expected an edit, got {verdict:?}");
    };
    let names: Vec<&str> = edits.set.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["x-frozen-wit", "x-frozen-clock"]);
    assert_eq!(edits.set[1].1, b"true", "the clock import answered");
}
