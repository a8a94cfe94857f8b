//! Upstreams: targets reached over each request worker's own connections (`connections.rs`),
//! with round-robin or least-in-flight balancing, a circuit breaker and an optional active
//! health check per target, retries for requests that can be replayed within a retry budget,
//! connect and response timeouts, and errors that say which upstream and why.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::http::uri::{Authority, PathAndQuery, Scheme};
use hyper::{HeaderMap, Method, Request, Response, Uri};
use hyper_util::client::legacy::connect::HttpConnector;

use http_body_util::BodyExt;

use super::body::{BoxError, ProxyBody, empty, observed};
use super::breaker::{Admit, Breaker};
use super::pool::{self, ConnectionStats, CountingConnector};
use crate::telemetry::metrics::{Counter, Registry};
use crate::workers;
use connections::{Connections, SendError};
use sluice_config::{Balance, HealthCheck, UpstreamDef};

mod connections;

/// One target of an upstream.
#[derive(Debug)]
pub struct Target {
    /// Its place among the upstream's targets.
    index: usize,
    /// `host:port`.
    pub authority: String,
    /// `authority`, parsed once.
    parsed: Authority,
    in_flight: AtomicUsize,
    requests: Arc<Counter>,
    failures: AtomicU64,
    healthy: AtomicBool,
    breaker: Breaker,
    connections: Arc<ConnectionStats>,
}

impl Target {
    /// Requests to this target now in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
    /// Requests sent to this target (counted across reloads).
    pub fn requests(&self) -> u64 {
        self.requests.get()
    }
    /// Connections opened to this target (counted across reloads).
    pub fn connections_opened(&self) -> u64 {
        self.connections.opened.get()
    }
    /// Connections to this target open now, busy or idle.
    pub fn connections_open(&self) -> usize {
        self.connections.open()
    }
    /// The share of open connections busy with a request.
    pub fn pool_utilization(&self) -> f64 {
        pool::utilization(self.in_flight(), self.connections_open())
    }
    /// The share of requests sent on a connection that was already open.
    pub fn connection_reuse_rate(&self) -> f64 {
        pool::reuse_rate(self.requests(), self.connections_opened())
    }
    /// Requests to this target that failed (connect error, timeout, reset).
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }
    /// Whether the last active health check passed (true without health checks).
    pub fn healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
    /// Whether the circuit breaker keeps this target out now.
    pub fn breaker_open(&self) -> bool {
        self.breaker.is_open()
    }
}

/// Why an upstream call failed.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// Every target is out (breaker open or health check failing) (503 with Retry-After).
    #[error("no target is available: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
        /// When to try again, in seconds.
        retry_after_secs: u64,
    },
}

/// A shorter wait for the response head than the upstream's `request_timeout_ms`, put in a
/// request's extensions (a gRPC call's `grpc-timeout`): [`Upstream::send`] waits for the
/// shorter of the two.
#[derive(Debug, Clone, Copy)]
pub struct HeadDeadline(pub Duration);

/// Counts a request in flight on a target until dropped.
struct InFlight(Arc<Target>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What is needed to send a request again: only requests without a body can be replayed.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    idempotent: bool,
}

/// An upstream: targets, a pooled client, a balancing policy, breakers and retries.
#[derive(Debug)]
pub struct Upstream {
    /// The upstream's name in the config.
    pub name: String,
    targets: Vec<Arc<Target>>,
    /// The connections of each request worker (so a worker's requests reuse connections that
    /// worker drives), then of everything else (health checks, tests).
    connections: Vec<Arc<Connections>>,
    balance: Balance,
    next: AtomicUsize,
    request_timeout: Duration,
    retries: u32,
    retry_budget_percent: u64,
    requests: AtomicU64,
    retried: AtomicU64,
}

impl Upstream {
    /// An upstream from its config, with a connection pool for each of `workers` request
    /// workers and one more; the pools start empty. Request and connection counters live in
    /// `registry` (so they continue across reloads). Health checks, when configured, run on a
    /// task that ends when the upstream is dropped.
    pub fn new(name: &str, def: &UpstreamDef, registry: &Registry, workers: usize) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(def.connect_timeout_ms)));
        connector.set_nodelay(true);
        connector.set_keepalive(Some(Duration::from_secs(60)));
        let open_for = Duration::from_millis(def.breaker_open_ms);
        let targets: Vec<Arc<Target>> = def
            .targets
            .iter()
            .enumerate()
            .map(|(index, t)| {
                let authority = t.strip_prefix("http://").unwrap_or(t).trim_end_matches('/').to_string();
                let labels = [("upstream", name), ("target", authority.as_str())];
                // Checked by config validation; an unparsable one fails each request with 502.
                let parsed = authority
                    .parse()
                    .unwrap_or_else(|_| Authority::from_static("invalid.target.invalid"));
                Arc::new(Target {
                    index,
                    in_flight: AtomicUsize::new(0),
                    requests: registry.counter("sluice_upstream_requests_total", &labels),
                    failures: AtomicU64::new(0),
                    healthy: AtomicBool::new(true),
                    breaker: Breaker::new(def.breaker_failures, open_for),
                    connections: Arc::new(ConnectionStats::new(
                        registry.counter("sluice_upstream_connections_opened_total", &labels),
                    )),
                    authority,
                    parsed,
                })
            })
            .collect();
        let counted = targets
            .iter()
            .map(|t| (t.authority.clone(), t.connections.clone()))
            .collect();
        let connector = CountingConnector::new(connector, counted);
        let idle_timeout = Duration::from_millis(def.idle_timeout_ms);
        let connections = (0..=workers)
            .map(|_| {
                Arc::new(Connections::new(
                    connector.clone(),
                    targets.len(),
                    def.http2,
                    def.max_idle_per_target,
                    idle_timeout,
                ))
            })
            .collect();
        let upstream = Arc::new(Upstream {
            name: name.to_string(),
            targets,
            connections,
            balance: def.balance,
            next: AtomicUsize::new(0),
            request_timeout: Duration::from_millis(def.request_timeout_ms),
            retries: def.retries,
            retry_budget_percent: def.retry_budget_percent.into(),
            requests: AtomicU64::new(0),
            retried: AtomicU64::new(0),
        });
        if let Some(check) = &def.health_check {
            tokio::spawn(health_checks(Arc::downgrade(&upstream), check.clone()));
        }
        // Off a runtime (a config check) nothing is ever sent, so nothing idles.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(close_idle(Arc::downgrade(&upstream), idle_timeout));
        }
        upstream
    }

    /// The connections of the calling thread's worker (the shared ones off the workers).
    fn connections(&self) -> &Arc<Connections> {
        let shared = self.connections.len() - 1;
        &self.connections[workers::current().map_or(shared, |i| i.min(shared))]
    }

    /// The targets.
    pub fn targets(&self) -> &[Arc<Target>] {
        &self.targets
    }

    /// The target the next request goes to, skipping `avoid` (a target that just failed),
    /// unhealthy targets and targets whose breaker is open.
    fn pick(&self, avoid: Option<&Target>) -> Result<(&Arc<Target>, Admit), UpstreamError> {
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let order = (0..n).map(|k| &self.targets[(start + k) % n]);
        let candidates: Vec<&Arc<Target>> = match self.balance {
            Balance::RoundRobin => order.collect(),
            Balance::LeastInFlight => {
                let mut v: Vec<&Arc<Target>> = order.collect();
                v.sort_by_key(|t| t.in_flight());
                v
            }
        };
        let mut wait = Duration::MAX;
        let mut unhealthy = 0;
        for target in candidates.iter().copied() {
            if avoid.is_some_and(|a| std::ptr::eq(a, &**target)) && n > 1 {
                continue;
            }
            if !target.healthy() {
                unhealthy += 1;
                continue;
            }
            match target.breaker.admit() {
                Admit::No(after) => wait = wait.min(after),
                admit => return Ok((target, admit)),
            }
        }
        let reason = if unhealthy == n {
            "every target fails its health check".to_string()
        } else {
            "every target's circuit breaker is open".to_string()
        };
        let retry_after_secs = if wait == Duration::MAX {
            1
        } else {
            wait.as_secs().max(1)
        };
        Err(UpstreamError::Unavailable {
            reason,
            retry_after_secs,
        })
    }

    fn retry_allowed(&self) -> bool {
        let requests = self.requests.load(Ordering::Relaxed);
        let retried = self.retried.load(Ordering::Relaxed);
        retried * 100 < requests * self.retry_budget_percent + 1000
    }

    /// Sends `req` (whose URI holds only the path and query) and waits for the response head.
    /// `has_body` says whether the request carries a body (then it cannot be retried).
    /// The response's body keeps the request counted in flight on its target until it ends
    /// or is dropped, so least-in-flight balancing sees long streams.
    pub async fn send(&self, req: Request<ProxyBody>, has_body: bool) -> Result<Response<ProxyBody>, UpstreamError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let timeout = req
            .extensions()
            .get::<HeadDeadline>()
            .map_or(self.request_timeout, |d| d.0.min(self.request_timeout));
        let replay = (!has_body && self.retries > 0).then(|| Replay {
            method: req.method().clone(),
            uri: req.uri().clone(),
            headers: req.headers().clone(),
            idempotent: matches!(
                *req.method(),
                Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE | Method::TRACE
            ),
        });
        let (mut target, _) = self.pick(None)?;
        let mut result = self.send_to(target, req, timeout).await;
        let mut attempts = 0;
        while let (Err(error), Some(replay)) = (&result, &replay) {
            let retryable = match error {
                UpstreamError::Connect { .. } => true,
                UpstreamError::Failed { .. } => replay.idempotent,
                _ => false,
            };
            if !retryable || attempts >= self.retries || !self.retry_allowed() {
                break;
            }
            attempts += 1;
            self.retried.fetch_add(1, Ordering::Relaxed);
            let Ok((next, _)) = self.pick(Some(target)) else { break };
            tracing::debug!(upstream = %self.name, from = %target.authority, to = %next.authority, %error, "retrying");
            target = next;
            let mut again = Request::new(empty());
            *again.method_mut() = replay.method.clone();
            *again.uri_mut() = replay.uri.clone();
            *again.headers_mut() = replay.headers.clone();
            result = self.send_to(target, again, timeout).await;
        }
        result
    }

    async fn send_to(
        &self,
        target: &Arc<Target>,
        mut req: Request<ProxyBody>,
        timeout: Duration,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let path = req.uri().path_and_query().cloned();
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(target.parsed.clone())
            .path_and_query(path.unwrap_or_else(|| PathAndQuery::from_static("/")))
            .build();
        *req.uri_mut() = uri.map_err(|e| UpstreamError::Failed {
            target: target.authority.clone(),
            reason: format!("bad URI for {}: {e}", target.authority),
        })?;
        target.requests.add(1);
        target.in_flight.fetch_add(1, Ordering::Relaxed);
        let guard = InFlight(target.clone());
        let sending = self.connections().send(target.index, &target.parsed, req);
        let error = match tokio::time::timeout(timeout, sending).await {
            Ok(Ok((resp, lent))) => {
                target.breaker.success();
                return Ok(resp.map(|body: Incoming| {
                    let body: ProxyBody = body.map_err(|e| Box::new(e) as BoxError).boxed();
                    observed(body, move |_, completed| {
                        drop(guard);
                        // Read to its end, the connection can carry the next request.
                        if let Some(lent) = lent.filter(|_| completed) {
                            lent.give_back();
                        }
                    })
                    .boxed()
                }));
            }
            Err(_) => UpstreamError::Timeout {
                target: target.authority.clone(),
                timeout_ms: timeout.as_millis() as u64,
            },
            Ok(Err(SendError::Connect(e))) => UpstreamError::Connect {
                target: target.authority.clone(),
                reason: source_chain(&*e),
            },
            Ok(Err(SendError::Failed(e))) => UpstreamError::Failed {
                target: target.authority.clone(),
                reason: source_chain(&e),
            },
        };
        target.failures.fetch_add(1, Ordering::Relaxed);
        target.breaker.failure();
        Err(error)
    }
}

/// Checks every target of the upstream each interval until the upstream is dropped.
async fn health_checks(upstream: Weak<Upstream>, check: HealthCheck) {
    let interval = Duration::from_millis(check.interval_ms);
    let timeout = Duration::from_millis(check.timeout_ms);
    loop {
        let Some(up) = upstream.upgrade() else { return };
        for target in &up.targets {
            let uri = format!("http://{}{}", target.authority, check.path);
            let Ok(uri) = uri.parse::<Uri>() else { continue };
            let mut req = Request::new(empty());
            *req.uri_mut() = uri;
            let sent = tokio::time::timeout(timeout, up.connections().send(target.index, &target.parsed, req)).await;
            let ok = matches!(&sent, Ok(Ok((resp, _))) if resp.status().is_success());
            // The check's answer is not read: its connection is not reused.
            drop(sent);
            if target.healthy.swap(ok, Ordering::Relaxed) != ok {
                tracing::warn!(upstream = %up.name, target = %target.authority, healthy = ok, "health changed");
            }
        }
        drop(up);
        tokio::time::sleep(interval).await;
    }
}

/// Closes each worker's idle connections once they have waited `idle_timeout`, until the
/// upstream is dropped.
async fn close_idle(upstream: Weak<Upstream>, idle_timeout: Duration) {
    let every = idle_timeout.clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::time::sleep(every).await;
        let Some(up) = upstream.upgrade() else { return };
        for connections in &up.connections {
            connections.close_expired();
        }
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
