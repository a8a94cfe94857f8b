//! The HTTP cache's storage (`sluice_backends::http_cache`): a lookup answered from memory, a lookup
//! answered from Redis (the shared level, a cache whose memory level takes nothing), and a
//! store. A 4 KiB response with a handful of headers. The Redis part says so and skips when
//! no Redis answers on 127.0.0.1:6379.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use sluice_backends::http_cache::{HttpCache, StoredEntry};
use sluice_backends::redis::RedisBackend;
use sluice_config::{HttpCacheSettings, RedisSettings};
use sluice_core::telemetry::metrics::Registry;

fn entry() -> StoredEntry {
    let now = 1_800_000_000_000;
    StoredEntry {
        status: 200,
        headers: vec![
            ("content-type".into(), b"application/json".to_vec()),
            ("cache-control".into(), b"max-age=600".to_vec()),
            ("etag".into(), b"\"abc123\"".to_vec()),
            ("date".into(), b"Sat, 28 Nov 2026 12:00:00 GMT".to_vec()),
        ],
        body: Bytes::from(vec![b'x'; 4096]),
        request_time_ms: now,
        response_time_ms: now,
        keep_until_ms: sluice_now_ms() + 3_600_000,
        tags: vec!["items".into()],
        target: "/items?page=1".into(),
        direct: None,
        built: Default::default(),
    }
}

fn sluice_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn request() -> Vec<(String, Vec<u8>)> {
    vec![
        ("accept".into(), b"application/json".to_vec()),
        ("user-agent".into(), b"bench".to_vec()),
    ]
}

fn storage(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("http_cache");
    let memory =
        tokio.block_on(async { HttpCache::new(&HttpCacheSettings::default(), Arc::new(Registry::new()), None) });
    memory.insert("k", &[], &request(), entry(), None).unwrap();
    group.bench_function("lookup_in_memory", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(memory.lookup("k", &request()).await.unwrap()) })
    });
    let mut n = 0u64;
    group.bench_function("store_in_memory", |b| {
        b.iter(|| {
            n += 1;
            memory
                .insert(&format!("s{}", n % 10_000), &[], &request(), entry(), None)
                .unwrap()
        })
    });
    let text = format!(
        "url = \"redis://127.0.0.1:6379\"\nprefix = \"sluicebenchhttp{}\"\ncall_timeout_ms = 1000\n",
        std::process::id()
    );
    let settings: RedisSettings = toml::from_str(&text).unwrap();
    let registry = Arc::new(Registry::new());
    let redis = tokio.block_on(async { RedisBackend::connect(&settings, &registry).unwrap() });
    if tokio.block_on(redis.ping(Duration::from_secs(1))).is_err() {
        eprintln!("http_cache/lookup_in_redis skipped: no Redis at 127.0.0.1:6379");
        group.finish();
        return;
    }
    // A memory level that takes nothing: every lookup reads Redis.
    let redis_only = HttpCacheSettings {
        memory_object_share: 1e-9,
        ..HttpCacheSettings::default()
    };
    let shared = tokio.block_on(async { HttpCache::new(&redis_only, registry, Some(redis)) });
    tokio.block_on(async {
        shared.insert("k", &[], &request(), entry(), None).unwrap();
        for _ in 0..200 {
            if shared.lookup("k", &request()).await.is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the entry never reached Redis");
    });
    group.bench_function("lookup_in_redis", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(shared.lookup("k", &request()).await.unwrap()) })
    });
    group.finish();
    invalidation_reach(&tokio, &settings);
}

/// How long an invalidation on one instance takes to drop the entry from another instance's
/// memory (published on Redis pub/sub): 50 rounds, median and worst.
fn invalidation_reach(tokio: &tokio::runtime::Runtime, settings: &RedisSettings) {
    let (a, b) = tokio.block_on(async {
        let open = |r: &Arc<Registry>| RedisBackend::connect(settings, r).unwrap();
        let (ra, rb) = (Arc::new(Registry::new()), Arc::new(Registry::new()));
        let a = HttpCache::new(&HttpCacheSettings::default(), ra.clone(), Some(open(&ra)));
        let b = HttpCache::new(&HttpCacheSettings::default(), rb.clone(), Some(open(&rb)));
        // Let both subscriptions settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        (a, b)
    });
    let mut reach = Vec::new();
    for round in 0..50 {
        let key = format!("reach{round}");
        let mut e = entry();
        e.target = format!("/reach/{round}");
        tokio.block_on(async {
            b.insert(&key, &[], &request(), e, None).unwrap();
            // Let the entry reach Redis too.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        let started = std::time::Instant::now();
        tokio.block_on(async {
            a.invalidate_target(&format!("/reach/{round}")).await;
            while b.lookup(&key, &request()).await.is_some() {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        });
        reach.push(started.elapsed());
    }
    reach.sort();
    println!(
        "http_cache/invalidation_reach: median {:.2} ms, worst {:.2} ms (50 rounds, two caches on one Redis)",
        reach[reach.len() / 2].as_secs_f64() * 1e3,
        reach[reach.len() - 1].as_secs_f64() * 1e3
    );
}

criterion_group!(benches, storage);
criterion_main!(benches);
