//! Benchmarks of the backends: what emitting one request row costs the request path, how many
//! rows a second the sink puts into the machine's real Postgres, a plugin's Redis GET through
//! the host against the same GET made directly with fred, and the p99 of an in-memory kv get.
//! The parts that need Postgres or Redis say so and skip when the server is not reachable.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_artifacts as wasm;
use sluice_backends::Backends;
use sluice_backends::postgres::PostgresBackend;
use sluice_backends::sink::{SinkRow, Sinks};
use sluice_config::GatewayConfig;
use sluice_config::{PostgresSettings, SinkSettings};
use sluice_core::telemetry::metrics::Registry;
use sluice_runtime::{RouteTable, Runtime};
use std::sync::Arc;

const SERVER: &str = "postgres://root@127.0.0.1:5432";

fn spill() -> PathBuf {
    std::env::temp_dir().join(format!("sluice-bench-spill-{}.jsonl", std::process::id()))
}

fn emit(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let settings = SinkSettings {
        queue_rows: 1 << 20,
        ring_rows: 1000,
        ..SinkSettings::default()
    };
    let sinks = tokio.block_on(async { Sinks::start(&settings, spill(), None, None, Arc::new(Registry::new())) });
    let mut group = c.benchmark_group("sink");
    group.bench_function("emit_request_row", |b| {
        b.iter(|| {
            let row = SinkRow::request(
                "app",
                200,
                "GET",
                "0123456789abcdef0123456789abcdef",
                Duration::from_micros(850),
            );
            black_box(sinks.emit(row))
        })
    });
    group.finish();
}

/// Creates a fresh database for the throughput run; None when Postgres is not reachable.
fn database(tokio: &tokio::runtime::Runtime) -> Option<String> {
    use sqlx::Connection;
    tokio.block_on(async {
        let mut admin = sqlx::PgConnection::connect(&format!("{SERVER}/postgres")).await.ok()?;
        let name = format!("sluice_bench_{}", std::process::id());
        let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(drop))
            .await
            .ok()?;
        let create = format!("CREATE DATABASE {name}");
        sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(create))
            .await
            .ok()?;
        Some(format!("{SERVER}/{name}"))
    })
}

fn throughput(c: &mut Criterion) {
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let Some(url) = database(&tokio) else {
        eprintln!("sink/postgres_rows skipped: no Postgres at {SERVER}");
        return;
    };
    let registry = Registry::new();
    let pg_settings = PostgresSettings {
        url,
        max_connections: 4,
        min_connections: 1,
        acquire_timeout_ms: 5000,
        idle_timeout_ms: 600_000,
        max_lifetime_ms: 1_800_000,
        statement_timeout_ms: 10_000,
        row_cap: 1000,
        migrate_on_start: false,
        config_name: None,
        statements: Default::default(),
    };
    let (sinks, pg) = tokio.block_on(async {
        let pg = PostgresBackend::connect_lazy(&pg_settings, &registry).unwrap();
        pg.migrate().await.unwrap();
        let settings = SinkSettings {
            queue_rows: 1 << 20,
            ..SinkSettings::default()
        };
        (
            Sinks::start(&settings, spill(), None, Some(pg.clone()), Arc::new(Registry::new())),
            pg,
        )
    });
    const ROWS: u64 = 10_000;
    let mut group = c.benchmark_group("sink");
    group.sample_size(10).throughput(Throughput::Elements(ROWS));
    group.bench_function("postgres_rows_10k", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            for _ in 0..iters {
                for n in 0..ROWS {
                    let id = format!("req-{n}");
                    sinks.emit(SinkRow::request("app", 200, "GET", &id, Duration::from_micros(850)));
                }
                tokio.block_on(sinks.flush());
            }
            started.elapsed()
        })
    });
    group.finish();
    drop((sinks, pg));
    tokio.block_on(async {
        use sqlx::Connection;
        if let Ok(mut admin) = sqlx::PgConnection::connect(&format!("{SERVER}/postgres")).await {
            let drop = format!(
                "DROP DATABASE IF EXISTS sluice_bench_{} WITH (FORCE)",
                std::process::id()
            );
            let _ = sqlx::Executor::execute(&mut admin, sqlx::AssertSqlSafe(drop)).await;
        }
    });
}

/// The route table with one route, `get`, running the redis-call test plugin doing `GET k`.
fn redis_table(tokio: &tokio::runtime::Runtime, dir: &Path, prefix: &str) -> (Runtime, RouteTable) {
    let text = format!(
        "[runtime]\ncache_dir = {cache:?}\n[redis]\nurl = \"redis://127.0.0.1:6379\"\nprefix = \"{prefix}\"\n\
         [plugins.reader]\nmodule = {m:?}\ngrants = {{ redis = {{ commands = [\"GET\"] }} }}\n\
         [[routes]]\nname = \"get\"\nplugins = [{{ plugin = \"reader\", config = {{ op = \"command\", name = \"GET\" }} }}]\n",
        cache = dir.join("cache"),
        m = wasm::REDIS_CALL,
    );
    let config = GatewayConfig::parse(&text, Path::new("bench.toml"), dir.to_path_buf()).unwrap();
    tokio.block_on(async {
        let runtime = Runtime::for_config(&config, Backends::for_config(&config).unwrap()).unwrap();
        let table = runtime.build_routes(&config).await.unwrap();
        (runtime, table)
    })
}

fn redis_get(c: &mut Criterion) {
    use fred::interfaces::{ClientLike, KeysInterface};
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let direct = fred::clients::Client::new(
        fred::types::config::Config::from_url("redis://127.0.0.1:6379").unwrap(),
        None,
        None,
        None,
    );
    if tokio.block_on(direct.init()).is_err() {
        eprintln!("redis/* skipped: no Redis at 127.0.0.1:6379");
        return;
    }
    let prefix = format!("sluicebench{}", std::process::id());
    let key = format!("{prefix}:{{reader}}:k");
    let _: () = tokio
        .block_on(direct.set(&key, "a value of some thirty bytes....", None, None, false))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (runtime, table) = redis_table(&tokio, dir.path(), &prefix);
    tokio.block_on(async {
        while runtime
            .backends()
            .redis
            .as_ref()
            .unwrap()
            .ping(Duration::from_secs(1))
            .await
            .is_err()
        {}
    });
    let plugin = table.chain("get").unwrap().plugins()[0].clone();
    let mut head = sluice_bindings::RequestHead {
        method: "GET".into(),
        scheme: "http".into(),
        authority: "api.example".into(),
        path: "/".into(),
        headers: vec![("x-keys".into(), b"[\"k\"]".to_vec())],
        client_ip: "127.0.0.1".into(),
        request_id: "bench".into(),
        route: "get".into(),
        context: vec![],
    };
    head.headers.push(("host".into(), b"api.example".to_vec()));
    let mut group = c.benchmark_group("redis");
    group.bench_function("get_direct_fred", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(direct.get::<String, _>(&key).await.unwrap()) })
    });
    group.bench_function("get_plugin_through_host", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(plugin.on_request_headers(&head).await.unwrap()) })
    });
    group.finish();
    let _: i64 = tokio.block_on(direct.del(&key)).unwrap();
}

/// Not a criterion benchmark: times 200,000 in-memory kv gets one by one and prints the
/// percentiles (criterion reports means, the budget is a p99).
fn kv_get_p99(_c: &mut Criterion) {
    let kv = sluice_backends::kv::KvStore::new(64 << 20);
    for n in 0..10_000 {
        kv.set("bench", &format!("key-{n}"), vec![7; 64], None).unwrap();
    }
    let mut samples: Vec<u64> = (0..200_000)
        .map(|n| {
            let key = format!("key-{}", n % 10_000);
            let started = Instant::now();
            black_box(kv.get("bench", &key).unwrap());
            started.elapsed().as_nanos() as u64
        })
        .collect();
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 * p) as usize).min(samples.len() - 1)];
    println!(
        "kv/get_from_memory: p50 {} ns, p99 {} ns, p99.9 {} ns (200,000 gets of 64-byte values, 10,000 keys)",
        at(0.50),
        at(0.99),
        at(0.999)
    );
}

/// One rate-limit decision (one limit, always admitted) made by the host's limiter: in memory,
/// and in Redis (one EVALSHA of the GCRA script), plus a printed figure of decisions per second
/// with 64 decisions in flight at once against Redis.
fn ratelimit(c: &mut Criterion) {
    use sluice_backends::rate_limit::{LimitSpec, RateLimiter};
    use sluice_backends::redis::RedisBackend;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let limits = [LimitSpec {
        key: "ip:127.0.0.1".into(),
        quota: 1 << 40,
        period_ms: 1000,
        burst: 1 << 40,
    }];
    let memory = RateLimiter::new(None, Arc::new(Registry::new()));
    let mut group = c.benchmark_group("ratelimit");
    group.bench_function("check_in_memory", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(memory.check("bench", &limits, 1, 1.0).await) })
    });
    let text = format!(
        "url = \"redis://127.0.0.1:6379\"\nprefix = \"sluicebench{}\"\ncall_timeout_ms = 1000\n",
        std::process::id()
    );
    let settings: sluice_config::RedisSettings = toml::from_str(&text).unwrap();
    let registry = Arc::new(Registry::new());
    let redis = tokio.block_on(async { RedisBackend::connect(&settings, &registry).unwrap() });
    if tokio.block_on(redis.ping(Duration::from_secs(1))).is_err() {
        eprintln!("ratelimit/check_in_redis skipped: no Redis at 127.0.0.1:6379");
        group.finish();
        return;
    }
    let global = Arc::new(RateLimiter::new(Some(redis), registry));
    group.bench_function("check_in_redis", |b| {
        b.to_async(&tokio).iter(|| async {
            let d = global.check("bench", &limits, 1, 1.0).await;
            assert!(d.allowed);
            black_box(d)
        })
    });
    group.finish();
    let concurrent = 64;
    let per_task = 2_000;
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    tokio.block_on(async {
        let tasks: Vec<_> = (0..concurrent)
            .map(|_| {
                let global = global.clone();
                let limits = limits.clone();
                tokio::spawn(async move {
                    for _ in 0..per_task {
                        black_box(global.check("bench", &limits, 1, 1.0).await);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let decisions = (concurrent * per_task) as f64;
    let per_sec = decisions / started.elapsed().as_secs_f64();
    let cpu_us = (process_cpu_seconds() - cpu_before) * 1e6 / decisions;
    println!(
        "ratelimit/decisions_per_second_in_redis: {per_sec:.0} ({concurrent} in flight, one limit, one thread; \
         {cpu_us:.1} µs of this process's CPU per decision)"
    );
}

/// CPU time (user + system) this process has used, from `/proc/self/stat` (clock ticks).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

criterion_group!(benches, emit, throughput, redis_get, kv_get_p99, ratelimit);
criterion_main!(benches);
