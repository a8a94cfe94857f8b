//! Small GETs over HTTP/2 (TLS, ALPN h2) or HTTP/3 (QUIC) for `bench/http3-load`: wrk has
//! neither, so both sides of the comparison run the same loop.
//!
//! `http_load h2|h3 ADDR CERT_PEM CONNECTIONS STREAMS SECONDS PATH`: CONNECTIONS connections
//! to ADDR for `localhost` (trusting CERT_PEM), each with STREAMS callers making GETs of PATH
//! one after another for SECONDS; prints `requests/s p50_us p99_us errors` on one line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Empty};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};

type Outcome = (Vec<u64>, u64);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [proto, addr, cert, conns, streams, seconds, path] = args.as_slice() else {
        bail!("usage: http_load h2|h3 ADDR CERT_PEM CONNECTIONS STREAMS SECONDS PATH");
    };
    let addr: SocketAddr = addr.parse()?;
    let cert = CertificateDer::from_pem_file(cert).context("the certificate")?;
    let (conns, streams): (usize, usize) = (conns.parse()?, streams.parse()?);
    let until = Instant::now() + Duration::from_secs(seconds.parse()?);
    let uri: hyper::Uri = format!("https://localhost{path}").parse()?;
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let tls = tls(&cert, if proto == "h3" { b"h3" } else { b"h2" })?;
        match proto.as_str() {
            "h2" => tasks.extend(h2_callers(addr, tls, streams, uri.clone(), until).await?),
            "h3" => tasks.extend(h3_callers(addr, tls, streams, uri.clone(), until).await?),
            other => bail!("unknown protocol {other}"),
        }
    }
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
    let seconds: f64 = seconds.parse()?;
    println!("{:.0} {} {} {errors}", all.len() as f64 / seconds, at(0.5), at(0.99));
    Ok(())
}

fn tls(cert: &CertificateDer<'static>, alpn: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// One HTTP/2 connection and its callers.
async fn h2_callers(
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    streams: usize,
    uri: hyper::Uri,
    until: Instant,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Outcome>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await?;
    tokio::spawn(conn);
    Ok((0..streams)
        .map(|_| {
            let (mut send, uri) = (send.clone(), uri.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < until {
                    let sent = Instant::now();
                    let req = hyper::Request::get(uri.clone())
                        .body(Empty::<Bytes>::new())
                        .expect("a request");
                    let done = match send.send_request(req).await {
                        Ok(resp) => resp.into_body().collect().await.is_ok(),
                        Err(_) => false,
                    };
                    if done {
                        latencies.push(sent.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect())
}

/// One HTTP/3 connection and its callers.
async fn h3_callers(
    addr: SocketAddr,
    tls: rustls::ClientConfig,
    streams: usize,
    uri: hyper::Uri,
    until: Instant,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<Outcome>>> {
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse()?)?;
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic)));
    let connection = endpoint.connect(addr, "localhost")?.await?;
    let (mut driver, send) = h3::client::new(h3_quinn::Connection::new(connection)).await?;
    tokio::spawn(async move {
        let _endpoint = endpoint;
        std::future::poll_fn(|cx| driver.poll_close(cx)).await
    });
    Ok((0..streams)
        .map(|_| {
            let (mut send, uri) = (send.clone(), uri.clone());
            tokio::spawn(async move {
                let (mut latencies, mut errors) = (Vec::new(), 0);
                while Instant::now() < until {
                    let sent = Instant::now();
                    if h3_get(&mut send, uri.clone()).await.is_ok() {
                        latencies.push(sent.elapsed().as_micros() as u64);
                    } else {
                        errors += 1;
                    }
                }
                (latencies, errors)
            })
        })
        .collect())
}

async fn h3_get(
    send: &mut h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>,
    uri: hyper::Uri,
) -> anyhow::Result<()> {
    let mut stream = send.send_request(hyper::Request::get(uri).body(())?).await?;
    stream.finish().await?;
    stream.recv_response().await?;
    while let Some(mut chunk) = stream.recv_data().await? {
        chunk.advance(chunk.remaining());
    }
    Ok(())
}
