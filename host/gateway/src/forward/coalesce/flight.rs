//! The in-flight table of request coalescing and the fetch each entry runs.
//!
//! An entry (a [`Flight`]) is one upstream fetch shared by identical requests. Its state (the
//! response head, a log of the body's chunks, how the body ended) sits in a `watch` channel:
//! the fetch task appends and notifies, every waiter holds a receiver and reads the log from
//! its own position, so a late joiner replays the body from the start. The table is a mutex
//! over a map, shared by every worker thread; a request joins under the lock, so the decision
//! to remove an entry (also under the lock) never races a join.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use http_body_util::BodyExt;
use hyper::header::CONTENT_LENGTH;
use hyper::{Request, Response};
use parking_lot::Mutex;
use tokio::sync::{oneshot, watch};

use super::body::Waiter;
use super::replay::Replay;
use super::state::{BodyEnd, FlightState, Head, SharedHead};
use sluice_core::body::ProxyBody;
use sluice_core::headers;
use sluice_core::upstream::{Upstream, UpstreamError};

/// One shared fetch.
#[derive(Debug)]
pub(super) struct Flight {
    tx: watch::Sender<FlightState>,
    /// Requests admitted so far (the first included); bounded by `max-waiters`.
    admitted: AtomicU32,
}

/// What joining the table gave a request.
pub(super) enum Joined {
    /// No fetch was in flight: this request starts one (and waits on it like the others).
    Leader(Waiter, Arc<Flight>),
    /// A fetch was in flight: this request waits on it.
    Waiter(Waiter),
    /// A fetch was in flight with `max-waiters` requests already: go upstream alone.
    Full,
}

/// The in-flight table, shared by every worker.
#[derive(Debug, Default)]
pub(super) struct Flights {
    map: Mutex<HashMap<String, Arc<Flight>>>,
}

impl Flights {
    /// Joins the flight under `key`, or starts one; at most `max_waiters` requests share one.
    pub fn join(&self, key: &str, max_waiters: u32) -> Joined {
        let mut map = self.map.lock();
        if let Some(flight) = map.get(key) {
            if flight.admitted.load(Ordering::Relaxed) >= max_waiters {
                return Joined::Full;
            }
            flight.admitted.fetch_add(1, Ordering::Relaxed);
            return Joined::Waiter(Waiter::new(flight.tx.subscribe()));
        }
        let (tx, rx) = watch::channel(FlightState {
            head: Head::Pending,
            chunks: Vec::new(),
            end: BodyEnd::Open,
        });
        let flight = Arc::new(Flight {
            tx,
            admitted: AtomicU32::new(1),
        });
        map.insert(key.to_string(), flight.clone());
        Joined::Leader(Waiter::new(rx), flight)
    }

    /// How many fetches are in flight.
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// Removes `flight` from under `key` (unless another flight took its place).
    fn remove(&self, key: &str, flight: &Arc<Flight>) {
        let mut map = self.map.lock();
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            map.remove(key);
        }
    }

    /// Removes `flight` when no request waits on it any more; whether it did. Joins happen
    /// under the same lock, so none can slip in between the count and the removal.
    fn abandon_if_unused(&self, key: &str, flight: &Arc<Flight>) -> bool {
        let mut map = self.map.lock();
        if flight.tx.receiver_count() > 0 {
            return false;
        }
        if map.get(key).is_some_and(|f| Arc::ptr_eq(f, flight)) {
            map.remove(key);
        }
        true
    }
}

/// A fetch to run for a flight, in its own task.
pub(super) struct Fetch {
    pub flights: Arc<Flights>,
    pub flight: Arc<Flight>,
    pub key: String,
    pub upstream: Arc<Upstream>,
    pub request: Request<ProxyBody>,
    pub share_errors: bool,
    /// The most body bytes kept in the shared log.
    pub cap: usize,
    /// Where the first request gets the fetch's own answer when it is not shared.
    pub leader: oneshot::Sender<Result<Response<ProxyBody>, UpstreamError>>,
    /// Where a successful answer is kept for replay, and for how long (ms).
    pub replay: Option<(Arc<Replay>, u64)>,
}

impl Fetch {
    fn publish(&self, change: impl FnOnce(&mut FlightState)) {
        self.flight.tx.send_modify(change);
    }

    /// Waits for `work` unless every waiter leaves first (then `None`: the fetch is
    /// abandoned and removed from the table).
    async fn unless_abandoned<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return Some(out),
                () = self.flight.tx.closed() => {
                    if self.flights.abandon_if_unused(&self.key, &self.flight) {
                        return None;
                    }
                }
            }
        }
    }

    /// Sends the request, publishes the head, then the body chunk by chunk. If every waiter
    /// leaves, the fetch is dropped (its upstream connection closed) and nothing is stored.
    pub async fn run(mut self) {
        let request = std::mem::replace(&mut self.request, Request::new(sluice_core::body::empty()));
        let upstream = self.upstream.clone();
        let Some(result) = self.unless_abandoned(upstream.send(request, false)).await else {
            self.publish(|s| s.head = Head::NotShared);
            return;
        };
        let resp = match result {
            Ok(resp) => resp,
            Err(error) if self.share_errors => {
                self.flights.remove(&self.key, &self.flight);
                self.publish(|s| s.head = Head::Failed(Arc::new(error)));
                return;
            }
            Err(error) => return self.not_shared(Err(error)),
        };
        let declared = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let too_large = declared.is_some_and(|len| len > self.cap as u64);
        if too_large || (resp.status().is_server_error() && !self.share_errors) {
            return self.not_shared(Ok(resp));
        }
        let (mut parts, mut body) = resp.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        let head = Arc::new(SharedHead {
            status: parts.status,
            headers: parts.headers,
        });
        self.publish(|s| s.head = Head::Shared(head.clone()));
        let mut size = 0usize;
        let end = loop {
            let Some(frame) = self.unless_abandoned(body.frame()).await else {
                return;
            };
            match frame {
                None => break BodyEnd::Complete,
                Some(Err(e)) => break BodyEnd::Failed(e.to_string()),
                Some(Ok(frame)) => {
                    // Trailers are not shared: only data frames go into the log.
                    let Ok(data) = frame.into_data() else { continue };
                    size += data.len();
                    if size > self.cap {
                        break BodyEnd::Overflow;
                    }
                    self.publish(|s| s.chunks.push(data));
                }
            }
        };
        let stored = match (&end, &self.replay) {
            (BodyEnd::Complete, Some((replay, ttl_ms))) => {
                let chunks = self.flight.tx.borrow().chunks.clone();
                replay.keep_in_memory(&self.key, &head, &chunks, *ttl_ms)
            }
            _ => None,
        };
        self.publish(|s| s.end = end);
        self.flights.remove(&self.key, &self.flight);
        if let (Some(entry), Some((replay, _))) = (stored, &self.replay) {
            replay.share(&self.key, entry).await;
        }
    }

    /// Ends the flight without sharing: the first request gets `result`, the others go on
    /// their own.
    fn not_shared(self, result: Result<Response<ProxyBody>, UpstreamError>) {
        self.flights.remove(&self.key, &self.flight);
        let _ = self.leader.send(result);
        self.flight.tx.send_modify(|s| s.head = Head::NotShared);
    }
}

/// A copy of a body-less request (method, URI, version, headers).
pub(super) fn clone_request(req: &Request<ProxyBody>) -> Request<ProxyBody> {
    let mut copy = Request::new(sluice_core::body::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    copy
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use hyper::StatusCode;
    use hyper::header::HeaderMap;

    use super::*;
    use crate::forward::coalesce::body::WaitOutcome;

    fn leader(flights: &Flights, key: &str, max: u32) -> (Waiter, Arc<Flight>) {
        match flights.join(key, max) {
            Joined::Leader(waiter, flight) => (waiter, flight),
            _ => panic!("expected to lead"),
        }
    }

    fn waiter(flights: &Flights, key: &str, max: u32) -> Waiter {
        match flights.join(key, max) {
            Joined::Waiter(waiter) => waiter,
            _ => panic!("expected to wait"),
        }
    }

    #[test]
    fn a_key_admits_max_waiters_then_sends_the_rest_alone() {
        let flights = Flights::default();
        let (_first, flight) = leader(&flights, "k", 3);
        let _second = waiter(&flights, "k", 3);
        let _third = waiter(&flights, "k", 3);
        assert!(matches!(flights.join("k", 3), Joined::Full));
        let (_other, _) = leader(&flights, "other", 3);
        assert_eq!(flights.len(), 2);
        flights.remove("k", &flight);
        let (_again, _) = leader(&flights, "k", 3);
    }

    #[test]
    fn a_flight_is_abandoned_only_when_nobody_waits_on_it() {
        let flights = Flights::default();
        let (first, flight) = leader(&flights, "k", 10);
        let second = waiter(&flights, "k", 10);
        drop(first);
        assert!(!flights.abandon_if_unused("k", &flight), "one request still waits");
        drop(second);
        assert!(flights.abandon_if_unused("k", &flight));
        assert_eq!(flights.len(), 0);
    }

    #[tokio::test]
    async fn waiters_stream_the_log_and_a_late_joiner_replays_it_from_the_start() {
        let flights = Flights::default();
        let (mut early, flight) = leader(&flights, "k", 10);
        let head = Arc::new(SharedHead {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
        });
        flight.tx.send_modify(|s| s.head = Head::Shared(head.clone()));
        let WaitOutcome::Shared(h) = early.head().await else {
            panic!("not shared")
        };
        let mut early_body = early.response(&h, 1024).into_body();
        flight.tx.send_modify(|s| s.chunks.push(Bytes::from_static(b"one ")));
        let frame = early_body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "one ");

        let mut late = waiter(&flights, "k", 10);
        let WaitOutcome::Shared(h) = late.head().await else {
            panic!("not shared")
        };
        let late_body = late.response(&h, 1024).into_body();
        flight.tx.send_modify(|s| s.chunks.push(Bytes::from_static(b"two")));
        flight.tx.send_modify(|s| s.end = BodyEnd::Complete);
        assert_eq!(early_body.collect().await.unwrap().to_bytes(), "two");
        assert_eq!(late_body.collect().await.unwrap().to_bytes(), "one two");
    }

    #[tokio::test]
    async fn an_overflowing_or_failed_body_fails_its_waiters() {
        for (end, needle) in [
            (BodyEnd::Overflow, "shared buffer"),
            (BodyEnd::Failed("reset".into()), "reset"),
        ] {
            let flights = Flights::default();
            let (mut first, flight) = leader(&flights, "k", 10);
            let head = Arc::new(SharedHead {
                status: StatusCode::OK,
                headers: HeaderMap::new(),
            });
            flight.tx.send_modify(|s| {
                s.head = Head::Shared(head);
                s.chunks.push(Bytes::from_static(b"partial"));
                s.end = end;
            });
            let WaitOutcome::Shared(h) = first.head().await else {
                panic!("not shared")
            };
            let error = first.response(&h, 7).into_body().collect().await.unwrap_err();
            assert!(error.to_string().contains(needle), "{error}");
        }
    }

    #[tokio::test]
    async fn a_fetch_that_ends_without_a_head_sends_waiters_on_their_own() {
        let flights = Flights::default();
        let (mut first, flight) = leader(&flights, "k", 10);
        flights.remove("k", &flight);
        drop(flight);
        assert!(matches!(first.head().await, WaitOutcome::NotShared));
    }
}
