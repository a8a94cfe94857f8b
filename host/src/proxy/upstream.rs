//! Upstreams: targets behind one pooled hyper client, with round-robin or least-in-flight
//! balancing, connect and response timeouts, and errors that say which upstream and why.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::body::ProxyBody;
use crate::config::{Balance, UpstreamDef};

/// One target of an upstream.
#[derive(Debug)]
pub struct Target {
    /// `host:port`.
    pub authority: String,
    in_flight: AtomicUsize,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl Target {
    /// Requests to this target now in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
    /// Requests sent to this target.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Requests to this target that failed (connect error, timeout, reset).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
}

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made (502).
    #[error("cannot connect to {target}: {reason}")]
    Connect {
        /// The target.
        target: String,
        /// The error.
        reason: String,
    },
    /// The response head did not arrive in time (504).
    #[error("{target} did not answer within {timeout_ms} ms")]
    Timeout {
        /// The target.
        target: String,
        /// The timeout.
        timeout_ms: u64,
    },
    /// The connection failed after it was made (502).
    #[error("{target} failed: {reason}")]
    Failed {
        /// The target.
        target: String,
        /// The error.
        reason: String,
    },
}

/// Counts a request in flight on a target until dropped.
struct InFlight<'a>(&'a Target);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream: targets, a pooled client, a balancing policy.
#[derive(Debug)]
pub struct Upstream {
    /// The upstream's name in the config.
    pub name: String,
    targets: Vec<Arc<Target>>,
    client: Client<HttpConnector, ProxyBody>,
    balance: Balance,
    next: AtomicUsize,
    request_timeout: Duration,
}

impl Upstream {
    /// An upstream from its config; the client's pool starts empty.
    pub fn new(name: &str, def: &UpstreamDef) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(def.connect_timeout_ms)));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(def.max_idle_per_target)
            .pool_idle_timeout(Duration::from_millis(def.idle_timeout_ms))
            .pool_timer(TokioTimer::new())
            .http2_only(def.http2)
            .build(connector);
        let targets = def
            .targets
            .iter()
            .map(|t| {
                Arc::new(Target {
                    authority: t.strip_prefix("http://").unwrap_or(t).trim_end_matches('/').to_string(),
                    in_flight: AtomicUsize::new(0),
                    requests: AtomicU64::new(0),
                    failures: AtomicU64::new(0),
                })
            })
            .collect();
        Upstream {
            name: name.to_string(),
            targets,
            client,
            balance: def.balance,
            next: AtomicUsize::new(0),
            request_timeout: Duration::from_millis(def.request_timeout_ms),
        }
    }

    /// The targets.
    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// The target the next request goes to.
    fn pick(&self) -> &Target {
        match self.balance {
            Balance::RoundRobin => {
                let i = self.next.fetch_add(1, Ordering::Relaxed);
                &self.targets[i % self.targets.len()]
            }
            Balance::LeastInFlight => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                let n = self.targets.len();
                (0..n)
                    .map(|k| &self.targets[(start + k) % n])
                    .min_by_key(|t| t.in_flight())
                    .expect("an upstream has targets")
            }
        }
    }

    /// Sends `req` (whose URI holds only the path and query) to a target and waits for the
    /// response head.
    pub async fn send(&self, mut req: Request<ProxyBody>) -> Result<Response<Incoming>, UpstreamError> {
        let target = self.pick();
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let uri = format!("http://{}{path}", target.authority);
        *req.uri_mut() = uri.parse().map_err(|e| UpstreamError::Failed {
            target: target.authority.clone(),
            reason: format!("bad URI {uri}: {e}"),
        })?;
        target.requests.fetch_add(1, Ordering::Relaxed);
        target.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = InFlight(target);
        let result = tokio::time::timeout(self.request_timeout, self.client.request(req)).await;
        let error = match result {
            Ok(Ok(resp)) => return Ok(resp),
            Err(_) => UpstreamError::Timeout {
                target: target.authority.clone(),
                timeout_ms: self.request_timeout.as_millis() as u64,
            },
            Ok(Err(e)) if e.is_connect() => UpstreamError::Connect {
                target: target.authority.clone(),
                reason: source_chain(&e),
            },
            Ok(Err(e)) => UpstreamError::Failed {
                target: target.authority.clone(),
                reason: source_chain(&e),
            },
        };
        target.failures.fetch_add(1, Ordering::Relaxed);
        Err(error)
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
