//! Streams that end badly: a client that goes away mid-stream, an upstream that breaks off
//! mid-body, and a reload that changes a plugin while a stream passes through it.

use std::time::Duration;

use http_body_util::BodyExt;
use sluice_artifacts as wasm;
use sluice_e2e::{Upstream, full, get, start_gateway};

fn config(upstream: &Upstream, tag: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"r\"\nupstream = \"app\"\nplugins = [{{ plugin = \"good\", config = {{ tag = \"{tag}\" }} }}]\n",
        upstream.addr,
        wasm::GOOD
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_cancels_the_upstream_stream() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream, "a")).await;
    {
        let resp = sluice_e2e::client()
            .request(hyper::Request::get(gw.url("/sse")).body(full("")).unwrap())
            .await
            .unwrap();
        let mut body = resp.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&first[..], b"data: event 1\n\n");
        // Dropping the body and the client closes the connection mid-stream.
    }
    let mut cancelled = false;
    for _ in 0..40 {
        if upstream.streams_dropped_early() == 1 {
            cancelled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cancelled, "the upstream kept streaming to nobody");
    assert_eq!(get(&gw.url("/echo")).await.status, 200, "the gateway serves on");
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    assert_eq!(
        stats["upstreams"][0]["targets"][0]["in_flight"], 0,
        "nothing is left in flight"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_breaks_off_mid_body_ends_the_clients_body_with_an_error() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream, "a")).await;
    let resp = sluice_e2e::client()
        .request(hyper::Request::get(gw.url("/reset")).body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the head was already on its way");
    let read = tokio::time::timeout(Duration::from_secs(5), resp.into_body().collect()).await;
    assert!(
        read.expect("the body must end, not hang").is_err(),
        "a truncated body must not look complete"
    );
    assert_eq!(get(&gw.url("/echo")).await.status, 200, "the gateway serves on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_a_plugin_leaves_streams_in_flight_untouched() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&config(&upstream, "old")).await;
    let resp = sluice_e2e::client()
        .request(hyper::Request::get(gw.url("/sse")).body(full("")).unwrap())
        .await
        .unwrap();
    let values: Vec<_> = resp
        .headers()
        .get_all("x-resp-chain")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(values, ["old"]);
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(&first[..], b"data: event 1\n\n");

    let reloaded = gw.reload_with(&config(&upstream, "new")).await;
    assert_eq!(reloaded.status, 200);

    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(
        &rest[..],
        b"data: event 2\n\ndata: event 3\n\n",
        "the stream finished on the old table"
    );
    let after = get(&gw.url("/echo")).await;
    assert_eq!(
        after.json()["headers"]["x-chain"],
        "new",
        "new requests use the new plugin config"
    );
}
