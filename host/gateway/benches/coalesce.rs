//! Request coalescing on the host (the dedup plugin's `coalesce` verdict): what going through
//! the in-flight table costs a request that has no twin (join, fetch task, leave) against the
//! same request sent straight to the upstream, and what a replayed answer costs. The upstream
//! is a hyper server on loopback answering 1 KiB at once, on the same runtime.

use std::hint::black_box;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_backends::Backends;
use sluice_bindings::CoalesceSpec;
use sluice_config::UpstreamDef;
use sluice_core::body::{ProxyBody, empty};
use sluice_core::telemetry::metrics::Registry;
use sluice_core::upstream::Upstream;
use sluice_gateway::forward::coalesce::Coalescer;
use sluice_runtime::CoalesceRequest;

/// Starts the loopback upstream; its address.
async fn upstream_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let body = Bytes::from(vec![b'x'; 1024]);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let body = body.clone();
            tokio::spawn(async move {
                let service = service_fn(move |_req| {
                    let body = body.clone();
                    async move { Ok::<_, std::convert::Infallible>(Response::new(Full::new(body))) }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn request() -> Request<ProxyBody> {
    Request::get("/bench").body(empty()).unwrap()
}

fn coalesce_request(key: String, replay_ttl_ms: u32) -> CoalesceRequest {
    CoalesceRequest {
        plugin: Arc::from("dedup"),
        spec: CoalesceSpec {
            key,
            replay_ttl_ms,
            max_waiters: 1000,
            share_errors: false,
        },
    }
}

/// Reads the whole answer, as a client would.
async fn drain(resp: Response<ProxyBody>) -> usize {
    resp.into_body().collect().await.unwrap().to_bytes().len()
}

fn coalescing(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = tokio.block_on(upstream_server());
    let def: UpstreamDef = toml::from_str(&format!("targets = [\"{addr}\"]")).unwrap();
    let upstream = Upstream::new("bench", &def, &Registry::new(), 2);
    let coalescer = Arc::new(Coalescer::new(&Backends::in_memory()));
    let cap = 1 << 20;
    let mut group = c.benchmark_group("coalesce");
    group.bench_function("direct_to_upstream", |b| {
        b.to_async(&tokio)
            .iter(|| async { black_box(drain(upstream.send(request(), false).await.unwrap()).await) })
    });
    let mut n = 0u64;
    group.bench_function("fetched_alone", |b| {
        b.to_async(&tokio).iter(|| {
            n += 1;
            // A fresh key each time: nobody to share with, nothing to replay.
            let spec = coalesce_request(format!("k{n}"), 0);
            let (coalescer, upstream) = (coalescer.clone(), upstream.clone());
            async move {
                let resp = coalescer.send("r", &spec, &upstream, request(), cap).await.unwrap();
                black_box(drain(resp).await)
            }
        })
    });
    let replayed = coalesce_request("replayed".into(), 3_600_000);
    tokio.block_on(async {
        let resp = coalescer.send("r", &replayed, &upstream, request(), cap).await.unwrap();
        drain(resp).await
    });
    group.bench_function("replayed", |b| {
        b.to_async(&tokio).iter(|| async {
            let resp = coalescer.send("r", &replayed, &upstream, request(), cap).await.unwrap();
            black_box(drain(resp).await)
        })
    });
    group.finish();
    assert_eq!(coalescer.in_flight(), 0, "every flight left the table");
}

criterion_group!(benches, coalescing);
criterion_main!(benches);
