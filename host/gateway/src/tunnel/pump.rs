//! Carrying a tunnel's bytes: one copy per direction in the tunnel's task, each byte counted
//! (per tunnel for its close line, per route in `sluice_tunnel_bytes_total`), with the time of
//! the last byte kept for the idle timeout.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use sluice_core::telemetry::metrics::{Counter, Registry};

/// The most one read moves at a time.
const CHUNK: usize = 16 * 1024;
/// How long the other direction may go on once one side has closed (a WebSocket close reply).
const LINGER: Duration = Duration::from_secs(5);

/// Why a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The client closed its side first.
    ClientClosed,
    /// The upstream closed its side first.
    UpstreamClosed,
    /// A read or write failed (a reset connection).
    Error,
    /// No byte moved either way for the idle timeout.
    Idle,
    /// The tunnel reached its longest life.
    MaxDuration,
    /// The gateway's drain deadline passed.
    Drain,
}

/// How long a tunnel may live.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// A tunnel that carries no byte either way for this long is closed.
    pub idle: Duration,
    /// The longest it may stay open.
    pub max_duration: Duration,
}

/// What a tunnel carried, and when it last carried anything.
#[derive(Debug)]
pub struct Meter {
    started: Instant,
    last_ms: AtomicU64,
    upstream: AtomicU64,
    downstream: AtomicU64,
    upstream_total: Arc<Counter>,
    downstream_total: Arc<Counter>,
}

impl Meter {
    /// A meter for a tunnel of `route` opening now.
    pub fn new(registry: &Registry, route: &str) -> Self {
        let total = |direction| {
            registry.counter(
                "sluice_tunnel_bytes_total",
                &[("route", route), ("direction", direction)],
            )
        };
        Meter {
            started: Instant::now(),
            last_ms: AtomicU64::new(0),
            upstream: AtomicU64::new(0),
            downstream: AtomicU64::new(0),
            upstream_total: total("upstream"),
            downstream_total: total("downstream"),
        }
    }

    /// Bytes carried so far: (client to upstream, upstream to client).
    pub fn carried(&self) -> (u64, u64) {
        (
            self.upstream.load(Ordering::Relaxed),
            self.downstream.load(Ordering::Relaxed),
        )
    }

    fn moved(&self, to_upstream: bool, n: usize) {
        let n = n as u64;
        if to_upstream {
            self.upstream.fetch_add(n, Ordering::Relaxed);
            self.upstream_total.add(n);
        } else {
            self.downstream.fetch_add(n, Ordering::Relaxed);
            self.downstream_total.add(n);
        }
        self.last_ms
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// Returns once no byte has moved for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last = Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let Some(due) = self.started.checked_add(last).and_then(|t| t.checked_add(idle)) else {
                // Past what the clock can count: never idle.
                return std::future::pending().await;
            };
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }
}

/// Copies `from` into `to` until `from` ends (then shuts `to`'s writing side) or fails.
async fn copy<R, W>(mut from: R, mut to: W, meter: &Meter, to_upstream: bool) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buf[..n]).await?;
        to.flush().await?;
        meter.moved(to_upstream, n);
    }
}

/// Carries bytes between `client` and `upstream` until one side closes (the other direction
/// then gets a moment to finish), a copy fails, the tunnel idles or reaches its longest life
/// (both from `lifetime`), or `draining` completes.
pub async fn join<C, U>(
    client: C,
    upstream: U,
    meter: &Meter,
    lifetime: Lifetime,
    draining: impl Future<Output = ()>,
) -> Outcome
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let (client_read, client_write) = tokio::io::split(client);
    let (upstream_read, upstream_write) = tokio::io::split(upstream);
    let to_upstream = copy(client_read, upstream_write, meter, true);
    let to_client = copy(upstream_read, client_write, meter, false);
    let longest = tokio::time::sleep(lifetime.max_duration);
    let idle = meter.idle_for(lifetime.idle);
    tokio::pin!(to_upstream, to_client, longest, idle, draining);
    let linger = LINGER.min(lifetime.idle);
    tokio::select! {
        done = &mut to_upstream => {
            if done.is_err() {
                return Outcome::Error;
            }
            let _ = tokio::time::timeout(linger, to_client).await;
            Outcome::ClientClosed
        }
        done = &mut to_client => {
            if done.is_err() {
                return Outcome::Error;
            }
            let _ = tokio::time::timeout(linger, to_upstream).await;
            Outcome::UpstreamClosed
        }
        () = &mut idle => Outcome::Idle,
        () = &mut longest => Outcome::MaxDuration,
        () = &mut draining => Outcome::Drain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn lifetime(idle_ms: u64, max_ms: u64) -> Lifetime {
        Lifetime {
            idle: Duration::from_millis(idle_ms),
            max_duration: Duration::from_millis(max_ms),
        }
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_the_first_side_to_close_is_named() {
        let registry = Registry::new();
        let meter = Meter::new(&registry, "ws");
        let (client_end, mut client) = duplex(64);
        let (upstream_end, mut upstream) = duplex(64);
        let settings = lifetime(5_000, 60_000);
        let tunnel = join(client_end, upstream_end, &meter, settings, std::future::pending());
        let peers = async {
            client.write_all(b"hello").await.unwrap();
            let mut got = [0u8; 5];
            upstream.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"hello");
            upstream.write_all(b"hi!").await.unwrap();
            let mut back = [0u8; 3];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"hi!");
            drop(client);
            // The upstream sees the client's end, then ends its own side.
            let mut rest = Vec::new();
            upstream.read_to_end(&mut rest).await.unwrap();
            drop(upstream);
        };
        let (outcome, ()) = tokio::join!(tunnel, peers);
        assert_eq!(outcome, Outcome::ClientClosed);
        assert_eq!(meter.carried(), (5, 3));
        let total = registry.counter(
            "sluice_tunnel_bytes_total",
            &[("route", "ws"), ("direction", "upstream")],
        );
        assert_eq!(total.get(), 5);
    }

    #[tokio::test]
    async fn a_silent_tunnel_idles_out_and_a_drain_or_its_longest_life_ends_it() {
        let registry = Registry::new();
        let meter = Meter::new(&registry, "ws");
        let (a, _client) = duplex(64);
        let (b, _upstream) = duplex(64);
        let started = Instant::now();
        let outcome = join(a, b, &meter, lifetime(100, 60_000), std::future::pending()).await;
        assert_eq!(outcome, Outcome::Idle);
        assert!(started.elapsed() >= Duration::from_millis(100));

        let (a, _client) = duplex(64);
        let (b, _upstream) = duplex(64);
        let outcome = join(a, b, &meter, lifetime(60_000, 60_000), std::future::ready(())).await;
        assert_eq!(outcome, Outcome::Drain);

        let (a, _client) = duplex(64);
        let (b, _upstream) = duplex(64);
        let outcome = join(a, b, &meter, lifetime(60_000, 50), std::future::pending()).await;
        assert_eq!(outcome, Outcome::MaxDuration);
    }
}
