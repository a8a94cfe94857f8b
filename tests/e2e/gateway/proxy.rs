//! The proxy path with and without plugins.

use sluice_artifacts as wasm;
use sluice_e2e::{Upstream, full, get, send, start_gateway};

fn simple(upstream: &Upstream, plugins: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"app\"\nmatch = {{ path_prefix = \"/\" }}\nupstream = \"app\"\nplugins = [{plugins}]\n",
        upstream.addr,
        wasm::GOOD
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_reach_the_upstream_with_forwarding_headers_and_come_back_with_ids() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(&upstream, "")).await;
    let req = hyper::Request::get(gw.url("/echo?x=1"))
        .header("x-request-id", "client-id-1")
        .header("connection", "keep-alive, x-private")
        .header("x-private", "secret")
        .body(full(""))
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("x-request-id"), Some("client-id-1"));
    assert!(answer.header("x-response-time").unwrap().ends_with("ms"));
    assert_eq!(answer.header("x-upstream"), Some("yes"));
    assert_eq!(
        answer.header("keep-alive"),
        None,
        "hop-by-hop response headers are removed"
    );
    let seen = answer.json();
    assert_eq!(seen["uri"], "/echo?x=1");
    let h = &seen["headers"];
    assert_eq!(h["x-request-id"], "client-id-1");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["via"], "1.1 sluice");
    assert!(h.get("x-private").is_none(), "headers named by Connection are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_request_id_goes_upstream_and_back() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(&upstream, "")).await;
    let answer = get(&gw.url("/")).await;
    let id = answer.header("x-request-id").unwrap().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(answer.json()["headers"]["x-request-id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correlation_id_comes_back_under_its_own_name() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(&upstream, "")).await;
    let req = hyper::Request::get(gw.url("/echo"))
        .header("x-correlation-id", "corr-7")
        .body(full(""))
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.header("x-correlation-id"), Some("corr-7"));
    assert_eq!(answer.header("x-request-id"), Some("corr-7"));
    let seen = &answer.json()["headers"];
    assert_eq!(
        seen["x-correlation-id"], "corr-7",
        "the client's header goes upstream as sent"
    );
    assert_eq!(seen["x-request-id"], "corr-7");

    // Renamed headers: the id travels as `x-trace-id`, read from `request-id`.
    let renamed = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nrequest_id_header = \"x-trace-id\"\nrequest_id_sources = [\"request-id\"]\n{}",
        simple(&upstream, "")
    );
    let gw = start_gateway(&renamed).await;
    let req = hyper::Request::get(gw.url("/echo"))
        .header("request-id", "r-9")
        .header("x-correlation-id", "not-a-source")
        .body(full(""))
        .unwrap();
    let answer = send(req).await;
    assert_eq!(answer.header("x-trace-id"), Some("r-9"));
    assert_eq!(answer.header("request-id"), Some("r-9"));
    assert_eq!(answer.header("x-request-id"), None);
    assert_eq!(answer.json()["headers"]["x-trace-id"], "r-9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_edits_reach_the_upstream_and_the_client() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(
        &upstream,
        "{ plugin = \"good\", config = { tag = \"a\" } }, { plugin = \"good\", config = { tag = \"b\" } }",
    ))
    .await;
    let answer = get(&gw.url("/echo")).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["headers"]["x-chain"], "a,b");
    assert_eq!(answer.header("x-upstream-status"), Some("200"));
    let values: Vec<_> = answer
        .headers
        .get_all("x-resp-chain")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(values, ["b", "a"], "response hooks run in reverse");

    let local = get(&gw.url("/respond")).await;
    assert_eq!(local.status, 418);
    assert_eq!(local.json()["tag"], "a");
    assert_eq!(upstream.hits(), 1, "a local answer never reaches the upstream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmatched_requests_get_a_json_404() {
    let upstream = Upstream::start().await;
    let toml = format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"api\"\nmatch = {{ path_prefix = \"/api\", methods = [\"GET\"] }}\nupstream = \"app\"\n",
        upstream.addr
    );
    let gw = start_gateway(&toml).await;
    assert_eq!(get(&gw.url("/api/x")).await.status, 200);
    let miss = get(&gw.url("/other")).await;
    assert_eq!(miss.status, 404);
    assert_eq!(miss.json()["error"], "no_route");
    assert_eq!(miss.header("content-type"), Some("application/json"));
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_sent_events_arrive_as_the_upstream_sends_them() {
    use http_body_util::BodyExt;
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(&upstream, "{ plugin = \"good\" }")).await;
    let resp = sluice_e2e::client()
        .request(hyper::Request::get(gw.url("/gated")).body(full("")).unwrap())
        .await
        .unwrap();
    let mut body = resp.into_body();
    // The upstream holds the second event back until the test releases it: a gateway that
    // buffered would never deliver the first one, and the timeout fails the test.
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
        .await
        .expect("the first event was held back")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"data: event 1\n\n");
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    assert_eq!(
        stats["upstreams"][0]["targets"][0]["in_flight"], 1,
        "a stream counts as in flight until it ends"
    );
    upstream.release();
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(&rest[..], b"data: event 2\n\ndata: event 3\n\n");
    let stats = get(&gw.admin_url("/admin/stats")).await.json();
    assert_eq!(stats["upstreams"][0]["targets"][0]["in_flight"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_with_prior_knowledge_is_served() {
    use http_body_util::BodyExt;
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(&upstream, "")).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<sluice_e2e::Body>();
    let resp = client
        .request(hyper::Request::get(gw.url("/echo")).body(full("")).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.version(), hyper::Version::HTTP_2);
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let seen: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(seen["uri"], "/echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upstream_sees_the_host_the_route_was_chosen_by() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&simple(&upstream, "")).await;
    let request = "GET http://public.example/echo HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n";
    let answer = sluice_e2e::raw(gw.running.addr, request.as_bytes()).await;
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    let seen: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(seen["headers"]["host"], "public.example");
    assert_eq!(seen["headers"]["x-forwarded-host"], "public.example");
}
