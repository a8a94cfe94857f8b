//! Sluice's rate-limiting plugin. On every request of the routes it is on: works out which of
//! its limits apply (each keyed by API key, subject, client IP, a header or the route, with the
//! caller's tier choosing the quota), what the request costs, and asks the host to charge all
//! of them at once (`rate-limit.check`: one atomic Redis script shared by every instance, or
//! memory). A denied request gets 429 with a JSON body, `Retry-After` and the IETF `RateLimit`
//! fields; an admitted one carries the fields on its response, set from the request hook with
//! `response.edit` (so the plugin needs no response hook).
//!
//! The config reference is `plugins/ratelimit/README.md`.

mod fields;
pub mod fuzzing;
mod request;
mod settings;

use sluice_plugin_sdk::rate_limit::{self, Limit as HostLimit};
use sluice_plugin_sdk::{
    Config, Edits, Hook, Plugin, Reads, RequestExt, RequestHead, RequestVerdict, Response, head, log, response,
};

use fields::Applied;
use settings::Settings;

/// How long the host may reuse a request's treatment: the limits, keys and cost it rests on
/// change only with the config (which starts afresh).
const REUSE_MS: u32 = 60_000;

struct RateLimit {
    settings: Settings,
    buckets: request::Buckets,
}

/// The limits of `settings` that apply to `req`, with their host form.
fn applicable<'s>(
    settings: &'s Settings,
    buckets: &mut request::Buckets,
    req: &RequestHead,
) -> (Vec<Applied<'s>>, Vec<HostLimit>) {
    let tier = req.context("tier");
    let mut applied = Vec::new();
    let mut host = Vec::new();
    for (index, limit) in settings.limits.iter().enumerate() {
        let Some(key) = buckets.key(index, limit, req) else {
            continue;
        };
        let quota = limit.quota(tier);
        applied.push(Applied {
            name: &limit.name,
            quota: quota.limit,
            period_ms: limit.period_ms,
            remaining: 0,
            reset_ms: 0,
        });
        host.push(HostLimit {
            key,
            quota: quota.limit,
            period_ms: limit.period_ms,
            burst: quota.burst,
        });
    }
    (applied, host)
}

impl RateLimit {
    /// Hands this admitted request's treatment to the host for reuse (`rate-limit.memo`):
    /// which limits a request is charged, at what cost, and the fields it gets are a function
    /// of the headers and entries declared in `reads` (and of the client's address, when a
    /// limit is kept per IP), so the host may charge the same limits itself for the next
    /// requests alike and write the `RateLimit` field (policy names `fields`) from each
    /// decision, without calling this hook. A request the limits deny comes back here.
    fn reuse(&self, fields: Option<Vec<String>>) {
        let key = if self.settings.limits.iter().any(|l| l.key == settings::KeyBy::Ip) {
            head::MemoKey::CLIENT_IP
        } else {
            head::MemoKey::empty()
        };
        let _ = rate_limit::memo(REUSE_MS, key, fields.as_deref());
    }

    fn unavailable(&self, req: &RequestHead, why: &str) -> RequestVerdict {
        log::write(log::Level::Warn, &format!("rate limits could not be checked: {why}"));
        if self.settings.fail_open {
            return RequestVerdict::Continue;
        }
        let body = serde_json::json!({
            "error": "rate_limit_unavailable",
            "message": "rate limits could not be checked",
            "request_id": req.request_id,
        });
        Response::json(503, body.to_string()).header("retry-after", "1").into()
    }
}

impl Plugin for RateLimit {
    const NAME: &'static str = "ratelimit";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const HOOKS: &'static [Hook] = &[Hook::RequestHeaders];

    fn new(config: Config) -> Result<Self, String> {
        Ok(RateLimit {
            settings: settings::parse(config.as_str())?,
            buckets: request::Buckets::default(),
        })
    }

    fn reads(&self) -> Option<Reads> {
        Some(request::reads(&self.settings))
    }

    fn on_request_headers(&mut self, req: &RequestHead) -> RequestVerdict {
        let (mut applied, limits) = applicable(&self.settings, &mut self.buckets, req);
        if limits.is_empty() {
            return RequestVerdict::Continue;
        }
        let cost = request::cost_of(&self.settings.cost, req);
        if let Some(i) = limits.iter().position(|l| cost > l.burst) {
            return fields::too_many(req, &applied, applied[i].name, None);
        }
        let decision = match rate_limit::check(&limits, cost, self.settings.local_share) {
            Ok(decision) => decision,
            Err(e) => return self.unavailable(req, &e.to_string()),
        };
        for (a, s) in applied.iter_mut().zip(&decision.limits) {
            a.remaining = s.remaining;
            a.reset_ms = s.reset_ms;
        }
        if !decision.allowed {
            let name = applied.get(decision.tightest as usize).map_or("", |a| a.name);
            return fields::too_many(req, &applied, name, Some(decision.retry_after_ms));
        }
        if !self.settings.headers {
            self.reuse(None);
            return RequestVerdict::Continue;
        }
        let fields = Edits::new()
            .set("ratelimit-policy", fields::policy(&applied))
            .set("ratelimit", fields::state(&applied))
            .build();
        if let Err(e) = response::edit(&fields) {
            log::write(
                log::Level::Warn,
                &format!("the RateLimit fields could not be set: {}", e.message()),
            );
            return RequestVerdict::Continue;
        }
        self.reuse(Some(applied.iter().map(|a| a.name.to_string()).collect()));
        RequestVerdict::Continue
    }
}

sluice_plugin_sdk::export_plugin!(RateLimit);
