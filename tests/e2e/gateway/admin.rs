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
