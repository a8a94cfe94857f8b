//! gRPC unary load for `bench/grpc-load` (a small ghz), with tonic's health service as the
//! server so no code generation is needed.
//!
//! `grpc_load serve ADDR`: a gRPC server answering `grpc.health.v1.Health/Check` (h2c).
//! `grpc_load run URL CONCURRENCY SECONDS [HEADER:VALUE]`: CONCURRENCY callers, each making
//! unary `Check` calls one after another for SECONDS over one shared HTTP/2 connection per
//! ten callers; prints `calls/s p50_us p99_us errors` on one line.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::Channel;
use tonic::transport::server::TcpIncoming;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") if args.len() == 2 => serve(&args[1]).await,
        Some("run") if args.len() >= 4 => {
            let header = args.get(4).and_then(|h| h.split_once(':'));
            run(&args[1], args[2].parse()?, args[3].parse()?, header).await
        }
        _ => bail!("usage: grpc_load serve ADDR | grpc_load run URL CONCURRENCY SECONDS [HEADER:VALUE]"),
    }
}

async fn serve(addr: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.context("bind")?;
    let (_reporter, health) = tonic_health::server::health_reporter();
    tonic::transport::Server::builder()
        .add_service(health)
        .serve_with_incoming(TcpIncoming::from(listener).with_nodelay(Some(true)))
        .await?;
    Ok(())
}

async fn run(url: &str, concurrency: usize, seconds: u64, header: Option<(&str, &str)>) -> anyhow::Result<()> {
    let mut channels = Vec::new();
    for _ in 0..concurrency.div_ceil(10) {
        let channel = Channel::from_shared(url.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await?;
        channels.push(channel);
    }
    let header = match header {
        Some((name, value)) => Some((
            MetadataKey::from_bytes(name.as_bytes())?,
            MetadataValue::try_from(value)?,
        )),
        None => None,
    };
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|i| {
            let mut client = HealthClient::new(channels[i / 10].clone());
            let header = header.clone();
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < until {
                    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
                    if let Some((name, value)) = &header {
                        request.metadata_mut().insert(name.clone(), value.clone());
                    }
                    let sent = Instant::now();
                    match client.check(request).await {
                        Ok(_) => latencies.push(sent.elapsed().as_micros() as u64),
                        Err(_) => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, e) = task.await?;
        all.extend(latencies);
        errors += e;
    }
    all.sort_unstable();
    let at = |q: f64| {
        all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    println!(
        "{:.0} {} {} {errors}",
        all.len() as f64 / seconds as f64,
        at(0.5),
        at(0.99)
    );
    Ok(())
}
