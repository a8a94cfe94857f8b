//! The values [`crate::decide`] returns: the stored response it is given ([`StoredMeta`]) and
//! its answers ([`RequestDecision`], [`ResponseDecision`]), each with the `Cache-Status`
//! member to send (RFC 9211).

/// A stored response as the plugin sees it: what the host keeps plus the two times the age
/// calculation needs (RFC 9111 §4.2.3). A time of 0 stands for "unknown":
/// `response_time_ms` falls back to `stored_at_ms`, `request_time_ms` to the response time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMeta {
    /// The stored status.
    pub status: u16,
    /// The stored header fields (as stored: already stripped).
    pub headers: Vec<(String, Vec<u8>)>,
    /// When the request that fetched it was sent upstream, in ms since the epoch.
    pub request_time_ms: u64,
    /// When its response head arrived, in ms since the epoch.
    pub response_time_ms: u64,
    /// When it was stored, in ms since the epoch.
    pub stored_at_ms: u64,
}

impl StoredMeta {
    pub(crate) fn times(&self) -> (u64, u64) {
        let response = if self.response_time_ms == 0 {
            self.stored_at_ms
        } else {
            self.response_time_ms
        };
        let request = if self.request_time_ms == 0 {
            response
        } else {
            self.request_time_ms
        };
        (request, response)
    }
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestAction {
    /// Do not use the cache: forward as is, store nothing (`detail` says why: `method`,
    /// `range`, `precondition`, `authorized`).
    Bypass {
        /// Why.
        detail: &'static str,
    },
    /// Serve the stored response with `Age: age_s`; a 304 instead when `not_modified` (the
    /// client's own conditional matched). `stale` when the client's `max-stale` allowed it.
    Hit {
        /// Answer 304 (with the stored validators and `Cache-Control`).
        not_modified: bool,
        /// The response's current age in whole seconds.
        age_s: u64,
        /// Served stale.
        stale: bool,
    },
    /// Serve the stale stored response (or 304) now and refresh it in the background with
    /// these validators (RFC 5861 `stale-while-revalidate`).
    HitStaleRevalidate {
        /// Answer 304.
        not_modified: bool,
        /// The response's current age in whole seconds.
        age_s: u64,
        /// The conditional headers for the background request.
        validators: Vec<(String, String)>,
    },
    /// Forward with these conditional headers (replacing the client's) and pass the answer to
    /// [`crate::decide::on_response`] with the stored response as `revalidating`. May be empty: then the
    /// request goes unconditionally, but a failure can still be answered stale.
    Revalidate {
        /// The conditional headers to send.
        validators: Vec<(String, String)>,
    },
    /// Nothing usable is stored: forward.
    Miss,
    /// `only-if-cached` and nothing usable: answer 504 (RFC 9111 §5.2.1.7).
    OnlyIfCachedMiss,
}

/// [`crate::decide::on_request`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestDecision {
    /// What to do.
    pub action: RequestAction,
    /// The `Cache-Status` member: final for hits and 504s, provisional when forwarding.
    pub cache_status: String,
}

/// What to do with an upstream response (or failure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseAction {
    /// Store it (without `strip_headers`) as it streams to the client.
    Store {
        /// How long it stays fresh, from now.
        ttl_ms: u64,
        /// Its age now (RFC 9111 §4.2.3), in whole seconds.
        age_s: u64,
        /// How long after that it may still be served stale (and revalidated).
        stale_ms: u64,
        /// Invalidation tags.
        tags: Vec<String>,
        /// Its `Vary` names (lower-case, sorted).
        vary: Vec<String>,
        /// Lower-case names of the fields to leave out of the stored copy.
        strip_headers: Vec<String>,
        /// The client's own conditional matches this new response (RFC 9111 §4.3.2): the
        /// client gets a 304 while the response is stored.
        not_modified: bool,
    },
    /// Pass it on; nothing is stored.
    NotStored {
        /// Why (the `Cache-Status` detail).
        detail: &'static str,
    },
    /// The revalidation got a 304: replace the stored headers with `merged_headers`, keep the
    /// body, set the new freshness (0 and 0 when the merged response may no longer be
    /// stored), and answer the client from it — a 304 when `not_modified`.
    Refreshed304 {
        /// The stored headers freshened with the 304's.
        merged_headers: Vec<(String, Vec<u8>)>,
        /// How long it stays fresh, from now.
        ttl_ms: u64,
        /// How long after that it may be served stale.
        stale_ms: u64,
        /// The client's own conditional matches the refreshed response.
        not_modified: bool,
    },
    /// The upstream failed while revalidating and `stale-if-error` allows: serve the stored
    /// response with `Age: age_s` instead of the error.
    UseStaleOnError {
        /// The stored response's current age in whole seconds.
        age_s: u64,
    },
}

/// [`crate::decide::on_response`]'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseDecision {
    /// What to do.
    pub action: ResponseAction,
    /// The `Cache-Status` member to send.
    pub cache_status: String,
}
