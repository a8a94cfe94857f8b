//! The three example plugins side by side (`examples/rust-signature`, `examples/js-cors`,
//! `examples/python-json-guard`), built the way their READMEs say: each hook a passing request
//! runs on a pooled instance, the same hook on a fresh instance (instantiate + `init` + hook),
//! compiling the component with Cranelift and loading it from the AOT cache. Component sizes go
//! to `target/criterion/plugin_languages_sizes.json` under the repository root.
//!
//! Run: `bench/plugin-languages` (this benchmark, then the table and ratios the docs record).

use std::hint::black_box;
use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use sluice_backends::Backends;
use sluice_bindings::{RequestHead, ResponseHead};
use sluice_config::{GatewayConfig, RuntimeSettings};
use sluice_e2e::examples;
use sluice_runtime::{ComponentCache, RouteTable, Runtime};
use tokio::runtime::Runtime as Tokio;

/// A JSON body all three see (the Python guard checks it; the Rust plugin signs over it).
const BODY: &[u8] = br#"{"customer": "c-1", "quantity": 2, "note": "leave at the door"}"#;

/// One example: its component, its config and the request a passing client sends.
struct Example {
    lang: &'static str,
    wasm: PathBuf,
    config: String,
    head: RequestHead,
}

fn head(method: &str, path: &str, extra: &[(&str, String)]) -> RequestHead {
    let common = [
        ("host", "api.example".to_string()),
        ("user-agent", "wrk/4.2.0".to_string()),
        ("accept", "application/json".to_string()),
        ("accept-encoding", "gzip, br".to_string()),
        ("accept-language", "en".to_string()),
        ("x-forwarded-for", "10.0.0.1".to_string()),
        ("cookie", "a=b".to_string()),
    ];
    RequestHead {
        method: method.into(),
        scheme: "http".into(),
        authority: "api.example".into(),
        path: path.into(),
        headers: common
            .iter()
            .chain(extra)
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        client_ip: "127.0.0.1".into(),
        request_id: "bench-request".into(),
        route: "r".into(),
        context: vec![],
    }
}

fn signature(secret: &[u8], path: &str) -> String {
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let digest = ring::digest::digest(&ring::digest::SHA256, BODY);
    let message = format!("{t}.POST.{path}.{}", hex(digest.as_ref()));
    let tag = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        message.as_bytes(),
    );
    format!("t={t},k=partner-a,v1={}", hex(tag.as_ref()))
}

fn examples() -> Vec<Example> {
    let json = ("content-type", "application/json".to_string());
    vec![
        Example {
            lang: "rust",
            wasm: examples::build_rust("rust-signature", "request_signature"),
            config: "{ keys = { partner-a = \"s3cret\" } }".into(),
            head: head(
                "POST",
                "/orders",
                &[json.clone(), ("x-signature", signature(b"s3cret", "/orders"))],
            ),
        },
        Example {
            lang: "js",
            wasm: examples::build_js("js-cors", "cors.wasm"),
            config: "{ allow_origins = [\"https://app.example.com\"], expose_headers = [\"x-request-id\"] }".into(),
            head: head("GET", "/orders", &[("origin", "https://app.example.com".to_string())]),
        },
        Example {
            lang: "python",
            wasm: examples::build_python("python-json-guard", "app", "json_guard.wasm"),
            config: "{ fields = { customer = \"string\", quantity = \"integer\", note = \"string?\" } }".into(),
            head: head("POST", "/orders", &[json]),
        },
    ]
}

/// Routes `LANG` (pooled) and `LANG_fresh` (a new instance per call) for every example.
fn table(tokio: &Tokio, dir: &Path, all: &[Example]) -> RouteTable {
    let mut text = format!("[runtime]\ncache_dir = {:?}\n", dir.join("cache"));
    for e in all {
        text.push_str(&format!(
            "[plugins.{l}]\nmodule = {m:?}\nlimits = {{ memory_mb = 64, cpu_ms = 50 }}\n\
             [plugins.{l}_fresh]\nmodule = {m:?}\ninstance = \"fresh\"\nlimits = {{ memory_mb = 64, cpu_ms = 50 }}\n\
             [[routes]]\nname = \"{l}\"\nplugins = [{{ plugin = \"{l}\", config = {c} }}]\n\
             [[routes]]\nname = \"{l}_fresh\"\nplugins = [{{ plugin = \"{l}_fresh\", config = {c} }}]\n",
            l = e.lang,
            m = e.wasm,
            c = e.config,
        ));
    }
    let config = GatewayConfig::parse(&text, Path::new("bench.toml"), dir.to_path_buf()).unwrap();
    let runtime = Runtime::for_config(&config, Backends::in_memory()).unwrap();
    tokio.block_on(runtime.build_routes(&config)).unwrap()
}

fn hooks(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let all = examples();
    write_sizes(&all);
    let table = table(&tokio, dir.path(), &all);
    let response = ResponseHead {
        status: 200,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
    };

    let mut group = c.benchmark_group("lang_hook");
    for e in &all {
        let plugin = table.chain(e.lang).unwrap().plugins()[0].clone();
        let head = &e.head;
        group.bench_function(format!("{}/on_request_headers", e.lang), |b| {
            b.to_async(&tokio)
                .iter(|| async { plugin.on_request_headers(black_box(head)).await.unwrap() })
        });
        // The second hook of a passing request: the body check, or the response's CORS headers.
        if e.lang == "js" {
            group.bench_function("js/on_response_headers", |b| {
                b.to_async(&tokio)
                    .iter(|| async { plugin.on_response_headers(black_box(head), &response).await.unwrap() })
            });
        } else {
            group.bench_function(format!("{}/on_request_body", e.lang), |b| {
                b.to_async(&tokio)
                    .iter(|| async { plugin.on_request_body(black_box(head), BODY).await.unwrap() })
            });
        }
    }
    group.finish();

    let mut group = c.benchmark_group("lang_fresh");
    group.sample_size(20);
    for e in &all {
        let plugin = table.chain(&format!("{}_fresh", e.lang)).unwrap().plugins()[0].clone();
        let head = &e.head;
        group.bench_function(format!("{}/instantiate_init_hook", e.lang), |b| {
            b.to_async(&tokio)
                .iter(|| async { plugin.on_request_headers(black_box(head)).await.unwrap() })
        });
    }
    group.finish();
}

fn loading(c: &mut Criterion) {
    let all = examples();
    let dir = tempfile::tempdir().unwrap();
    let settings = RuntimeSettings::default();
    let uncached = Runtime::new(&settings, None, Backends::in_memory()).unwrap();
    let cache = ComponentCache::new(Some(dir.path().to_path_buf()));
    let mut group = c.benchmark_group("lang_load");
    group.sample_size(10);
    for e in &all {
        let bytes = std::fs::read(&e.wasm).unwrap();
        let sha: [u8; 32] = {
            use sha2::Digest;
            sha2::Sha256::digest(&bytes).into()
        };
        group.bench_function(format!("{}/compile", e.lang), |b| {
            b.iter(|| wasmtime::component::Component::new(uncached.engine(), black_box(&bytes)).unwrap())
        });
        cache.load_or_compile(uncached.engine(), &bytes, &sha).unwrap();
        group.bench_function(format!("{}/aot_cache_hit", e.lang), |b| {
            b.iter(|| {
                cache
                    .load_or_compile(uncached.engine(), black_box(&bytes), &sha)
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// Records each component's size beside criterion's estimates, for `bench/plugin-languages`.
fn write_sizes(all: &[Example]) {
    let sizes: serde_json::Map<String, serde_json::Value> = all
        .iter()
        .map(|e| (e.lang.to_string(), std::fs::metadata(&e.wasm).unwrap().len().into()))
        .collect();
    let out = examples::repo_root().join("target/criterion");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(
        out.join("plugin_languages_sizes.json"),
        serde_json::Value::Object(sizes).to_string(),
    )
    .unwrap();
}

criterion_group!(benches, hooks, loading);
criterion_main!(benches);
