//! The packed hooks (`plugin-packed` world): a component that exports them is called through
//! them instead of the typed hooks, with the head it declared it reads; what they return is
//! checked like a typed verdict, and a buffer that cannot be read fails the call as an invalid
//! verdict. A component without them (the frozen 0.1 plugin, JavaScript, Python) keeps the
//! typed hooks.

use sluice_artifacts as wasm;
use sluice_bindings::{HeaderEdits, RequestVerdict, ResponseHead, ResponseVerdict};
use sluice_runtime::FailureKind;

use super::support::{plugin, request, route, table};

fn header<'a>(edits: &'a HeaderEdits, name: &str) -> Option<&'a str> {
    edits
        .set
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| std::str::from_utf8(v).unwrap())
}

/// A route `r` with the `packed-raw` plugin alone.
async fn raw_table() -> (super::support::Harness, sluice_runtime::RouteTable) {
    table(&format!(
        "{}{}",
        plugin("raw", wasm::PACKED_RAW, ""),
        route("r", &["plugin = \"raw\""])
    ))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_with_packed_hooks_is_called_through_them() {
    let (_h, table) = raw_table().await;
    let raw = &table.chain("r").unwrap().plugins()[0];
    let req = request("r", "/v1/items?page=2");
    let RequestVerdict::Edit(edits) = raw.on_request_headers(&req).await.unwrap() else {
        panic!("expected an edit");
    };
    assert_eq!(header(&edits, "x-hook"), Some("packed"));
    assert_eq!(header(&edits, "x-seen-path"), Some("/v1/items?page=2"));
    let names: Vec<&str> = req.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(header(&edits, "x-seen-headers"), Some(names.join(",").as_str()));

    let resp = ResponseHead {
        status: 418,
        headers: vec![("etag".into(), b"\"v\"".to_vec())],
    };
    let ResponseVerdict::Edit(edits) = raw.on_response_headers(&req, &resp).await.unwrap() else {
        panic!("expected an edit");
    };
    assert_eq!(header(&edits, "x-hook"), Some("packed"));
    assert_eq!(header(&edits, "x-seen-status"), Some("418"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packed_verdict_that_cannot_be_read_is_an_invalid_verdict() {
    let (_h, table) = raw_table().await;
    let raw = &table.chain("r").unwrap().plugins()[0];
    for (path, why) in [("/garbage", "tag 9 at byte 0"), ("/trailing", "1 bytes left over")] {
        let failure = raw.on_request_headers(&request("r", path)).await.unwrap_err();
        assert_eq!(failure.kind, FailureKind::InvalidVerdict, "{path}");
        assert!(
            failure.message.contains("packed verdict cannot be read"),
            "{path}: {}",
            failure.message
        );
        assert!(failure.message.contains(why), "{path}: {}", failure.message);
    }
    // The instance is still good: the next request is answered.
    assert!(raw.on_request_headers(&request("r", "/")).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_plugins_are_packed_and_a_plain_world_component_is_not() {
    let (_h, table) = table(&format!(
        "{}{}{}",
        plugin("good", wasm::GOOD, ""),
        plugin("frozen", wasm::FROZEN_0_1, ""),
        route("r", &["plugin = \"good\"", "plugin = \"frozen\""])
    ))
    .await;
    let plugins = table.chain("r").unwrap().plugins();
    assert!(plugins[0].has_packed_hooks(), "the SDK builds against plugin-packed");
    assert!(
        !plugins[1].has_packed_hooks(),
        "a 0.1.0 component has only the typed hooks"
    );
}
