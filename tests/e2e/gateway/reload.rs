//! Hot reload: a new config is swapped in whole, a broken one changes nothing, reloads under
//! load lose no request, and shutdown drains requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sluice_e2e::{Upstream, full, get, start_gateway};

fn routes(upstream: &Upstream, prefix: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"r\"\nmatch = {{ path_prefix = \"{prefix}\" }}\nupstream = \"app\"\n",
        upstream.addr
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_config_is_swapped_in_and_a_broken_one_changes_nothing() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&routes(&upstream, "/v1")).await;
    assert_eq!(get(&gw.url("/v1/x")).await.status, 200);
    assert_eq!(get(&gw.url("/v2/x")).await.status, 404);

    let answer = gw.reload_with(&routes(&upstream, "/v2")).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(get(&gw.url("/v2/x")).await.status, 200);
    assert_eq!(get(&gw.url("/v1/x")).await.status, 404);

    let answer = gw
        .reload_with(&format!("{}\nnot_a_key = 1\n", routes(&upstream, "/v3")))
        .await;
    assert_eq!(answer.status, 422);
    assert!(
        answer.json()["error"]
            .as_str()
            .unwrap()
            .contains("unknown field `not_a_key`")
    );
    assert_eq!(
        get(&gw.url("/v2/x")).await.status,
        200,
        "the previous config still serves"
    );

    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    assert_eq!(stats["last_reload"]["ok"], false);
    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_reloads_under_load_lose_no_request() {
    let upstream = Upstream::start().await;
    let gw = Arc::new(start_gateway(&routes(&upstream, "/")).await);
    let failures = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (gw, failures, done, stop) = (gw.clone(), failures.clone(), done.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let client = sluice_e2e::client();
            while !stop.load(Ordering::Relaxed) {
                let req = hyper::Request::get(gw.url("/echo")).body(full("")).unwrap();
                match client.request(req).await {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
                    }
                    _ => {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for i in 0..100 {
        // Alternate between two equivalent configs so every reload really builds a new table.
        let prefix = if i % 2 == 0 { "/" } else { "/echo" };
        assert_eq!(gw.reload_with(&routes(&upstream, prefix)).await.status, 200);
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(done.load(Ordering::Relaxed) > 100, "the load generator ran");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_in_flight() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&routes(&upstream, "/")).await;
    let url = gw.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url).await.status });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let addr = gw.running.addr;
    gw.running.shutdown().await;
    assert_eq!(in_flight.await.unwrap(), 200, "the request in flight finished");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no new connections are accepted"
    );
}
