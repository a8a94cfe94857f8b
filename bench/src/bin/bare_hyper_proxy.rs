//! The floor for `bench/gateway-load`: the least a hyper proxy can do (one current-thread
//! runtime per CPU would be the same shape as Sluice's workers; this one uses one thread and
//! is compared by CPU time per request). No routing, no headers touched, no limits, no
//! timeouts, no metrics: the request goes to the upstream and the response comes back.
//!
//! `cargo run --release -p sluice-bench --bin bare_hyper_proxy -- LISTEN UPSTREAM`

use std::convert::Infallible;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: bare_hyper_proxy LISTEN_ADDR UPSTREAM_HOST:PORT");
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build_http();
        let listener = tokio::net::TcpListener::bind(&listen).await?;
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let (client, upstream) = (client.clone(), upstream.clone());
            tokio::spawn(async move {
                let service = service_fn(move |mut req: Request<Incoming>| {
                    let client = client.clone();
                    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    let uri: Uri = format!("http://{upstream}{path}").parse().unwrap_or_default();
                    *req.uri_mut() = uri;
                    async move {
                        let resp = match client.request(req).await {
                            Ok(resp) => resp.map(|b| b.boxed()),
                            Err(_) => {
                                let mut resp =
                                    hyper::Response::new(http_body_util::Empty::new().map_err(|n| match n {}).boxed());
                                *resp.status_mut() = hyper::StatusCode::BAD_GATEWAY;
                                resp
                            }
                        };
                        Ok::<_, Infallible>(resp as hyper::Response<Body>)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}
