//! The two decisions the plugin makes, as pure functions over heads and times: what to do
//! with a request given what is stored ([`on_request`]), and what to do with the upstream's
//! response ([`on_response`], [`on_upstream_error`]); plus the invalidations a response
//! causes ([`invalidations`]). Each decision carries the `Cache-Status` member to send
//! (RFC 9211); for forwarded requests the response decision's value is the final one.

use sluice_plugin_sdk::{Headers, RequestExt, RequestHead, ResponseHead};

use crate::conditional::{client_not_modified, merge_not_modified, revalidation_headers, validators_agree};
use crate::dates::{ResponseDates, format_http_date};
use crate::directives::CacheControl;
use crate::freshness::{self, Lifetime, Source, Staleness, Usable};
use crate::key::CacheKey;
pub use crate::outcome::{RequestAction, RequestDecision, ResponseAction, ResponseDecision, StoredMeta};
use crate::policy::Policy;
use crate::settings::Settings;
use crate::status::{CacheStatus, Fwd};
use crate::storable::{self, is_authorized};
use crate::targeted;
use crate::variants::Vary;

/// The cache key of `req` (see [`crate::key`]).
pub fn cache_key(settings: &Settings, req: &RequestHead) -> CacheKey {
    crate::key::cache_key(&settings.policy(req.path_only()), req)
}

/// Requests the cache stays out of. `Range` requests are not among them: the host serves
/// them from a stored complete response (206 / 416), and on a miss they go upstream without
/// claiming the fill (the 206 they get is not stored).
fn bypass(policy: &Policy, req: &RequestHead) -> Option<(Fwd, &'static str)> {
    let has = |name: &str| req.headers.get_bytes(name).is_some();
    if !matches!(req.method.as_str(), "GET" | "HEAD") {
        Some((Fwd::Method, "method"))
    } else if has("if-match") || has("if-unmodified-since") {
        Some((Fwd::Bypass, "precondition"))
    } else if !policy.cache_authorized && is_authorized(req) {
        Some((Fwd::Bypass, "authorized"))
    } else {
        None
    }
}

/// A stored (or just received) response's freshness facts.
struct Facts {
    cc: CacheControl,
    lifetime: Lifetime,
    staleness: Staleness,
    dates: ResponseDates,
}

fn facts(policy: &Policy, status: u16, headers: &[(String, Vec<u8>)], response_time_ms: u64) -> Facts {
    let cc = targeted::response_directives(policy.targets, headers);
    let dates = ResponseDates::parse(headers, (response_time_ms / 1000) as i64);
    let lifetime = freshness::lifetime(status, &cc, &dates, response_time_ms, policy);
    let staleness = freshness::staleness(&cc, policy);
    Facts {
        cc,
        lifetime,
        staleness,
        dates,
    }
}

/// Remaining freshness in whole seconds, rounded down (negative once stale).
/// `(ttl, stale)` with the stale part lengthened to `revalidate_keep_s` when the response
/// carries a validator: a stale response with an `ETag` or `Last-Modified` is worth keeping,
/// since a 304 can refresh it without sending the body again. The window is only how long
/// the host keeps it; whether it may be served stale is still decided from its directives.
fn keep_for_revalidation(settings: &Settings, headers: &[(String, Vec<u8>)], (ttl, stale): (u64, u64)) -> (u64, u64) {
    let has_validator = headers.get_bytes("etag").is_some() || headers.get_bytes("last-modified").is_some();
    if !has_validator {
        return (ttl, stale);
    }
    (ttl, stale.max(u64::from(settings.revalidate_keep_s) * 1000))
}

fn ttl_s(lifetime_ms: u64, age_ms: u64) -> i64 {
    (i128::from(lifetime_ms) - i128::from(age_ms)).div_euclid(1000) as i64
}

fn status(f: impl FnOnce(&mut CacheStatus)) -> String {
    let mut s = CacheStatus::default();
    f(&mut s);
    s.value()
}

/// Decides how to answer `req` given the response `stored` under its key (already the
/// matching variant), at `now_ms`.
pub fn on_request(settings: &Settings, req: &RequestHead, stored: Option<&StoredMeta>, now_ms: u64) -> RequestDecision {
    let policy = settings.policy(req.path_only());
    let decided = |action, cache_status| RequestDecision { action, cache_status };
    if let Some((fwd, detail)) = bypass(&policy, req) {
        let cs = status(|s| (s.fwd, s.detail) = (Some(fwd), Some(detail.into())));
        return decided(RequestAction::Bypass { detail }, cs);
    }
    let req_cc = CacheControl::parse_request(&req.headers);
    let stored = stored.filter(|s| matches!(Vary::parse(&s.headers), Vary::Fields(_)));
    let Some(stored) = stored else {
        if req_cc.only_if_cached {
            return decided(
                RequestAction::OnlyIfCachedMiss,
                status(|s| s.detail = Some("only-if-cached".into())),
            );
        }
        return decided(RequestAction::Miss, status(|s| s.fwd = Some(Fwd::UriMiss)));
    };
    let (request_time, response_time) = stored.times();
    let f = facts(&policy, stored.status, &stored.headers, response_time);
    let age_ms = freshness::current_age_ms(&f.dates, request_time, response_time, now_ms);
    let (age_s, ttl) = (age_ms / 1000, ttl_s(f.lifetime.ms, age_ms));
    let now_s = (now_ms / 1000) as i64;
    let not_modified = client_not_modified(req, stored.status, &stored.headers, response_time, now_s);
    let hit = |detail: Option<&str>| status(|s| (s.hit, s.ttl, s.detail) = (true, Some(ttl), detail.map(Into::into)));
    match freshness::usable(&req_cc, &f.cc, &f.lifetime, age_ms, &f.staleness) {
        Usable::Fresh => decided(
            RequestAction::Hit {
                not_modified,
                age_s,
                stale: false,
            },
            hit(None),
        ),
        Usable::StaleAccepted => decided(
            RequestAction::Hit {
                not_modified,
                age_s,
                stale: true,
            },
            hit(Some("max-stale")),
        ),
        Usable::WhileRevalidate => decided(
            RequestAction::HitStaleRevalidate {
                not_modified,
                age_s,
                validators: revalidation_headers(&stored.headers, now_s),
            },
            hit(Some("stale-while-revalidate")),
        ),
        Usable::Revalidate { .. } if req_cc.only_if_cached => decided(
            RequestAction::OnlyIfCachedMiss,
            status(|s| (s.ttl, s.detail) = (Some(ttl), Some("only-if-cached".into()))),
        ),
        Usable::Revalidate { by_request } => {
            let fwd = if by_request { Fwd::Request } else { Fwd::Stale };
            let validators = revalidation_headers(&stored.headers, now_s);
            decided(
                RequestAction::Revalidate { validators },
                status(|s| (s.fwd, s.ttl) = (Some(fwd), Some(ttl))),
            )
        }
    }
}

/// Decides what to do with the upstream's response `resp` to `req`, sent at
/// `request_time_ms` and received at `response_time_ms`. `revalidating` is the stored response
/// when [`on_request`] said [`RequestAction::Revalidate`] (or the background refresh of
/// [`RequestAction::HitStaleRevalidate`]).
pub fn on_response(
    settings: &Settings,
    req: &RequestHead,
    resp: &ResponseHead,
    request_time_ms: u64,
    response_time_ms: u64,
    revalidating: Option<&StoredMeta>,
) -> ResponseDecision {
    let policy = settings.policy(req.path_only());
    let not_stored = |fwd: Fwd, detail: &'static str| ResponseDecision {
        action: ResponseAction::NotStored { detail },
        cache_status: status(|s| (s.fwd, s.fwd_status, s.detail) = (Some(fwd), Some(resp.status), Some(detail.into()))),
    };
    if let Some((fwd, detail)) = bypass(&policy, req) {
        return not_stored(fwd, detail);
    }
    let req_cc = CacheControl::parse_request(&req.headers);
    let fwd = match revalidating {
        None => Fwd::UriMiss,
        Some(_) if req_cc.no_cache.is_some() || req_cc.max_age.is_some() || req_cc.min_fresh.is_some() => Fwd::Request,
        Some(_) => Fwd::Stale,
    };
    let now_s = (response_time_ms / 1000) as i64;
    if let Some(stored) = revalidating {
        if resp.status == 304 || head_describes(req, resp, stored) {
            if !validators_agree(&stored.headers, &resp.headers) {
                return not_stored(fwd, "validator-mismatch");
            }
            // A 304 without Date is dated at receipt (RFC 9110 §6.6.1), or the refreshed
            // response would keep the old Date and look as old as the stored one.
            let mut update = resp.headers.clone();
            if update.get_bytes("date").is_none() {
                update.push(("date".into(), format_http_date(now_s).into_bytes()));
            }
            let merged = merge_not_modified(&stored.headers, &update);
            let mut as_get = req.clone();
            as_get.method = "GET".into();
            let cc = targeted::response_directives(policy.targets, &merged);
            let allowed = storable::check(&policy, &as_get, &req_cc, stored.status, &merged, &cc);
            let f = facts(&policy, stored.status, &merged, response_time_ms);
            let age = freshness::initial_age_ms(&f.dates, request_time_ms, response_time_ms);
            let (ttl_ms, stale_ms) = match allowed {
                Ok(_) => keep_for_revalidation(
                    settings,
                    &merged,
                    freshness::storage_times(f.lifetime.ms, age, &f.staleness),
                ),
                Err(_) => (0, 0),
            };
            let not_modified = client_not_modified(req, stored.status, &merged, response_time_ms, now_s);
            let cache_status = status(|s| {
                (s.fwd, s.fwd_status, s.ttl) = (Some(fwd), Some(resp.status), Some(ttl_s(f.lifetime.ms, age)));
                s.stored = ttl_ms + stale_ms > 0;
                s.detail = allowed.err().map(Into::into);
            });
            let action = ResponseAction::Refreshed304 {
                merged_headers: merged,
                ttl_ms,
                stale_ms,
                not_modified,
            };
            return ResponseDecision { action, cache_status };
        }
        if matches!(resp.status, 500 | 502 | 503 | 504)
            && let Some(decision) = stale_on_error(&policy, req, stored, response_time_ms, Some(resp.status))
        {
            return decision;
        }
    }
    let resp_cc = targeted::response_directives(policy.targets, &resp.headers);
    let kept = match storable::check(&policy, req, &req_cc, resp.status, &resp.headers, &resp_cc) {
        Ok(kept) => kept,
        Err(detail) => return not_stored(fwd, detail),
    };
    let f = facts(&policy, resp.status, &resp.headers, response_time_ms);
    let age = freshness::initial_age_ms(&f.dates, request_time_ms, response_time_ms);
    let (ttl_ms, stale_ms) = keep_for_revalidation(
        settings,
        &resp.headers,
        freshness::storage_times(f.lifetime.ms, age, &f.staleness),
    );
    if ttl_ms + stale_ms == 0 {
        return not_stored(
            fwd,
            if f.lifetime.source == Source::None {
                "no-freshness"
            } else {
                "stale"
            },
        );
    }
    let cache_status = status(|s| {
        (s.fwd, s.fwd_status, s.ttl, s.stored) = (Some(fwd), Some(resp.status), Some(ttl_s(f.lifetime.ms, age)), true)
    });
    let action = ResponseAction::Store {
        ttl_ms,
        age_s: age / 1000,
        stale_ms,
        tags: policy.tags.to_vec(),
        vary: kept.vary,
        strip_headers: kept.strip_headers,
        not_modified: client_not_modified(req, resp.status, &resp.headers, response_time_ms, now_s),
    };
    ResponseDecision { action, cache_status }
}

/// Whether `resp`, a 200 to a HEAD request, describes the stored GET response `stored`
/// (RFC 9111 §4.3.5): the same `ETag` (both or neither), and the same `Content-Length` and
/// `Last-Modified` where both have them. Such a HEAD response freshens the stored headers as a
/// 304 does.
fn head_describes(req: &RequestHead, resp: &ResponseHead, stored: &StoredMeta) -> bool {
    if req.method != "HEAD" || resp.status != 200 || stored.status != 200 {
        return false;
    }
    let same = |name: &str| match (stored.headers.get_bytes(name), resp.headers.get_bytes(name)) {
        (Some(a), Some(b)) => a.trim_ascii() == b.trim_ascii(),
        (None, None) => true,
        // Only one side has it: a mismatch for the entity tag, no evidence for the others.
        _ => name != "etag",
    };
    same("etag") && same("content-length") && same("last-modified")
}

/// `UseStaleOnError` when `stale-if-error` (or the client's `max-stale`) covers the stored
/// response at `now_ms`.
fn stale_on_error(
    policy: &Policy,
    req: &RequestHead,
    stored: &StoredMeta,
    now_ms: u64,
    fwd_status: Option<u16>,
) -> Option<ResponseDecision> {
    let (request_time, response_time) = stored.times();
    let f = facts(policy, stored.status, &stored.headers, response_time);
    let age_ms = freshness::current_age_ms(&f.dates, request_time, response_time, now_ms);
    let req_cc = CacheControl::parse_request(&req.headers);
    freshness::usable_on_error(&req_cc, &f.lifetime, age_ms, &f.staleness).then(|| ResponseDecision {
        action: ResponseAction::UseStaleOnError { age_s: age_ms / 1000 },
        cache_status: status(|s| {
            (s.fwd, s.fwd_status, s.ttl) = (Some(Fwd::Stale), fwd_status, Some(ttl_s(f.lifetime.ms, age_ms)));
            s.detail = Some("stale-if-error".into());
        }),
    })
}

/// Decides what to do when the upstream could not be reached (connect error, timeout) while
/// revalidating `stored`: serve it stale if `stale-if-error` allows, else `NotStored` with
/// detail `upstream-error` (answer with the gateway's usual 502/504).
pub fn on_upstream_error(settings: &Settings, req: &RequestHead, stored: &StoredMeta, now_ms: u64) -> ResponseDecision {
    let policy = settings.policy(req.path_only());
    stale_on_error(&policy, req, stored, now_ms, None).unwrap_or_else(|| ResponseDecision {
        action: ResponseAction::NotStored {
            detail: "upstream-error",
        },
        cache_status: status(|s| (s.fwd, s.detail) = (Some(Fwd::Stale), Some("upstream-error".into()))),
    })
}

/// Whether `req`'s key is its URL alone (no identity, no other headers), so that the host may
/// answer identical simple requests for a fresh response it stored without asking the plugin
/// (`http-cache.store` with `direct`).
pub fn direct_hits_allowed(settings: &Settings, req: &RequestHead) -> bool {
    let policy = settings.policy(req.path_only());
    policy.key_headers.is_empty() && !crate::key::identity_in_key(&policy, req)
}

/// The paths to invalidate after `resp` answered `req` (RFC 9111 §4.4; see
/// [`crate::invalidation`]): empty unless `req` is unsafe and `resp` is 2xx or 3xx.
pub fn invalidations(req: &RequestHead, resp: &ResponseHead) -> Vec<String> {
    crate::invalidation::invalidations(req, resp.status, &resp.headers)
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decide_response_tests.rs"]
mod response_tests;

#[cfg(test)]
#[path = "decide_targeted_tests.rs"]
mod targeted_tests;
