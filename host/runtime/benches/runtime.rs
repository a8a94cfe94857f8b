//! Plugin runtime benchmarks: one header-only hook (8 request headers, 2 host calls) on a
//! pooled and on a fresh instance, against the same work done natively; a do-nothing hook
//! (reads nothing, answers `continue`) on a pooled instance; a chain of 6 pooled
//! plugins; compile time and load time from the AOT cache.
//!
//! Run: `cargo bench -p sluice-runtime --bench runtime`; `bench/summarize` prints the medians and
//! ratios that `docs/benchmarks.md` records.

use std::hint::black_box;
use std::path::Path;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sluice_artifacts as wasm;
use sluice_backends::Backends;
use sluice_bindings::RequestHead;
use sluice_config::{GatewayConfig, RuntimeSettings};
use sluice_runtime::{ComponentCache, NoBody, RouteTable, Runtime};
use tokio::runtime::Runtime as Tokio;

const PLUGIN: &str = "bench_headers";

fn request() -> RequestHead {
    let headers = [
        ("host", "api.example"),
        ("user-agent", "wrk/4.2.0"),
        ("accept", "application/json"),
        ("accept-encoding", "gzip, br"),
        ("accept-language", "en"),
        ("x-api-key", "sk_test_123"),
        ("x-forwarded-for", "10.0.0.1"),
        ("cookie", "a=b"),
    ];
    RequestHead {
        method: "GET".into(),
        scheme: "http".into(),
        authority: "api.example".into(),
        path: "/v1/items?page=2".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
            .collect(),
        client_ip: "127.0.0.1".into(),
        request_id: "bench-request".into(),
        route: "r".into(),
        context: vec![],
    }
}

/// A route table: route `pooled` (one plugin), `fresh` (one plugin, fresh instances),
/// `chain6` (six pooled plugins) and `noop` (the plugin as the do-nothing hook).
fn table(tokio: &Tokio, dir: &Path) -> (Runtime, RouteTable) {
    let entry = |n: usize| "{ plugin = \"bench\" }, ".repeat(n);
    let text = format!(
        "[runtime]\ncache_dir = {cache:?}\n\
         [plugins.bench]\nmodule = {m:?}\n\
         [plugins.bench_fresh]\nmodule = {m:?}\ninstance = \"fresh\"\n\
         [[routes]]\nname = \"pooled\"\nplugins = [{one}]\n\
         [[routes]]\nname = \"fresh\"\nplugins = [{{ plugin = \"bench_fresh\" }}]\n\
         [[routes]]\nname = \"chain6\"\nplugins = [{six}]\n\
         [[routes]]\nname = \"noop\"\nplugins = [{{ plugin = \"bench\", config = {{ noop = true }} }}]\n\
         [plugins.spin]\nmodule = {spin:?}\nlimits = {{ cpu_ms = 5 }}\n\
         [[routes]]\nname = \"spin\"\nplugins = [{{ plugin = \"spin\" }}]\n",
        cache = dir.join("cache"),
        m = wasm::BENCH_HEADERS,
        one = entry(1),
        six = entry(6),
        spin = wasm::SPIN_LOOP,
    );
    let config = GatewayConfig::parse(&text, Path::new("bench.toml"), dir.to_path_buf()).unwrap();
    let runtime = Runtime::for_config(&config, Backends::in_memory()).unwrap();
    let table = tokio.block_on(runtime.build_routes(&config)).unwrap();
    (runtime, table)
}

/// What the benchmark plugin does, in plain Rust: the baseline for the hook's overhead.
fn native_hook(req: &RequestHead, counter: &sluice_core::telemetry::metrics::Counter) -> Vec<(String, Vec<u8>)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    counter.add(1);
    let agent = req
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
        .map_or(1, |(_, v)| v.len());
    vec![("x-bench".to_string(), format!("{now}:{agent}").into_bytes())]
}

fn hooks(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (runtime, table) = table(&tokio, dir.path());
    let head = request();

    let mut group = c.benchmark_group("hook");
    let counter = runtime.backends().metrics.counter("bench_native", &[]);
    group.bench_function("native_baseline", |b| {
        b.iter(|| native_hook(black_box(&head), &counter))
    });
    for (name, route) in [("pooled", "pooled"), ("fresh", "fresh"), ("pooled_noop", "noop")] {
        let plugin = table.chain(route).unwrap().plugins()[0].clone();
        group.bench_function(name, |b| {
            b.to_async(&tokio)
                .iter(|| async { plugin.on_request_headers(black_box(&head)).await.unwrap() })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("chain");
    for (name, route) in [("pooled_1", "pooled"), ("pooled_6", "chain6")] {
        let chain = table.chain(route).unwrap().clone();
        group.bench_function(name, |b| {
            b.to_async(&tokio).iter_batched(
                || head.clone(),
                |mut head| {
                    let chain = chain.clone();
                    async move {
                        chain.on_request(&mut head, &mut NoBody, &mut Default::default()).await;
                        head
                    }
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();

    // How long an infinite loop runs before its 5 ms CPU deadline (1 ms epoch ticks) stops it.
    let mut group = c.benchmark_group("deadline");
    group.sample_size(20);
    let spin = table.chain("spin").unwrap().plugins()[0].clone();
    let mut looping = request();
    looping.path = "/loop".into();
    group.bench_function("spin_loop_cpu_ms_5", |b| {
        b.to_async(&tokio)
            .iter(|| async { spin.on_request_headers(&looping).await.unwrap_err() })
    });
    group.finish();
}

fn loading(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let settings = RuntimeSettings::default();
    let file = Path::new(wasm::BENCH_HEADERS);
    let bytes = std::fs::read(file).unwrap();
    let sha: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes).into()
    };

    let mut group = c.benchmark_group("load");
    group.sample_size(10);
    let uncached = Runtime::new(&settings, None, Backends::in_memory()).unwrap();
    group.bench_function("compile", |b| {
        b.iter(|| wasmtime::component::Component::new(uncached.engine(), black_box(&bytes)).unwrap())
    });
    group.finish();

    let cached = Runtime::new(&settings, Some(cache_dir.clone()), Backends::in_memory()).unwrap();
    tokio.block_on(cached.load_plugin(PLUGIN, file)).unwrap();
    let cache = ComponentCache::new(Some(cache_dir));
    let mut group = c.benchmark_group("load");
    group.bench_function("aot_cache_hit", |b| {
        b.iter(|| cache.load_or_compile(cached.engine(), black_box(&bytes), &sha).unwrap())
    });
    group.bench_function("plugin_from_cache", |b| {
        b.to_async(&tokio)
            .iter(|| async { cached.load_plugin(PLUGIN, file).await.unwrap() })
    });
    group.finish();
}

criterion_group!(benches, hooks, loading);
criterion_main!(benches);
