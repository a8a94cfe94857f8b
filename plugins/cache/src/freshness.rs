//! Freshness (RFC 9111 §4.2): the freshness lifetime (§4.2.1), heuristic freshness
//! (§4.2.2), the current age (§4.2.3), whether a stored response can answer a request
//! (§4.2.4, §5.2.1) and the `stale-while-revalidate` / `stale-if-error` windows (RFC 5861).
//! Times are milliseconds since the Unix epoch; HTTP-dates are whole seconds.

use crate::dates::ResponseDates;
use crate::directives::{CacheControl, MaxStale};
use crate::policy::Policy;

/// Status codes that are heuristically cacheable (RFC 9110 §15.1), 206 left out: this cache
/// does not store partial content.
pub const HEURISTIC_STATUSES: [u16; 11] = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501];

/// Whether `status` is heuristically cacheable.
pub fn heuristically_cacheable(status: u16) -> bool {
    HEURISTIC_STATUSES.contains(&status)
}

/// Where a freshness lifetime came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The route rule's `ttl_s` with `override`.
    Override,
    /// `Cache-Control: no-cache` (unqualified): stale at once.
    NoCache,
    /// `s-maxage`.
    SMaxAge,
    /// `max-age`.
    MaxAge,
    /// `Expires` minus `Date`.
    Expires,
    /// 10% of the time since `Last-Modified`, capped (§4.2.2).
    Heuristic,
    /// The route's default TTL (rule `ttl_s` or `default_ttl_s`), as a heuristic.
    DefaultTtl,
    /// Nothing: no explicit freshness and no heuristic allowed or available.
    None,
}

/// A freshness lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    /// The lifetime in milliseconds.
    pub ms: u64,
    /// Where it came from.
    pub source: Source,
}

impl Lifetime {
    fn new(seconds: u64, source: Source) -> Self {
        Lifetime {
            ms: seconds.saturating_mul(1000),
            source,
        }
    }
}

/// The freshness lifetime of a response in a shared cache (§4.2.1): the rule's override, else
/// `no-cache` (0), `s-maxage`, `max-age`, `Expires − Date` (the receipt time standing in for a
/// missing `Date`; not when the directives come from a targeted field, RFC 9213 §2.2), else a heuristic — only for heuristically cacheable statuses or `public`
/// responses (§4.2.2): 10% of `Date − Last-Modified` capped at `max_heuristic_ttl_s`, else the
/// route's default TTL. Nothing else gives a response a lifetime.
pub fn lifetime(
    status: u16,
    cc: &CacheControl,
    dates: &ResponseDates,
    response_time_ms: u64,
    policy: &Policy,
) -> Lifetime {
    if let Some(ttl) = policy.override_ttl_s {
        return Lifetime::new(u64::from(ttl), Source::Override);
    }
    if cc.no_cache_all() {
        return Lifetime::new(0, Source::NoCache);
    }
    if let Some(s) = cc.s_maxage {
        return Lifetime::new(u64::from(s), Source::SMaxAge);
    }
    if let Some(s) = cc.max_age {
        return Lifetime::new(u64::from(s), Source::MaxAge);
    }
    let date_ms = dates.date.map_or(ms_i64(response_time_ms), |d| d.saturating_mul(1000));
    if let Some(expires) = dates.expires.filter(|_| !cc.targeted) {
        let ms = expires.saturating_mul(1000).saturating_sub(date_ms).max(0);
        return Lifetime {
            ms: ms as u64,
            source: Source::Expires,
        };
    }
    if !(heuristically_cacheable(status) || cc.public) {
        return Lifetime::new(0, Source::None);
    }
    if let Some(modified) = dates.last_modified.map(|m| m.saturating_mul(1000))
        && policy.max_heuristic_ttl_s > 0
        && date_ms > modified
    {
        let tenth_s = (date_ms - modified) as u64 / 10_000;
        return Lifetime::new(tenth_s.min(u64::from(policy.max_heuristic_ttl_s)), Source::Heuristic);
    }
    match policy.default_ttl_s {
        Some(ttl) => Lifetime::new(u64::from(ttl), Source::DefaultTtl),
        None => Lifetime::new(0, Source::None),
    }
}

fn ms_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The corrected initial age (§4.2.3) in ms: the larger of the apparent age (receipt time
/// minus `Date`, never negative) and `Age` plus the time the request took.
pub fn initial_age_ms(dates: &ResponseDates, request_time_ms: u64, response_time_ms: u64) -> u64 {
    let apparent = dates.date.map_or(0, |d| {
        ms_i64(response_time_ms).saturating_sub(d.saturating_mul(1000)).max(0) as u64
    });
    let delay = response_time_ms.saturating_sub(request_time_ms);
    let corrected = u64::from(dates.age.unwrap_or(0))
        .saturating_mul(1000)
        .saturating_add(delay);
    apparent.max(corrected)
}

/// The current age (§4.2.3) in ms: the corrected initial age plus the time since receipt.
pub fn current_age_ms(dates: &ResponseDates, request_time_ms: u64, response_time_ms: u64, now_ms: u64) -> u64 {
    initial_age_ms(dates, request_time_ms, response_time_ms).saturating_add(now_ms.saturating_sub(response_time_ms))
}

/// How a stored response may be used once stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Staleness {
    /// `must-revalidate`, `proxy-revalidate` or `s-maxage`: never serve it stale (§4.2.4).
    pub forbidden: bool,
    /// How long after going stale it may be served while refreshed in the background.
    pub while_revalidate_ms: u64,
    /// How long after going stale it may be served when the upstream fails.
    pub if_error_ms: u64,
}

/// The stale windows of a response: its own `stale-while-revalidate` / `stale-if-error`, else
/// the rule's; with `override`, the rule's only and `must-revalidate` & co. ignored.
pub fn staleness(cc: &CacheControl, policy: &Policy) -> Staleness {
    let ms = |s: Option<u32>| u64::from(s.unwrap_or(0)) * 1000;
    if policy.override_ttl_s.is_some() {
        return Staleness {
            forbidden: false,
            while_revalidate_ms: ms(policy.stale_while_revalidate_s),
            if_error_ms: ms(policy.stale_if_error_s),
        };
    }
    if cc.forbids_stale() {
        return Staleness {
            forbidden: true,
            ..Staleness::default()
        };
    }
    Staleness {
        forbidden: false,
        while_revalidate_ms: ms(cc.stale_while_revalidate.or(policy.stale_while_revalidate_s)),
        if_error_ms: ms(cc.stale_if_error.or(policy.stale_if_error_s)),
    }
}

/// The freshness the host is told when storing: `(ttl_ms, stale_ms)` counted from the
/// response's receipt — the remaining lifetime, then how long it stays usable stale.
pub fn storage_times(lifetime_ms: u64, initial_age_ms: u64, staleness: &Staleness) -> (u64, u64) {
    let window = if staleness.forbidden {
        0
    } else {
        staleness.while_revalidate_ms.max(staleness.if_error_ms)
    };
    let ttl = lifetime_ms.saturating_sub(initial_age_ms);
    let total = lifetime_ms.saturating_add(window).saturating_sub(initial_age_ms);
    (ttl, total - ttl)
}

/// Whether a stored response answers a request without going upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usable {
    /// Fresh and within the request's `max-age` / `min-fresh`.
    Fresh,
    /// Stale, but within `stale-while-revalidate`: serve it and refresh in the background.
    WhileRevalidate,
    /// Stale, and the request's `max-stale` accepts it.
    StaleAccepted,
    /// Must be validated first; `by_request` when the request's directives ask for it.
    Revalidate {
        /// The request's `no-cache`, `max-age` or `min-fresh` ruled it out.
        by_request: bool,
    },
}

/// Whether a stored response of `age_ms` and `lifetime` may answer a request with directives
/// `req` (§4.2.4, §5.2.1, RFC 5861 §3). `resp` is the stored response's `Cache-Control`.
pub fn usable(
    req: &CacheControl,
    resp: &CacheControl,
    lifetime: &Lifetime,
    age_ms: u64,
    staleness: &Staleness,
) -> Usable {
    let by_request = Usable::Revalidate { by_request: true };
    if req.no_cache.is_some() {
        return by_request;
    }
    if lifetime.source != Source::Override && resp.no_cache_all() {
        return Usable::Revalidate { by_request: false };
    }
    if req.max_age.is_some_and(|max| age_ms > u64::from(max) * 1000) {
        return by_request;
    }
    if age_ms < lifetime.ms {
        let left = lifetime.ms - age_ms;
        return match req.min_fresh {
            Some(min) if left < u64::from(min) * 1000 => by_request,
            _ => Usable::Fresh,
        };
    }
    let stale_by = age_ms - lifetime.ms;
    if staleness.forbidden || req.min_fresh.is_some() {
        return Usable::Revalidate { by_request: false };
    }
    if stale_by < staleness.while_revalidate_ms {
        return Usable::WhileRevalidate;
    }
    match req.max_stale {
        Some(MaxStale::Any) => Usable::StaleAccepted,
        Some(MaxStale::Seconds(s)) if stale_by <= u64::from(s) * 1000 => Usable::StaleAccepted,
        _ => Usable::Revalidate { by_request: false },
    }
}

/// Whether a stored response may be served because the upstream failed (RFC 5861 §4): not
/// when stale is forbidden; else when it is stale by no more than the largest of the
/// response's (or rule's) `stale-if-error`, the request's `stale-if-error` and its `max-stale`.
pub fn usable_on_error(req: &CacheControl, lifetime: &Lifetime, age_ms: u64, staleness: &Staleness) -> bool {
    if staleness.forbidden {
        return false;
    }
    let window = match req.max_stale {
        Some(MaxStale::Any) => u64::MAX,
        Some(MaxStale::Seconds(s)) => u64::from(s) * 1000,
        None => 0,
    }
    .max(staleness.if_error_ms)
    .max(u64::from(req.stale_if_error.unwrap_or(0)) * 1000);
    window > 0 && age_ms.saturating_sub(lifetime.ms) <= window
}

#[cfg(test)]
#[path = "freshness_tests.rs"]
mod tests;
