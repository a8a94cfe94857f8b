//! The admin API: its own listener, the bearer token, health, readiness, stats and metrics.

use sluice_artifacts as wasm;
use sluice_e2e::{Upstream, full, get, send, start_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_needs_its_token_and_reports_the_gateway() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\n\
         [upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n",
        upstream.addr,
        wasm::GOOD
    ))
    .await;
    assert_eq!(get(&gw.url("/echo")).await.status, 200);

    let denied = get(&gw.admin_url("/admin/health")).await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.header("www-authenticate"), Some("Bearer realm=\"sluice-admin\""));
    let wrong = send(
        hyper::Request::get(gw.admin_url("/admin/health"))
            .header("authorization", "Bearer nope")
            .body(full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 401);

    let authed = |path: &str| {
        hyper::Request::get(gw.admin_url(path))
            .header("authorization", "Bearer s3cret")
            .body(full(""))
            .unwrap()
    };
    assert_eq!(send(authed("/admin/health")).await.json()["status"], "ok");
    assert_eq!(send(authed("/admin/ready")).await.json()["ready"], true);
    let stats = send(authed("/admin/stats")).await.json();
    assert_eq!(stats["routes"][0]["name"], "r");
    assert_eq!(stats["routes"][0]["plugins"][0]["plugin"], "good");
    assert_eq!(stats["upstreams"][0]["targets"][0]["requests"], 1);
    let metrics = String::from_utf8(send(authed("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_requests_total{route=\"r\",status=\"2xx\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_plugin_hook_seconds_count{hook=\"on-request-headers\",plugin=\"good\"} 1"),
        "{metrics}"
    );
    // The admin API is not on the public listener.
    assert_eq!(get(&gw.url("/admin/stats")).await.json()["headers"]["x-chain"], "good");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_and_metrics_report_pool_reuse_and_ready_reports_each_dependency() {
    let upstream = Upstream::start().await;
    // A port nothing listens on: connections to it are refused.
    let refused = format!("127.0.0.1:{}", sluice_e2e::closed_port());
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [upstreams.gone]\ntargets = [\"{refused}\"]\nbreaker_failures = 1\nbreaker_open_ms = 60000\nretries = 0\n\
         [[routes]]\nname = \"gone\"\nmatch = {{ path_prefix = \"/gone\" }}\nupstream = \"gone\"\n\
         [[routes]]\nname = \"app\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["dependencies"]["upstreams"]["app"]["state"], "up");
    assert_eq!(ready["dependencies"]["postgres"]["state"], "not-configured");
    assert_eq!(ready["dependencies"]["redis"]["state"], "not-configured");

    for _ in 0..10 {
        assert_eq!(get(&gw.url("/echo")).await.status, 200);
    }
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    let app = stats["upstreams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "app")
        .unwrap()["targets"][0]
        .clone();
    assert_eq!(app["requests"], 10, "{app}");
    let opened = app["connections_opened"].as_u64().unwrap();
    assert!(
        (1..=3).contains(&opened),
        "sequential requests share pooled connections: {app}"
    );
    assert_eq!(
        app["connection_reuse_rate"].as_f64().unwrap(),
        1.0 - opened as f64 / 10.0
    );
    assert!(app["connections_open"].as_u64().unwrap() >= 1, "{app}");
    assert_eq!(
        app["pool_utilization"].as_f64().unwrap(),
        0.0,
        "nothing in flight: {app}"
    );

    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    let target = format!("target=\"{}\",upstream=\"app\"", upstream.addr);
    for series in [
        format!("sluice_upstream_requests_total{{{target}}} 10"),
        format!("sluice_upstream_connections_opened_total{{{target}}} {opened}"),
        format!("sluice_upstream_pool_utilization{{{target}}} 0"),
        format!(
            "sluice_upstream_connection_reuse_ratio{{{target}}} {}",
            1.0 - opened as f64 / 10.0
        ),
    ] {
        assert!(metrics.contains(&series), "{series} missing from\n{metrics}");
    }

    // The refused upstream opens its breaker: readiness says degraded, and which one.
    assert_eq!(get(&gw.url("/gone")).await.status, 502);
    let ready = get(&gw.admin_url("/admin/ready")).await.json();
    assert_eq!(ready["status"], "degraded", "{ready}");
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["dependencies"]["upstreams"]["gone"]["state"], "down");
    assert_eq!(ready["dependencies"]["upstreams"]["app"]["state"], "up");
}
