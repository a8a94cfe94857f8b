//! Request coalescing, the host side of the `coalesce` verdict (the dedup plugin's): identical
//! body-less requests in flight at once share one upstream fetch, and a successful answer is
//! replayed to identical requests for a short time.
//!
//! Keys are the plugin's key namespaced by route and plugin, so two routes never share. The
//! table is shared by every worker ([`Coalescer`] lives in the gateway state). The fetch runs
//! in its own task: the first request leaving does not cancel it; when every request waiting
//! on it has left, it is dropped (see `coalesce_flight.rs`). The body streams to every waiter
//! as it arrives from a log kept up to `server.max_body_bytes`: a body declared larger is not
//! shared (every waiter makes its own request), a body that grows past it without declaring
//! its length fails for its waiters (their connections are cut) and is not replayed.

mod body;
mod flight;
mod replay;
mod state;

use std::sync::Arc;

use hyper::{Request, Response};
use tokio::sync::oneshot;
use tracing::Instrument;

use body::WaitOutcome;
use flight::{Fetch, Flights, Joined, clone_request};
use replay::Replay;
use sluice_backends::Backends;
use sluice_backends::cache::RESERVED_PREFIX;
use sluice_core::body::ProxyBody;
use sluice_core::telemetry::metrics::Registry;
use sluice_core::upstream::{Upstream, UpstreamError};
use sluice_runtime::CoalesceRequest;

/// How a coalesced request was served (the `outcome` label of `sluice_dedup_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Answered from a replayed response.
    Replayed,
    /// Started a shared fetch (counted when it starts).
    Fetched,
    /// Joined a fetch another request started (counted when it joins, whatever the answer).
    Joined,
    /// Went upstream alone: `max-waiters` requests already shared the fetch.
    Alone,
    /// Waited, but the answer was not shared (an error, a 5xx, a body too large): went
    /// upstream on its own.
    Fallback,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Replayed => "replayed",
            Outcome::Fetched => "fetched",
            Outcome::Joined => "joined",
            Outcome::Alone => "alone",
            Outcome::Fallback => "fallback",
        }
    }
}

/// The in-flight table and the replay store of a gateway.
#[derive(Debug)]
pub struct Coalescer {
    flights: Arc<Flights>,
    replay: Arc<Replay>,
    metrics: Arc<Registry>,
}

/// The host key of a plugin key: `dedup:` + route + plugin + key (see
/// [`sluice_backends::scoped_key`]).
pub fn namespaced(route: &str, plugin: &str, key: &str) -> String {
    sluice_backends::scoped_key(RESERVED_PREFIX, route, plugin, key)
}

impl Coalescer {
    /// A coalescer replaying through `backends`' response cache (and its Redis level).
    pub fn new(backends: &Backends) -> Self {
        Coalescer {
            flights: Arc::default(),
            replay: Arc::new(Replay::new(backends.cache.clone(), backends.shared_cache.clone())),
            metrics: backends.metrics.clone(),
        }
    }

    /// How many shared fetches are in flight.
    pub fn in_flight(&self) -> usize {
        self.flights.len()
    }

    fn count(&self, route: &str, outcome: Outcome) {
        self.metrics
            .counter(
                "sluice_dedup_requests_total",
                &[("route", route), ("outcome", outcome.label())],
            )
            .add(1);
    }

    /// Sends the body-less request `req` to `upstream` as `request` asks: from a replayed
    /// response, by sharing an identical fetch in flight, or by starting one. `cap` bounds the
    /// shared body log. Errors are those of the request's own fetch, or of the shared one
    /// when the plugin shares errors.
    pub async fn send(
        &self,
        route: &str,
        request: &CoalesceRequest,
        upstream: &Arc<Upstream>,
        req: Request<ProxyBody>,
        cap: usize,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        let spec = &request.spec;
        let key = namespaced(route, &request.plugin, &spec.key);
        let ttl_ms = u64::from(spec.replay_ttl_ms);
        if ttl_ms > 0
            && let Some(resp) = self.replay.lookup(&key).await
        {
            self.count(route, Outcome::Replayed);
            return Ok(resp);
        }
        let (mut waiter, first) = match self.flights.join(&key, spec.max_waiters) {
            Joined::Full => {
                self.count(route, Outcome::Alone);
                return upstream.send(req, false).await;
            }
            Joined::Waiter(waiter) => {
                self.count(route, Outcome::Joined);
                (waiter, None)
            }
            Joined::Leader(waiter, flight) => {
                self.count(route, Outcome::Fetched);
                let (leader, answer) = oneshot::channel();
                let fetch = Fetch {
                    flights: self.flights.clone(),
                    flight,
                    key: key.clone(),
                    upstream: upstream.clone(),
                    request: clone_request(&req),
                    share_errors: spec.share_errors,
                    cap,
                    leader,
                    replay: (ttl_ms > 0).then(|| (self.replay.clone(), ttl_ms)),
                };
                tokio::spawn(fetch.run().in_current_span());
                (waiter, Some(answer))
            }
        };
        match waiter.head().await {
            WaitOutcome::Shared(head) => Ok(waiter.response(&head, cap)),
            WaitOutcome::Failed(error) => Err((*error).clone()),
            WaitOutcome::NotShared => {
                // The first request's own fetch is its answer; the others go on their own.
                if let Some(answer) = first
                    && let Ok(result) = answer.await
                {
                    return result;
                }
                self.count(route, Outcome::Fallback);
                upstream.send(req, false).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_namespaced_by_route_and_plugin_and_bounded() {
        let a = namespaced("r", "dedup", "k");
        assert_eq!(a, "dedup:1:r:5:dedup:k");
        assert_ne!(namespaced("r:5", "x", "k"), namespaced("r", "5:x", "k"));
        assert_ne!(namespaced("r", "dedup", "k"), namespaced("s", "dedup", "k"));
        assert_ne!(namespaced("r", "dedup", "k"), namespaced("r", "other", "k"));
        let long = namespaced("r", "dedup", &"x".repeat(100_000));
        assert!(long.len() < 100, "{long}");
        assert_ne!(long, namespaced("r", "dedup", &"x".repeat(100_001)));
    }
}
