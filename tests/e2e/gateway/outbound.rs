//! Outbound HTTP from plugins (`http-client`) through the gateway's pooled client: a granted
//! host answers in full, other hosts are refused, budgets, body backends and dead servers give
//! clear errors, and https trusts the configured CA (and only it, beside the system's).

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_artifacts as wasm;
use sluice_e2e::{Answer, Upstream, closed_port, full, send, start_gateway};

/// Plugin `call` (the http-call test plugin) on every path, calling `url`, granted `hosts`.
fn calling(url: &str, hosts: &str) -> String {
    format!(
        "[plugins.call]\nmodule = {:?}\ngrants = {{ http = {{ hosts = {hosts} }} }}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"r\"\nplugins = [{{ plugin = \"call\", config = {{ url = \"{url}\" }} }}]\n",
        wasm::HTTP_CALL
    )
}

async fn ask(gw: &sluice_e2e::Gateway, headers: &[(&str, &str)]) -> Answer {
    let mut request = hyper::Request::get(gw.url("/"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request.body(full("")).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_host_answers_in_full() {
    let upstream = Upstream::start().await;
    let gw = start_gateway(&calling(
        &format!("http://{}/echo?q=1", upstream.addr),
        r#"["127.0.0.1"]"#,
    ))
    .await;
    let answer = ask(&gw, &[("x-forward", "hello")]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    let echoed = answer.json();
    assert_eq!(echoed["uri"], "/echo?q=1");
    assert_eq!(echoed["headers"]["x-forwarded-by-plugin"], "hello");
    assert_eq!(answer.header("content-type"), Some("application/json"));

    // The upstream's status reaches the plugin as it is; the pooled connection is reused.
    let teapot = start_gateway(&calling(
        &format!("http://{}/status/418", upstream.addr),
        r#"["127.0.0.1"]"#,
    ))
    .await;
    for _ in 0..3 {
        assert_eq!(ask(&teapot, &[]).await.status, 418);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_budgets_caps_and_dead_servers_are_clear_errors() {
    let upstream = Upstream::start().await;
    let error = |answer: &Answer| -> Value {
        assert_eq!(answer.status, 502, "{:?}", answer.body);
        answer.json()["error"].clone()
    };

    let elsewhere = start_gateway(&calling(
        &format!("http://{}/echo", upstream.addr),
        r#"["api.example.com"]"#,
    ))
    .await;
    let answer = ask(&elsewhere, &[]).await;
    assert_eq!(error(&answer), "denied");
    assert!(answer.json()["message"].as_str().unwrap().contains("not granted"));

    let slow = start_gateway(&calling(&format!("http://{}/slow", upstream.addr), r#"["127.0.0.1"]"#)).await;
    let started = Instant::now();
    assert_eq!(error(&ask(&slow, &[("x-timeout-ms", "200")]).await), "timeout");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the budget cut the call short"
    );

    let capped = start_gateway(&format!(
        "[http_client]\nmax_response_bytes = 50\n{}",
        calling(&format!("http://{}/echo", upstream.addr), r#"["127.0.0.1"]"#)
    ))
    .await;
    let answer = ask(&capped, &[]).await;
    assert_eq!(error(&answer), "limit", "{:?}", answer.body);

    let dead = start_gateway(&calling(
        &format!("http://127.0.0.1:{}/", closed_port()),
        r#"["127.0.0.1"]"#,
    ))
    .await;
    assert_eq!(error(&ask(&dead, &[]).await), "unavailable");

    let junk = start_gateway(&calling("ftp://127.0.0.1/x", r#"["127.0.0.1"]"#)).await;
    assert_eq!(error(&ask(&junk, &[]).await), "invalid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_trusts_the_configured_ca() {
    let upstream = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    // The https server: a gateway with TLS in front of the upstream.
    let secure = start_gateway(&format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ntls = {{ cert = {cert_path:?}, key = {key_path:?} }}\n\
         [upstreams.app]\ntargets = [\"{}\"]\n[[routes]]\nname = \"r\"\nupstream = \"app\"\n",
        upstream.addr
    ))
    .await;
    let url = format!("https://localhost:{}/echo", secure.running.addr.port());

    let trusting = start_gateway(&format!(
        "[http_client]\nca_file = {cert_path:?}\n{}",
        calling(&url, r#"["localhost"]"#)
    ))
    .await;
    let answer = ask(&trusting, &[]).await;
    assert_eq!(answer.status, 200, "{:?}", answer.body);
    assert_eq!(answer.json()["headers"]["x-forwarded-proto"], json!("https"));

    let wary = start_gateway(&calling(&url, r#"["localhost"]"#)).await;
    let answer = ask(&wary, &[]).await;
    assert_eq!(answer.status, 502);
    assert_eq!(answer.json()["error"], "unavailable");
    assert!(
        answer.json()["message"].as_str().unwrap().contains("certificate"),
        "{:?}",
        answer.body
    );
}
