//! `http-cache`: the storage side of the cache plugin's HTTP cache (`sluice_backends::http_cache`).
//! Keys are scoped by route and plugin; `serve`, `store` and `refresh` leave directives the
//! chain and the proxy carry out (`runtime/chain.rs`, `proxy/cache_serve.rs`).

use crate::capability::Capability;
use crate::context::PluginContext;
use std::sync::Arc;

use crate::state::{CacheDirective, CacheStore, CallRequest, HostState};
use crate::verdict;
use sluice_backends::http_cache::{CacheServe, KEY_PREFIX};
use sluice_backends::http_cache::{Fill as HostFill, HttpCache, StoredEntry};
use sluice_backends::scoped_key;
use sluice_bindings::sluice::plugin::http_cache::{DirectHits, Fill, Host, ServeAs, StoredHead};
use sluice_bindings::{CacheSpec, HeaderEdits, HostError};
use sluice_core::time::unix_ms;

/// The prefix of every `http-cache` key.
/// The longest key a plugin may use, in bytes.
const MAX_KEY: usize = 4096;
/// The most tags one response may carry, and the longest tag.
const MAX_TAGS: usize = 32;
const MAX_TAG: usize = 256;
/// The most `vary` names.
const MAX_VARY: usize = 16;
/// The longest fill claim, in ms.
const MAX_HOLD_MS: u32 = 60_000;

/// What a response's stored head tells the plugin.
fn stored_head(e: &StoredEntry) -> StoredHead {
    StoredHead {
        status: e.status,
        headers: e.headers.clone(),
        request_time_ms: e.request_time_ms,
        response_time_ms: e.response_time_ms,
        body_bytes: e.body.len() as u64,
        tags: e.tags.clone(),
    }
}

/// Checks a store spec's key, tags and vary names.
fn check_spec(spec: &CacheSpec) -> Result<(), String> {
    check_key(&spec.key)?;
    if spec.tags.len() > MAX_TAGS || spec.tags.iter().any(|t| t.is_empty() || t.len() > MAX_TAG) {
        return Err(format!(
            "a response takes up to {MAX_TAGS} tags of 1 to {MAX_TAG} bytes"
        ));
    }
    if spec.vary.len() > MAX_VARY {
        return Err(format!("vary names up to {MAX_VARY} request headers"));
    }
    if let Some(bad) = spec
        .vary
        .iter()
        .find(|n| http::HeaderName::from_bytes(n.as_bytes()).is_err())
    {
        return Err(format!("vary name {bad:?} is not a header name"));
    }
    Ok(())
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(format!("a key must be 1 to {MAX_KEY} bytes, not {}", key.len()));
    }
    Ok(())
}

/// The cache, the scoped key and the current request, after the grant and key checks. Takes
/// the state's fields, not the state, so the call's wait can be accounted while they are held.
fn http_cache_call<'a>(
    p: &'a PluginContext,
    request: Option<&'a CallRequest>,
    route: &str,
    call: &str,
    key: &str,
) -> Result<(Arc<HttpCache>, String, &'a CallRequest), HostError> {
    p.require(Capability::HttpCache)?;
    check_key(key).map_err(|why| p.invalid(Capability::HttpCache, why))?;
    let request = request.ok_or_else(|| {
        p.invalid(
            Capability::HttpCache,
            format!("{call} can only be called from on-request-headers or on-response-headers"),
        )
    })?;
    let base = scoped_key(KEY_PREFIX, route, &p.name, key);
    Ok((p.backends.http_cache.clone(), base, request))
}

impl HostState {
    /// Counts a lookup's result on the route (the hit ratio is worked out from these counts
    /// at each scrape: `HttpCache::export_gauges`).
    fn count_lookup(&self, result: &str) {
        let metrics = &self.plugin.backends.metrics;
        metrics
            .counter(
                "sluice_http_cache_lookups_total",
                &[("route", &self.route), ("result", result)],
            )
            .add(1);
    }
}

impl Host for HostState {
    async fn lookup(&mut self, key: String) -> Result<Option<StoredHead>, HostError> {
        let (cache, base, request) = http_cache_call(&self.plugin, self.request.as_ref(), &self.route, "lookup", &key)?;
        if request.upgrade {
            return Ok(None);
        }
        let found = self.cpu.waiting_on(cache.lookup(&base, &request.headers)).await;
        if found.is_none() && self.in_request_headers {
            self.count_lookup("miss");
        }
        Ok(found.as_deref().map(stored_head))
    }

    async fn serve(&mut self, key: String, how: ServeAs, edits: HeaderEdits) -> Result<bool, HostError> {
        self.per_request("http-cache.serve");
        let (cache, base, request) = http_cache_call(&self.plugin, self.request.as_ref(), &self.route, "serve", &key)?;
        let p = &self.plugin;
        if !self.in_request_headers {
            return Err(p.invalid(
                Capability::HttpCache,
                "serve can only be called from on-request-headers",
            ));
        }
        verdict::check_edits(&edits).map_err(|why| p.invalid(Capability::HttpCache, why))?;
        if request.upgrade {
            return Ok(false);
        }
        let found = self.cpu.waiting_on(cache.lookup(&base, &request.headers)).await;
        let Some(entry) = found else {
            return Ok(false);
        };
        self.count_lookup(match how {
            ServeAs::Fresh | ServeAs::NotModified => "hit",
            ServeAs::Stale | ServeAs::StaleWhileRevalidate => "stale",
        });
        self.directives.cache = Some(CacheDirective::Serve(CacheServe {
            entry,
            how,
            edits,
            base,
        }));
        Ok(true)
    }

    async fn store(
        &mut self,
        spec: CacheSpec,
        strip: Vec<String>,
        direct: Option<DirectHits>,
    ) -> Result<(), HostError> {
        let p = self.plugin.clone();
        p.require(Capability::HttpCache)?;
        if !self.in_response_headers {
            return Err(p.invalid(
                Capability::HttpCache,
                "store can only be called from on-response-headers",
            ));
        }
        check_spec(&spec).map_err(|why| p.invalid(Capability::HttpCache, why))?;
        self.directives.cache = Some(CacheDirective::Store(CacheStore {
            plugin: p.name.clone(),
            spec,
            strip,
            head: None,
            direct,
        }));
        Ok(())
    }

    async fn refresh(
        &mut self,
        key: String,
        headers: Vec<(String, Vec<u8>)>,
        ttl_ms: u64,
        stale_ms: u64,
    ) -> Result<bool, HostError> {
        let (cache, base, request) =
            http_cache_call(&self.plugin, self.request.as_ref(), &self.route, "refresh", &key)?;
        let p = &self.plugin;
        if !self.in_response_headers {
            return Err(p.invalid(
                Capability::HttpCache,
                "refresh can only be called from on-response-headers",
            ));
        }
        let headers = verdict::without_framing(headers);
        verdict::check_header_list(&headers).map_err(|why| p.invalid(Capability::HttpCache, why))?;
        // The call runs as the 304 arrives: its time stands for both request and response.
        let now = unix_ms();
        let keep = ttl_ms.saturating_add(stale_ms);
        let refreshed = self
            .cpu
            .waiting_on(cache.refresh(&base, &request.headers, headers, (now, now), keep))
            .await;
        let Some(entry) = refreshed else {
            return Ok(false);
        };
        self.count_lookup("revalidated");
        self.directives.cache = Some(CacheDirective::AnswerStored(entry));
        Ok(true)
    }

    async fn use_stored(&mut self, key: String) -> Result<bool, HostError> {
        let (cache, base, request) =
            http_cache_call(&self.plugin, self.request.as_ref(), &self.route, "use-stored", &key)?;
        let p = &self.plugin;
        if !self.in_response_headers {
            return Err(p.invalid(
                Capability::HttpCache,
                "use-stored can only be called from on-response-headers",
            ));
        }
        if request.upgrade {
            return Ok(false);
        }
        let found = self.cpu.waiting_on(cache.lookup(&base, &request.headers)).await;
        let Some(entry) = found else {
            return Ok(false);
        };
        self.count_lookup("stale");
        self.directives.cache = Some(CacheDirective::AnswerStored(entry));
        Ok(true)
    }

    async fn claim_fill(&mut self, key: String, hold_ms: u32, wait_ms: u32) -> Result<Fill, HostError> {
        self.per_request("http-cache.claim-fill");
        let (cache, base, request) =
            http_cache_call(&self.plugin, self.request.as_ref(), &self.route, "claim-fill", &key)?;
        let p = &self.plugin;
        if !self.in_request_headers {
            return Err(p.invalid(
                Capability::HttpCache,
                "claim-fill can only be called from on-request-headers",
            ));
        }
        if hold_ms == 0 || hold_ms > MAX_HOLD_MS || wait_ms > hold_ms {
            return Err(p.invalid(Capability::HttpCache,
                format!("claim-fill takes a hold of 1 to {MAX_HOLD_MS} ms and a wait no longer than the hold (got {hold_ms} and {wait_ms})"),
            ));
        }
        if request.upgrade {
            return Ok(Fill::GaveUp);
        }
        let headers = request.headers.clone();
        // The wait must leave the hook time to answer within its wall-clock limit.
        let most = crate::wall_limit(self.cpu_budget).as_millis() as u64 / 2;
        let wait_ms = u64::from(wait_ms).min(most);
        let filled = self
            .cpu
            .waiting_on(cache.claim_fill(&base, &headers, hold_ms.into(), wait_ms))
            .await;
        Ok(match filled {
            HostFill::Lead(guard) => {
                self.directives.fill = Some(guard);
                Fill::Lead
            }
            HostFill::Stored(entry) => Fill::Stored(stored_head(&entry)),
            HostFill::GaveUp => Fill::GaveUp,
        })
    }

    async fn invalidate_target(&mut self, target: String) -> Result<u64, HostError> {
        let p = &self.plugin;
        p.require(Capability::HttpCache)?;
        let dropped = self
            .cpu
            .waiting_on(p.backends.http_cache.invalidate_target(&target))
            .await;
        Ok(dropped)
    }

    async fn invalidate_prefix(&mut self, prefix: String) -> Result<u64, HostError> {
        let p = &self.plugin;
        p.require(Capability::HttpCache)?;
        if prefix.is_empty() {
            return Err(p.invalid(Capability::HttpCache, "an empty prefix would drop everything; name one"));
        }
        let dropped = self
            .cpu
            .waiting_on(p.backends.http_cache.invalidate_prefix(&prefix))
            .await;
        Ok(dropped)
    }

    async fn invalidate_tag(&mut self, tag: String) -> Result<u64, HostError> {
        let p = &self.plugin;
        p.require(Capability::HttpCache)?;
        let dropped = self.cpu.waiting_on(p.backends.http_cache.invalidate_tag(&tag)).await;
        Ok(dropped)
    }
}
