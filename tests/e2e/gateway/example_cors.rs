//! The JavaScript example plugin (`examples/js-cors`), built here the way its README says
//! (`npm ci`, `npm run build` with componentize-js) and run in the gateway: preflights are
//! answered at the gateway, allowed cross-origin responses get the CORS headers, refused
//! origins, methods and headers get 403 and never reach the upstream, and a bad config is
//! refused on reload with the plugin's own message.

use bytes::Bytes;
use sluice_e2e::{Answer, Gateway, Upstream, examples, full, get, send, start_gateway};

fn config(wasm: &std::path::Path, upstream: &Upstream, policy: &str) -> String {
    format!(
        "[upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.cors]\nmodule = {wasm:?}\n\
         [[routes]]\nname = \"api\"\nupstream = \"app\"\n\
         plugins = [{{ plugin = \"cors\", config = {policy} }}]\n",
        upstream.addr
    )
}

async fn request(gw: &Gateway, method: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = hyper::Request::builder().method(method).uri(gw.url("/api/orders"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    send(req.body(full(Bytes::new())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_javascript_example_enforces_a_cors_policy() {
    let wasm = examples::build_js("js-cors", "cors.wasm");
    let upstream = Upstream::start().await;
    let policy = "{ allow_origins = [\"https://app.example.com\", \"https://*.example.org\"], \
                  allow_methods = [\"GET\", \"PUT\"], allow_headers = [\"content-type\"], \
                  expose_headers = [\"x-upstream\"], allow_credentials = true, max_age_s = 120 }";
    let gw = start_gateway(&config(&wasm, &upstream, policy)).await;

    let preflight = request(
        &gw,
        "OPTIONS",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "Content-Type"),
        ],
    )
    .await;
    assert_eq!(preflight.status, 204, "{:?}", preflight.body);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(preflight.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("content-type"));
    assert_eq!(preflight.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(preflight.header("access-control-max-age"), Some("120"));
    assert_eq!(upstream.hits(), 0, "a preflight is answered at the gateway");

    let allowed = request(&gw, "GET", &[("origin", "https://eu.example.org")]).await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("x-upstream"), Some("yes"));
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://eu.example.org")
    );
    assert_eq!(allowed.header("access-control-expose-headers"), Some("x-upstream"));
    let vary: Vec<&str> = allowed
        .headers
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(vary.iter().any(|v| v.contains("origin")), "vary: {vary:?}");
    assert_eq!(upstream.hits(), 1);

    let plain = get(&gw.url("/api/orders")).await;
    assert_eq!(plain.status, 200);
    assert!(
        plain.header("access-control-allow-origin").is_none(),
        "no Origin, no CORS headers"
    );
    assert_eq!(upstream.hits(), 2);

    let refusals = [
        ("GET", vec![("origin", "https://evil.test")], "cors_origin_refused"),
        (
            "OPTIONS",
            vec![
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "DELETE"),
            ],
            "cors_method_refused",
        ),
        (
            "OPTIONS",
            vec![
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-admin"),
            ],
            "cors_headers_refused",
        ),
    ];
    for (method, headers, code) in refusals {
        let refused = request(&gw, method, &headers).await;
        assert_eq!((refused.status, refused.json()["error"].as_str().unwrap()), (403, code));
    }
    assert_eq!(upstream.hits(), 2, "no refused request reached the upstream");
    let metrics = String::from_utf8(get(&gw.admin_url("/metrics")).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("sluice_plugin_refused_total{plugin=\"cors\"} 3"),
        "{metrics}"
    );
    // The runtime the component carries (over half the default 16 MiB) is not growth: the
    // instance is reused, not replaced after every call.
    assert!(
        metrics.contains("sluice_plugin_instances_recycled_total{plugin=\"cors\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sluice_plugin_preflights_total{plugin=\"cors\"} 1"),
        "{metrics}"
    );

    // A config the plugin refuses: the reload fails with its message, the old policy stays.
    let bad = config(&wasm, &upstream, "{ allow_origins = \"*\", allow_credentials = true }");
    let reload = gw.reload_with(&bad).await;
    assert_eq!(reload.status, 422);
    let error = reload.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("cannot be combined with `allow_credentials = true`"),
        "{error}"
    );
    let still = request(&gw, "GET", &[("origin", "https://app.example.com")]).await;
    assert_eq!(
        still.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
}
