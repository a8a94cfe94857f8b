//! Upstream faults and plugin failures, answered with JSON that says which upstream and why.

use sluice_artifacts as wasm;
use sluice_e2e::{Upstream, get, start_gateway};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_refuses_connections_gives_502() {
    // A port that was free a moment ago: nothing listens there.
    let port = sluice_e2e::closed_port();
    let gw = start_gateway(&format!(
        "[upstreams.gone]\ntargets = [\"127.0.0.1:{port}\"]\n[[routes]]\nname = \"r\"\nupstream = \"gone\"\n"
    ))
    .await;
    let answer = get(&gw.url("/")).await;
    assert_eq!(answer.status, 502);
    let body = answer.json();
    assert_eq!(body["error"], "upstream_unreachable");
    assert_eq!(body["upstream"], "gone");
    assert!(body["message"].as_str().unwrap().contains(&port.to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_gives_504_after_the_timeout() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\nrequest_timeout_ms = 300\n[[routes]]\nname = \"r\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    let answer = get(&gw.url("/slow")).await;
    assert_eq!(answer.status, 504);
    assert_eq!(answer.json()["error"], "upstream_timeout");
    assert_eq!(answer.json()["upstream"], "app");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_plugin_answers_per_its_policy_and_the_next_request_is_served() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.panicker]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"closed\"\nmatch = {{ headers = {{ x-policy = \"closed\" }} }}\nupstream = \"app\"\nplugins = [{{ plugin = \"panicker\" }}]\n\
         [[routes]]\nname = \"open\"\nupstream = \"app\"\nplugins = [{{ plugin = \"panicker\", fail = \"open\" }}]\n",
        upstream.addr,
        wasm::PANICKER
    ))
    .await;
    // The panicker panics on the path /panic.
    let closed = sluice_e2e::send(
        hyper::Request::get(gw.url("/panic"))
            .header("x-policy", "closed")
            .body(sluice_e2e::full(""))
            .unwrap(),
    )
    .await;
    assert_eq!(closed.status, 500);
    let body = closed.json();
    assert_eq!(
        (body["error"].as_str(), body["plugin"].as_str(), body["kind"].as_str()),
        (Some("plugin_failed"), Some("panicker"), Some("trap"))
    );
    assert_eq!(body["request_id"].as_str(), closed.header("x-request-id"));
    let open = get(&gw.url("/panic")).await;
    assert_eq!(open.status, 200, "fail-open skips the plugin");
    assert!(open.json()["headers"].get("x-panicker").is_none());
    assert_eq!(upstream.hits(), 1, "the fail-closed request never went upstream");
    let fine = get(&gw.url("/fine")).await;
    assert_eq!(fine.json()["headers"]["x-panicker"], "ok");
}
