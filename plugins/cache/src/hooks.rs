//! The hooks: [`crate::decide`]'s decisions carried out through the host's `http-cache`
//! interface. The request hook looks the request up and serves it, sends it upstream to
//! revalidate, or lets it miss (claiming the fill first, so identical misses on every instance
//! wait for one upstream fetch); the response hook stores, refreshes after a 304, answers an
//! upstream error from a stale copy, and invalidates after unsafe methods. Every response the
//! cache touched carries `Cache-Status`.

use sluice_plugin_sdk::http_cache::{self, DirectHits, Fill, ServeAs, StoredHead};
use sluice_plugin_sdk::{
    CacheSpec, Edits, Headers, HostError, RequestExt, RequestHead, RequestVerdict, Response, ResponseHead,
    ResponseVerdict, clock, log,
};

use crate::conditional::not_modified_headers;
use crate::decide::{self, RequestAction, ResponseAction, StoredMeta};
use crate::settings::Settings;

/// The chain-context entry carrying the cache key of a request the cache sent upstream.
pub const KEY: &str = "cache.key";
/// The chain-context entry marking a request sent upstream to revalidate a stored response.
pub const REVALIDATING: &str = "cache.revalidating";

/// The client's validators, replaced on the way upstream (an upstream 304 to the client's
/// own validators could not be stored). While revalidating, the client's values travel in the
/// chain context under `cache.client.NAME`, so the response hook judges the client's
/// conditional, not the cache's.
const CLIENT_VALIDATORS: [&str; 2] = ["if-none-match", "if-modified-since"];

/// The longest client validator carried in the context (the host's limit for a value).
const MAX_CARRIED: usize = 4096;

fn carried(name: &str) -> String {
    format!("cache.client.{name}")
}

fn warn(what: &str, e: &HostError) {
    log::write(log::Level::Warn, &format!("http-cache {what} failed: {e:?}"));
}

fn meta(h: StoredHead) -> StoredMeta {
    StoredMeta {
        status: h.status,
        headers: h.headers,
        request_time_ms: h.request_time_ms,
        response_time_ms: h.response_time_ms,
        stored_at_ms: h.response_time_ms,
    }
}

fn lookup(key: &str) -> Option<StoredMeta> {
    match http_cache::lookup(key) {
        Ok(found) => found.map(meta),
        Err(e) => {
            warn("lookup", &e);
            None
        }
    }
}

/// Edits every response the cache touches gets: the gateway's own targeted field (RFC 9213)
/// is consumed here and never goes downstream.
fn downstream(settings: &Settings) -> Edits {
    match &settings.target_field {
        Some(field) => Edits::new().remove(field),
        None => Edits::new(),
    }
}

/// Serves the stored response; whether the host did (it may have gone since the lookup).
fn serve(settings: &Settings, key: &str, how: ServeAs, age_s: u64, cache_status: &str) -> bool {
    let edits = downstream(settings)
        .set("age", age_s.to_string())
        .set("cache-status", cache_status)
        .build();
    http_cache::serve(key, how, &edits).unwrap_or_else(|e| {
        warn("serve", &e);
        false
    })
}

/// How a hit answers.
fn serve_as(not_modified: bool, stale: bool) -> ServeAs {
    match (not_modified, stale) {
        (true, _) => ServeAs::NotModified,
        (false, true) => ServeAs::Stale,
        (false, false) => ServeAs::Fresh,
    }
}

/// Runs `on-request-headers`.
pub fn on_request(settings: &Settings, req: &RequestHead) -> RequestVerdict {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        // Unsafe methods go upstream; the response hook invalidates what they changed.
        return RequestVerdict::Continue;
    }
    let key = decide::cache_key(settings, req).hash;
    let stored = lookup(&key);
    let decision = decide::on_request(settings, req, stored.as_ref(), clock::now_ms());
    let status = decision.cache_status;
    match decision.action {
        RequestAction::Bypass { .. } => RequestVerdict::Continue,
        RequestAction::Hit {
            not_modified,
            age_s,
            stale,
        } => {
            if serve(settings, &key, serve_as(not_modified, stale), age_s, &status) {
                RequestVerdict::Continue
            } else {
                miss(settings, req, &key)
            }
        }
        RequestAction::HitStaleRevalidate { age_s, .. } => {
            if serve(settings, &key, ServeAs::StaleWhileRevalidate, age_s, &status) {
                // The host's background refresh starts from this head: it carries the key
                // to the response hook, which stores the refreshed answer.
                Edits::new().context(KEY, &key).into()
            } else {
                miss(settings, req, &key)
            }
        }
        RequestAction::Revalidate { validators } => {
            let mut edits = without_client_validators(req);
            for (name, value) in validators {
                edits = edits.set(&name, value);
            }
            edits.context(KEY, &key).context(REVALIDATING, "1").into()
        }
        RequestAction::Miss => miss(settings, req, &key),
        RequestAction::OnlyIfCachedMiss => {
            let body =
                r#"{"error":"not_cached","message":"only-if-cached was asked and no usable response is stored"}"#;
            Response::json(504, body).header("cache-status", &status).into()
        }
    }
}

/// Edits taking the client's validators off the request (a 304 to them could not be stored)
/// and carrying them in the chain context, so the response hook judges them against what
/// comes back.
fn without_client_validators(req: &RequestHead) -> Edits {
    let mut edits = Edits::new();
    for name in CLIENT_VALIDATORS {
        if req.headers.get_bytes(name).is_none() {
            continue;
        }
        edits = edits.remove(name);
        if let Some(value) = req.headers.get_str(name).filter(|v| v.len() <= MAX_CARRIED) {
            edits = edits.context(&carried(name), value);
        }
    }
    edits
}

/// A miss: waits for another request's fill when one is in flight (then serves what it
/// stored), else leads the fill upstream; a `Range` request goes upstream on its own.
fn miss(settings: &Settings, req: &RequestHead, key: &str) -> RequestVerdict {
    // A `Range` miss gets a 206, which is not stored: it must not hold others' fill.
    if settings.fill_hold_ms > 0 && req.headers.get_bytes("range").is_none() {
        match http_cache::claim_fill(key, settings.fill_hold_ms, settings.fill_wait_ms) {
            Ok(Fill::Stored(head)) => {
                let decision = decide::on_request(settings, req, Some(&meta(head)), clock::now_ms());
                if let RequestAction::Hit {
                    not_modified,
                    age_s,
                    stale,
                } = decision.action
                    && serve(
                        settings,
                        key,
                        serve_as(not_modified, stale),
                        age_s,
                        &decision.cache_status,
                    )
                {
                    return RequestVerdict::Continue;
                }
            }
            Ok(Fill::Lead | Fill::GaveUp) => {}
            Err(e) => warn("claim-fill", &e),
        }
    }
    without_client_validators(req).context(KEY, key).into()
}

/// The request with the client's own validators in place of the cache's.
fn as_the_client_sent_it(req: &RequestHead) -> RequestHead {
    let mut client = req.clone();
    client
        .headers
        .retain(|(n, _)| !CLIENT_VALIDATORS.iter().any(|c| n.eq_ignore_ascii_case(c)));
    for name in CLIENT_VALIDATORS {
        if let Some(value) = req.context(&carried(name)) {
            client.headers.push((name.to_string(), value.as_bytes().to_vec()));
        }
    }
    client
}

fn with_status(settings: &Settings, cache_status: &str) -> ResponseVerdict {
    downstream(settings).set("cache-status", cache_status).into()
}

/// A 304 to the client's own conditional, with the fields of `headers` a 304 carries.
fn not_modified_answer(headers: &[(String, Vec<u8>)], cache_status: &str) -> ResponseVerdict {
    let mut answer = Response::new(304).header("cache-status", cache_status);
    for (name, value) in not_modified_headers(headers) {
        answer = answer.header(&name, value);
    }
    answer.into()
}

/// Runs `on-response-headers` (for requests the cache did not answer itself).
pub fn on_response(settings: &Settings, req: &RequestHead, resp: &ResponseHead) -> ResponseVerdict {
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        for path in decide::invalidations(req, resp) {
            for dropped in [
                http_cache::invalidate_target(&path),
                http_cache::invalidate_prefix(&format!("{path}?")),
            ] {
                if let Err(e) = dropped {
                    warn("invalidate", &e);
                }
            }
        }
        return match settings.target_field {
            Some(_) => downstream(settings).into(),
            None => ResponseVerdict::Continue,
        };
    }
    let now = clock::now_ms();
    let Some(key) = req.context(KEY) else {
        // Bypassed: say so.
        return with_status(
            settings,
            &decide::on_response(settings, req, resp, now, now, None).cache_status,
        );
    };
    let revalidating = req.context(REVALIDATING).and_then(|_| lookup(key));
    let client;
    // The cache's own validators (revalidation) or none (a miss) went upstream: the client's
    // are judged against the answer.
    let req = if revalidating.is_some()
        || CLIENT_VALIDATORS
            .iter()
            .any(|name| req.context(&carried(name)).is_some())
    {
        client = as_the_client_sent_it(req);
        &client
    } else {
        req
    };
    let decision = decide::on_response(settings, req, resp, now, now, revalidating.as_ref());
    let status = decision.cache_status;
    match decision.action {
        ResponseAction::Store {
            ttl_ms,
            age_s,
            stale_ms,
            tags,
            vary,
            strip_headers,
            not_modified,
        } => {
            let spec = CacheSpec {
                key: key.to_string(),
                ttl_ms,
                stale_ms,
                tags,
                vary,
            };
            // Fresh answers to identical simple requests need no judging: the host may give
            // them itself while the key is the URL alone.
            // The host gives direct hits with the stored head as it is: not with a field of
            // the gateway's own still in it.
            let own_field = settings
                .target_field
                .as_ref()
                .is_some_and(|f| resp.headers.get_bytes(f).is_some());
            let direct =
                (ttl_ms > 0 && !own_field && decide::direct_hits_allowed(settings, req)).then_some(DirectHits {
                    fresh_ms: ttl_ms,
                    age_s,
                });
            if let Err(e) = http_cache::store(&spec, &strip_headers, direct) {
                warn("store", &e);
                return with_status(settings, &status);
            }
            if not_modified {
                // The host stores the body without sending it (see `http-cache.store`).
                return not_modified_answer(&resp.headers, &status);
            }
            with_status(settings, &status)
        }
        ResponseAction::NotStored { .. } => with_status(settings, &status),
        ResponseAction::Refreshed304 {
            merged_headers,
            ttl_ms,
            stale_ms,
            not_modified,
        } => match http_cache::refresh(key, &merged_headers, ttl_ms, stale_ms) {
            Ok(true) if not_modified => not_modified_answer(&merged_headers, &status),
            Ok(true) => with_status(settings, &status),
            Ok(false) => with_status(settings, &format!("{status}; detail=entry-gone")),
            Err(e) => {
                warn("refresh", &e);
                with_status(settings, &status)
            }
        },
        ResponseAction::UseStaleOnError { age_s } => match http_cache::use_stored(key) {
            Ok(true) => downstream(settings)
                .set("age", age_s.to_string())
                .set("cache-status", &status)
                .into(),
            Ok(false) => with_status(settings, &status),
            Err(e) => {
                warn("use-stored", &e);
                with_status(settings, &status)
            }
        },
    }
}
