//! The upstream of `bench/dedup-load`: counts the requests it receives, so the benchmark can
//! tell how many upstream requests request coalescing saved.
//!
//! - `GET /__count`: the number of requests received so far (this one excluded), as text;
//! - `GET /slow?ms=N`: a 2 KiB answer after N ms;
//! - anything else: the same answer at once.
//!
//! `cargo run --release -p sluice-bench --bin counting_upstream -- LISTEN`

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};

async fn answer(req: Request<Incoming>, count: Arc<AtomicU64>) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/__count" {
        return Ok(Response::new(Full::new(Bytes::from(
            count.load(Ordering::SeqCst).to_string(),
        ))));
    }
    count.fetch_add(1, Ordering::SeqCst);
    if req.uri().path() == "/slow" {
        let ms = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|p| p.strip_prefix("ms=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(100);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let mut resp = Response::new(Full::new(Bytes::from(vec![b'x'; 2048])));
    resp.headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn main() -> anyhow::Result<()> {
    let Some(listen) = std::env::args().nth(1) else {
        anyhow::bail!("usage: counting_upstream LISTEN_ADDR");
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let count = Arc::new(AtomicU64::new(0));
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            let count = count.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(req, count.clone()));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
