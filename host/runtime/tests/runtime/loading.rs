//! Bad input at load time: each failure names the file, the plugin and the reason, and no
//! route table is produced.

use sluice_artifacts as wasm;

use super::support::{harness, plugin, route};

/// Loads a config with plugin `name` from `path` (plus one good plugin on another route)
/// and returns the error text.
async fn load_error(path: &str, extra: &str) -> String {
    let h = harness(&format!(
        "{}{}{}{}",
        plugin("good", wasm::GOOD, ""),
        plugin("suspect", path, extra),
        route("fine", &["plugin = \"good\""]),
        route("broken", &["plugin = \"suspect\""])
    ));
    let error = h.build().await.expect_err("the config must not load");
    assert_eq!(error.plugin, "suspect");
    let text = error.to_string();
    assert!(text.starts_with("plugin 'suspect' ("), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_is_not_wasm_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"#!/bin/sh\necho not wasm\n").unwrap();
    let text = load_error(junk.to_str().unwrap(), "").await;
    assert!(
        text.contains("junk.wasm") && text.contains("not a WebAssembly file"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_module_is_told_to_become_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap();
    let text = load_error(module.to_str().unwrap(), "").await;
    assert!(text.contains("core WebAssembly module, not a component"), "{text}");
    assert!(text.contains("wasm32-wasip2"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_file_is_named() {
    let text = load_error("/nonexistent/plugin.wasm", "").await;
    assert!(
        text.contains("/nonexistent/plugin.wasm") && text.contains("cannot read the file"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_another_world_lists_the_missing_exports() {
    let text = load_error(wasm::OTHER_WORLD, "").await;
    assert!(text.contains("does not export `describe`, `init`"), "{text}");
    assert!(text.contains("it exports: spin"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_of_another_major_wit_version_is_named() {
    let text = load_error(wasm::WRONG_VERSION, "").await;
    assert!(text.contains("built against sluice:plugin@1.0.0"), "{text}");
    assert!(text.contains("this host speaks sluice:plugin@0.1.5"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_the_plugin_rejects_is_named_with_the_route() {
    let text = load_error(wasm::GOOD, "config = { reject = true }").await;
    assert!(
        text.contains("on route 'broken': the plugin rejected its config"),
        "{text}"
    );
    assert!(text.contains("reject is true"), "{text}");

    let text = load_error(wasm::GOOD, "config = { colour = \"blue\" }").await;
    assert!(text.contains("unknown field `colour`"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_plugin_loads_and_describes_itself() {
    let h = harness(&format!(
        "{}{}",
        plugin("good", wasm::GOOD, ""),
        route("r", &["plugin = \"good\""])
    ));
    let table = h.build().await.unwrap();
    let loaded = &table.plugins()["good"];
    assert_eq!(loaded.info.name, "good");
    assert_eq!(loaded.info.max_body_bytes, Some(64));
    assert_eq!(loaded.info.hooks.len(), 4);
    assert_eq!(table.len(), 1);
}
