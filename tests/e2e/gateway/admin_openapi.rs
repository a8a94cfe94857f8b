//! The admin API against its OpenAPI document (`docs/admin-openapi.yaml`): a gateway with
//! every backend (Postgres, Redis, sinks, a GPU fleet, an admin token) and one with none answer
//! every documented operation, and each answer's status, content type and JSON body are checked
//! against the document with a JSON Schema 2020-12 validator. Every documented response is
//! produced at least once, and nothing is answered that the document does not list.

use std::collections::BTreeSet;

use bytes::Bytes;
use serde_json::{Value, json};
use sluice_artifacts as wasm;
use sluice_e2e::postgres::TestDatabase;
use sluice_e2e::redis::{REDIS, prefix};
use sluice_e2e::{Answer, Upstream, config_text, full, send, start_gateway};

use super::gpu_route::{fleet_config, sim, sim_config};

const DOCUMENT: &str = include_str!("../../../docs/admin-openapi.yaml");
pub(super) const TOKEN: &str = "openapi-t0ken";

/// The document as JSON.
fn document() -> Value {
    serde_yaml::from_str(DOCUMENT).expect("docs/admin-openapi.yaml is valid YAML")
}

/// The operations and responses the document lists: (path, method, status).
fn documented(doc: &Value) -> BTreeSet<(String, String, String)> {
    let mut all = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            for status in op["responses"].as_object().expect("responses").keys() {
                all.insert((path.clone(), method.clone(), status.clone()));
            }
        }
    }
    all
}

/// Checks one answer against the document and records it as seen.
struct Checker {
    doc: Value,
    seen: BTreeSet<(String, String, String)>,
}

impl Checker {
    fn check(&mut self, method: &str, path: &str, answer: &Answer) {
        let status = answer.status.to_string();
        let listed = &self.doc["paths"][path][method]["responses"][&status];
        assert!(
            listed.is_object(),
            "{method} {path} answered {status}, which the document does not list: {:?}",
            answer.body
        );
        self.seen.insert((path.to_string(), method.to_string(), status.clone()));
        let content_type = answer.header("content-type").unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        let media = &listed["content"][essence];
        assert!(
            media.is_object(),
            "{method} {path} {status} came as {content_type:?}, not a content type the document lists"
        );
        if essence != "application/json" {
            return;
        }
        let root = json!({ "components": self.doc["components"], "allOf": [media["schema"]] });
        let validator = jsonschema::draft202012::new(&root).expect("the schema compiles");
        let body: Value = answer.json();
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{method} {path} {status} does not match the document:\n{}\n{body:#}",
            errors.join("\n")
        );
    }
}

async fn call(url: String, method: &str, token: Option<&str>, body: Bytes) -> Answer {
    let mut req = hyper::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    if !body.is_empty() {
        req = req.header("content-type", "application/json");
    }
    send(req.body(full(body)).unwrap()).await
}

/// A gateway with every backend: Postgres with sinks, Redis, an upstream with a plugin route,
/// a GPU fleet of one simulated backend, and an admin token.
pub(super) fn full_config(db: &TestDatabase, upstream: &Upstream, gpu_entry: &super::gpu_route::SimBackend) -> String {
    let extra = format!(
        "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"{TOKEN}\"\n\
         [postgres]\nurl = {:?}\n[sinks]\nrequest_telemetry = true\nbatch_rows = 100\nflush_ms = 200\n\
         [redis]\nurl = \"redis://{REDIS}\"\nprefix = \"{}\"\n\
         [upstreams.app]\ntargets = [\"{}\"]\n\
         [plugins.good]\nmodule = {:?}\nlimits = {{ cpu_ms = 1000 }}\n\
         [[routes]]\nname = \"app\"\nmatch = {{ path_prefix = \"/app\" }}\nupstream = \"app\"\nplugins = [{{ plugin = \"good\" }}]\n",
        db.url,
        prefix(),
        upstream.addr,
        wasm::GOOD
    );
    fleet_config(&[gpu_entry], "", &extra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_answer_matches_the_openapi_document() {
    let doc = document();
    let mut checker = Checker {
        doc: doc.clone(),
        seen: BTreeSet::new(),
    };
    let upstream = Upstream::start().await;
    let db = TestDatabase::create("openapi").await;
    let backend = sim("gpu-a", sim_config(&[("m1", true)], 2, 1), 2).await;
    let config = full_config(&db, &upstream, &backend);
    let gw = start_gateway(&config).await;
    assert_eq!(
        send(hyper::Request::get(gw.url("/app/x")).body(full("")).unwrap())
            .await
            .status,
        200
    );

    let admin = |path: &str| gw.admin_url(path);
    let token = Some(TOKEN);
    for path in [
        "/admin/health",
        "/admin/ready",
        "/admin/stats",
        "/metrics",
        "/admin/gpu",
        "/openapi.yaml",
        "/",
        "/dashboard.js",
        "/charts.js",
        "/dashboard.css",
        "/admin/history",
        "/admin/config",
        "/admin/reloads",
    ] {
        let answer = call(admin(path), "GET", token, Bytes::new()).await;
        checker.check("get", path, &answer);
    }
    // The sampler has taken at least one sample within two seconds of start-up.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let history = call(admin("/admin/history?since=0"), "GET", token, Bytes::new()).await;
    checker.check("get", "/admin/history", &history);
    assert!(
        !history.json()["samples"].as_array().unwrap().is_empty(),
        "samples are kept"
    );
    let bad_since = call(admin("/admin/history?since=yesterday"), "GET", token, Bytes::new()).await;
    checker.check("get", "/admin/history", &bad_since);
    let shown = call(admin("/admin/config"), "GET", token, Bytes::new()).await.json();
    assert!(
        !shown["toml"].as_str().unwrap().contains(TOKEN) && shown["toml"].as_str().unwrap().contains("[redacted]"),
        "the admin token is redacted: {shown}"
    );
    let served = call(admin("/openapi.yaml"), "GET", token, Bytes::new()).await;
    assert_eq!(
        served.body,
        DOCUMENT.as_bytes(),
        "the listener serves the document in the repository"
    );

    let invalidate = "/admin/cache/invalidate";
    for body in [json!({ "prefix": "/app" }), json!({ "target": "/a", "tag": "t" })] {
        let answer = call(admin(invalidate), "POST", token, body.to_string().into()).await;
        checker.check("post", invalidate, &answer);
    }
    let huge = Bytes::from(vec![b' '; 70 << 10]);
    checker.check("post", invalidate, &call(admin(invalidate), "POST", token, huge).await);

    let reloaded = call(admin("/admin/reload"), "POST", token, Bytes::new()).await;
    checker.check("post", "/admin/reload", &reloaded);
    std::fs::write(
        &gw.config_path,
        config_text(&format!("{config}[[routes]]\nname = \"app\"\n")),
    )
    .unwrap();
    let refused = call(admin("/admin/reload"), "POST", token, Bytes::new()).await;
    assert_eq!(refused.status, 422, "a config with a duplicate route is refused");
    checker.check("post", "/admin/reload", &refused);

    // Without the token, every operation is refused but the dashboard's own files.
    for (path, method, _) in documented(&doc) {
        let url = admin(&path.replace("{unknown}", "nothing-here"));
        let answer = call(url, &method.to_uppercase(), None, Bytes::new()).await;
        let public = doc["paths"][&path][&method]["security"] == json!([]);
        let expected = if public { 200 } else { 401 };
        assert_eq!(answer.status, expected, "{method} {path} without the token");
        checker.check(&method, &path, &answer);
    }
    let unknown = call(admin("/admin/nothing-here"), "GET", token, Bytes::new()).await;
    assert_eq!(unknown.status, 404);
    checker.check("get", "/{unknown}", &unknown);

    // A gateway with nothing configured: no token, no backends, no fleet.
    let bare = start_gateway("").await;
    for path in ["/admin/ready", "/admin/stats", "/admin/gpu"] {
        checker.check(
            "get",
            path,
            &call(bare.admin_url(path), "GET", None, Bytes::new()).await,
        );
    }

    let missing: Vec<_> = documented(&doc).difference(&checker.seen).cloned().collect();
    assert!(missing.is_empty(), "documented but never answered here: {missing:?}");
}
