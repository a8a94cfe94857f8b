//! The proxy's side of the HTTP cache: answering a request from a stored response
//! (`http-cache.serve`), storing a response as it streams (`store`), and the background
//! refresh of a response served stale within `stale-while-revalidate`.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::header::{CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};

use sluice_backends::http_cache::{CacheServe, KEY_PREFIX};
use sluice_backends::http_cache::{Direct, FillGuard, HttpCache, StoredEntry, Storing, store_body};
use sluice_backends::scoped_key;
use sluice_bindings::sluice::plugin::http_cache::ServeAs;
use sluice_bindings::{RequestHead, ResponseHead};
use sluice_core::body::{ProxyBody, empty, full};
use sluice_core::headers;
use sluice_core::range;
use sluice_core::time::unix_ms;
use sluice_core::upstream::Upstream;
use sluice_runtime::state::CacheStore;
use sluice_runtime::verdict;
use sluice_runtime::{Chain, NoBody, RequestOutcome, ResponseEdits};

use crate::answer::{Answer, Timing};
use crate::exchange::Exchange;

/// The answer for a request the chain answered from the cache (`http-cache.serve`): the
/// stored response as it is kept when it is fresh and no plugin before the caching one has a
/// response hook, else its head and body for the response hooks; a response served stale
/// within `stale-while-revalidate` starts its background refresh.
pub fn answer(ex: &Exchange<'_>, head: &RequestHead, serve: CacheServe) -> Answer {
    let chain = &ex.route.chain;
    let (how, base) = (serve.how, serve.base.clone());
    let ranged = head.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("range"));
    if how == ServeAs::Fresh
        && !ranged
        && !chain.plugins()[..ex.ran]
            .iter()
            .any(|p| p.has_hook(sluice_bindings::Hook::ResponseHeaders))
    {
        return Answer::Direct(served_directly(&serve, &head.method));
    }
    let (stored_head, body) = served(serve, head);
    if how == ServeAs::StaleWhileRevalidate
        && let Some(upstream) = &ex.route.upstream
    {
        let refresh = Refresh {
            chain: chain.clone(),
            at: ex.ran,
            upstream: upstream.clone(),
            head: head.clone(),
            cache: ex.backends.http_cache.clone(),
        };
        spawn_refresh(refresh, &base);
    }
    Answer::Stored {
        head: stored_head,
        body,
    }
}

/// The head and body a served stored response answers `req` with: a 304 without a body for
/// `not-modified`, no body for HEAD, the part a `Range` asks for (206, or 416 when it cannot
/// be satisfied), the stored body otherwise.
pub fn served(serve: CacheServe, req: &RequestHead) -> (ResponseHead, Bytes) {
    let entry = &serve.entry;
    let not_modified = serve.how == ServeAs::NotModified;
    let mut head = ResponseHead {
        status: if not_modified { 304 } else { entry.status },
        headers: entry.headers.clone(),
    };
    verdict::apply_edits(&mut head.headers, serve.edits);
    head.headers.retain(|(n, _)| !n.eq_ignore_ascii_case("content-length"));
    if not_modified || req.method == "HEAD" {
        if !not_modified {
            // Response hooks see the stored body's length, as they would an upstream's.
            head.headers
                .push(("content-length".to_string(), entry.body.len().to_string().into_bytes()));
        }
        return (head, Bytes::new());
    }
    let mut body = entry.body.clone();
    head.headers
        .push(("content-length".to_string(), body.len().to_string().into_bytes()));
    range::apply(
        &req.method,
        &req.headers,
        &mut head.status,
        &mut head.headers,
        &mut body,
    );
    (head, body)
}

/// The response a fresh stored response answers with when no response hook has to see it:
/// the header map kept with the entry, the serve's edits set on it, the body shared.
pub fn served_directly(serve: &CacheServe, method: &str) -> Response<ProxyBody> {
    let entry = &serve.entry;
    let body = if method == "HEAD" {
        empty()
    } else {
        full(entry.body.clone())
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(entry.status).unwrap_or(StatusCode::OK);
    let headers = resp.headers_mut();
    // A fresh map with room for the fields this hit and the access step add: a clone of the
    // stored one has none, and grew its field list twice per hit.
    let stored = entry.header_map();
    *headers = HeaderMap::with_capacity(stored.len() + 8);
    for (name, value) in stored {
        headers.append(name.clone(), value.clone());
    }
    // As `verdict::apply_edits` does: remove, then set, then append (all checked already).
    let edits = &serve.edits;
    for name in &edits.remove {
        if let Ok(n) = HeaderName::from_bytes(name.as_bytes()) {
            headers.remove(n);
        }
    }
    let parsed = |(name, value): &(String, Vec<u8>)| {
        Some((
            HeaderName::from_bytes(name.as_bytes()).ok()?,
            HeaderValue::from_bytes(value).ok()?,
        ))
    };
    for (n, v) in edits.set.iter().filter_map(parsed) {
        headers.insert(n, v);
    }
    for (n, v) in edits.append.iter().filter_map(parsed) {
        headers.append(n, v);
    }
    headers.insert(CONTENT_LENGTH, HeaderValue::from(entry.body.len()));
    resp
}

/// Wraps `body` so the response is stored as `store` asks once it has streamed whole; the
/// body as it is when the request or response cannot be stored (HEAD, 206, no head).
pub fn store_as_it_streams(
    cache: &Arc<HttpCache>,
    store: CacheStore,
    fill: Option<FillGuard>,
    req: &RequestHead,
    timing: Timing,
    body: ProxyBody,
) -> ProxyBody {
    let Some(head) = store.head else {
        return body;
    };
    if req.method != "GET" || head.status == 206 {
        return body;
    }
    let keep = store.spec.ttl_ms.saturating_add(store.spec.stale_ms);
    let now = unix_ms();
    let direct = store.direct.map(|d| Direct {
        until_ms: now.saturating_add(d.fresh_ms),
        age_s: d.age_s,
        stored_ms: now,
        parts: (
            req.route.clone(),
            store.plugin.to_string(),
            req.authority.clone(),
            req.path.clone(),
        ),
    });
    let headers = head
        .headers
        .into_iter()
        .filter(|(n, _)| !store.strip.iter().any(|s| s.eq_ignore_ascii_case(n)))
        .collect();
    let entry = StoredEntry {
        status: head.status,
        headers,
        body: Bytes::new(),
        request_time_ms: timing.sent_ms,
        response_time_ms: timing.received_ms,
        keep_until_ms: unix_ms().saturating_add(keep),
        tags: store.spec.tags,
        target: req.path.clone(),
        direct,
        built: Default::default(),
    };
    let storing = Storing {
        cache: cache.clone(),
        base: scoped_key(KEY_PREFIX, &req.route, &store.plugin, &store.spec.key),
        vary: store.spec.vary,
        request: req.headers.clone(),
        entry,
        fill,
        generation: timing.generation,
    };
    let limit = cache.max_object_bytes();
    store_body(body, storing, limit).boxed()
}

/// What a background refresh needs: the chain after the caching plugin, the upstream and the
/// request as that plugin saw it.
pub struct Refresh {
    /// The route's chain.
    pub chain: Arc<Chain>,
    /// The caching plugin's place in the chain.
    pub at: usize,
    /// The route's upstream.
    pub upstream: Arc<Upstream>,
    /// The request (its head as the caching plugin saw it).
    pub head: RequestHead,
    /// The cache.
    pub cache: Arc<HttpCache>,
}

/// Starts the background refresh of the response served stale under `base`, unless one of
/// it runs already.
pub fn spawn_refresh(refresh: Refresh, base: &str) {
    let Some(guard) = refresh.cache.begin_refresh(base) else {
        return;
    };
    tokio::spawn(async move {
        let target = refresh.head.path.clone();
        if let Err(why) = run_refresh(refresh).await {
            tracing::info!(%target, "http cache: background refresh failed: {why}");
        }
        drop(guard);
    });
}

/// Sends the request through the plugins after the caching one and the upstream, runs the
/// response hooks back to the caching plugin, and streams the body into the cache when one
/// of them stored it.
async fn run_refresh(r: Refresh) -> Result<(), String> {
    let mut head = r.head;
    // The refresh asks for the whole response: the client's validators are its own.
    head.headers.retain(|(n, _)| {
        ![
            "if-none-match",
            "if-modified-since",
            "if-match",
            "if-unmodified-since",
            "if-range",
        ]
        .iter()
        .any(|c| n.eq_ignore_ascii_case(c))
    });
    // Later plugins' `response.edit` edits reach the refreshed response before the caching
    // plugin's hook sees it, as they would on a client's request.
    let mut replies = ResponseEdits::default();
    match r
        .chain
        .on_request_from(r.at + 1, &mut head, &mut NoBody, &mut replies)
        .await
    {
        RequestOutcome::Forward(_) => {}
        RequestOutcome::Respond { .. } | RequestOutcome::Cached { .. } => {
            return Err("a later plugin answered the refresh itself".into());
        }
    }
    let mut parts = Request::get(head.path.as_str())
        .body(empty())
        .map_err(|e| e.to_string())?
        .into_parts()
        .0;
    parts.headers = headers::from_plugin(head.headers.clone());
    headers::strip_hop_by_hop(&mut parts.headers);
    if let Ok(v) = HeaderValue::from_str(&head.authority) {
        parts.headers.insert(hyper::header::HOST, v);
    }
    let sent_ms = unix_ms();
    let generation = r.cache.generation();
    let resp = r
        .upstream
        .send(Request::from_parts(parts, empty()), false)
        .await
        .map_err(|e| e.to_string())?;
    let timing = Timing {
        sent_ms,
        received_ms: unix_ms(),
        generation,
    };
    let (mut resp_parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut resp_parts.headers);
    let mut resp_head = ResponseHead {
        status: resp_parts.status.as_u16(),
        headers: headers::to_plugin(&resp_parts.headers),
    };
    let outcome = r
        .chain
        .on_response_range(&head, &mut resp_head, r.at..r.chain.plugins().len(), &replies)
        .await;
    let Some(store) = outcome.store else {
        return Ok(());
    };
    let body = match outcome.body {
        Some(bytes) => full(bytes),
        None => body,
    };
    let stored = store_as_it_streams(&r.cache, store, None, &head, timing, body);
    stored.collect().await.map(drop).map_err(|e| e.to_string())
}
