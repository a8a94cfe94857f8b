//! WebSocket load for `bench/websocket-load`.
//!
//! `ws_load echo ADDR`: a WebSocket echo server (every text or binary message sent back).
//! `ws_load run URL CONNECTIONS SECONDS BYTES [HEADER:VALUE]`: opens CONNECTIONS WebSockets
//! to URL, each sending a BYTES-byte binary message and waiting for its echo, over and over
//! for SECONDS; prints `messages/s p50_us p99_us errors` on one line.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::{ClientRequestBuilder, Message};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("echo") if args.len() == 2 => echo(&args[1]).await,
        Some("run") if args.len() >= 5 => {
            let header = args.get(5).and_then(|h| h.split_once(':'));
            run(&args[1], args[2].parse()?, args[3].parse()?, args[4].parse()?, header).await
        }
        _ => bail!("usage: ws_load echo ADDR | ws_load run URL CONNECTIONS SECONDS BYTES [HEADER:VALUE]"),
    }
}

async fn echo(addr: &str) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.context("bind")?;
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            while let Some(Ok(message)) = ws.next().await {
                if (message.is_binary() || message.is_text()) && ws.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn run(
    url: &str,
    connections: usize,
    seconds: u64,
    bytes: usize,
    header: Option<(&str, &str)>,
) -> anyhow::Result<()> {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let mut request = ClientRequestBuilder::new(url.parse()?);
        if let Some((name, value)) = header {
            request = request.with_header(name, value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request).await.context("handshake")?;
        sockets.push(ws);
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                let payload = vec![0x5a_u8; bytes];
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while Instant::now() < until {
                    let sent = Instant::now();
                    if ws.send(Message::binary(payload.clone())).await.is_err() {
                        errors += 1;
                        break;
                    }
                    match ws.next().await {
                        Some(Ok(m)) if m.len() == bytes => latencies.push(sent.elapsed().as_micros() as u64),
                        _ => {
                            errors += 1;
                            break;
                        }
                    }
                }
                let _ = ws.close(None).await;
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
