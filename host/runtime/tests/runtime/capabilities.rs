//! Backends through real plugins: granted kv and cache work, granted-but-unbacked
//! capabilities answer `not-configured`, and grants are narrowed to commands, statements and
//! hosts.

use sluice_artifacts as wasm;
use sluice_runtime::{NoBody, RequestOutcome, RouteTable};

use super::support::{header, plugin, request, route, table};

async fn answer(table: &RouteTable, route: &str, path: &str) -> String {
    let mut head = request(route, path);
    match table
        .chain(route)
        .unwrap()
        .on_request(&mut head, &mut NoBody, &mut Default::default())
        .await
    {
        RequestOutcome::Respond { response, .. } => String::from_utf8(response.body).unwrap(),
        other => panic!("{path}: expected an answer, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_capabilities_without_a_backend_say_not_configured() {
    let grants = r#"grants = { kv = true, cache = true, gpu = true, redis = { commands = ["GET"] }, postgres = { any = true }, http = { hosts = ["127.0.0.1"] } }"#;
    let (_h, table) = table(&format!(
        "{}{}",
        plugin("u", wasm::UNGRANTED, grants),
        route("r", &["plugin = \"u\""])
    ))
    .await;
    assert_eq!(answer(&table, "r", "/kv").await, "granted");
    assert_eq!(answer(&table, "r", "/cache").await, "granted");
    for (path, cap) in [
        ("/redis", "redis"),
        ("/postgres", "postgres"),
        ("/http", "http-client"),
        ("/gpu", "gpu"),
    ] {
        assert_eq!(
            answer(&table, "r", path).await,
            format!("not-configured: {cap}: no {cap} backend is configured on this gateway (plugin 'u')")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_name_commands_statements_and_hosts() {
    let grants = r#"grants = { redis = { commands = ["SET"] }, postgres = { statements = ["lookup"] }, http = { hosts = ["auth.example"] } }"#;
    let (_h, table) = table(&format!(
        "{}{}",
        plugin("u", wasm::UNGRANTED, grants),
        route("r", &["plugin = \"u\""])
    ))
    .await;
    assert_eq!(
        answer(&table, "r", "/redis").await,
        "denied: redis: command 'GET' is not granted to plugin 'u'"
    );
    assert_eq!(
        answer(&table, "r", "/postgres").await,
        "denied: postgres: statement 'select 1' is not granted to plugin 'u'"
    );
    assert_eq!(
        answer(&table, "r", "/http").await,
        "denied: http-client: host '127.0.0.1:1' is not granted to plugin 'u'"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_can_override_a_plugins_grants() {
    let (_h, table) = table(&format!(
        "{}{}{}",
        plugin("u", wasm::UNGRANTED, ""),
        route("plain", &["plugin = \"u\""]),
        route("granted", &["plugin = \"u\"\ngrants = { kv = true }"])
    ))
    .await;
    assert!(answer(&table, "plain", "/kv").await.starts_with("denied: kv"));
    assert_eq!(answer(&table, "granted", "/kv").await, "granted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_and_cache_work_for_a_granted_plugin_and_metrics_are_exported() {
    let (h, table) = table(&format!(
        "{}{}",
        plugin("good", wasm::GOOD, "grants = { kv = true, cache = true }"),
        route("r", &["plugin = \"good\""])
    ))
    .await;
    let chain = table.chain("r").unwrap();
    for expected in ["1", "2", "3"] {
        let mut head = request("r", "/kv");
        chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await;
        assert_eq!(header(&head.headers, "x-kv-hits").as_deref(), Some(expected));
    }
    for expected in ["0", "1"] {
        let mut head = request("r", "/cache");
        chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await;
        assert_eq!(header(&head.headers, "x-cache-hit").as_deref(), Some(expected));
    }
    assert!(h.runtime.backends().cache.lookup("page").is_some());
    let text = h.runtime.backends().metrics.render_prometheus();
    assert!(text.contains("sluice_plugin_requests{plugin=\"good\"} 5"), "{text}");
}
