//! Running a route's plugin chain: request hooks in route order, response hooks in reverse,
//! on-log after the response. Each plugin's failure policy decides what its failure does.

use std::sync::Arc;

use bytes::Bytes;

use super::failure::PluginFailure;
use super::instance::PluginInstance;
use super::state::{CacheDirective, CacheStore};
use super::verdict;
use crate::response_edits::ResponseEdits;
use sluice_backends::http_cache::CacheServe;
use sluice_backends::http_cache::FillGuard;
use sluice_bindings::{
    CoalesceSpec, EncodingSpec, Hook, LocalResponse, LogEntry, RequestHead, RequestVerdict, ResponseHead,
    ResponseVerdict, UpstreamChoice,
};
use sluice_config::FailPolicy;
use sluice_core::decompress::DecompressRequest;
use sluice_core::telemetry::metrics::Registry;

/// Where the request body comes from when a plugin asks for it with `need-body`.
pub trait BodySource {
    /// Buffers up to `limit` bytes of the body and returns them (the whole body when it is
    /// shorter). The source keeps the bytes so the upstream still receives the full body.
    fn buffer(&mut self, limit: usize) -> impl Future<Output = Result<Vec<u8>, BodyError>> + Send;
}

/// Why the body could not be given to a plugin.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BodyError {
    /// The body is longer than the plugin may read: answered with 413.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// The client's body could not be read (disconnect, bad framing): answered with 400.
    #[error("the request body could not be read: {0}")]
    Read(String),
}

/// A body source for requests without a body.
#[derive(Debug, Default)]
pub struct NoBody;

impl BodySource for NoBody {
    async fn buffer(&mut self, _limit: usize) -> Result<Vec<u8>, BodyError> {
        Ok(Vec::new())
    }
}

/// What the request chain decided.
#[derive(Debug)]
pub enum RequestOutcome {
    /// Send the (edited) request upstream.
    Forward(Forward),
    /// Answer with this response. Response hooks run for the first `ran` plugins only (the
    /// ones before the plugin that answered).
    Respond {
        /// The response to send.
        response: LocalResponse,
        /// How many plugins (from the front of the chain) get their response hooks.
        ran: usize,
    },
    /// Answer from the HTTP cache (`http-cache.serve`). Response hooks run as for `Respond`.
    Cached {
        /// The stored response and how it answers.
        serve: CacheServe,
        /// How many plugins (from the front of the chain) get their response hooks.
        ran: usize,
    },
}

/// A `coalesce` verdict and the plugin that gave it.
#[derive(Debug, Clone)]
pub struct CoalesceRequest {
    /// The plugin's name (part of the key's namespace).
    pub plugin: Arc<str>,
    /// What the plugin asked for.
    pub spec: CoalesceSpec,
}

/// Work the request chain asked the host to do on the way upstream.
#[derive(Debug, Default)]
pub struct Forward {
    /// Collapse identical in-flight requests as this plugin asked (the last one that did).
    pub coalesce: Option<CoalesceRequest>,
    /// Send to this backend instead of the route's upstream.
    pub route_to: Option<UpstreamChoice>,
    /// Decode the request body on its way upstream (`body.decompress-request`; the last
    /// plugin to ask wins).
    pub decompress: Option<DecompressRequest>,
    /// The HTTP cache fill this request leads (`http-cache.claim-fill`), ended when its
    /// response is stored or the request ends.
    pub fill: Option<FillGuard>,
    /// GPU leases the plugins took (`gpu.acquire`, `gpu.reserve`), released when the
    /// response ends or, unused, when this is dropped.
    pub leases: Vec<sluice_backends::gpu::LeaseGuard>,
    /// The request header fields the plugins' edits set, appended or removed (lower case, each
    /// once): the only ones whose values in the head may differ from what the client sent, so
    /// the only ones the upstream request has to take from the head.
    pub edited_headers: Vec<String>,
}

/// What the response chain decided.
#[derive(Debug, Default)]
pub struct ResponseOutcome {
    /// A plugin replaced the response (or `http-cache.refresh` answered a 304 with the stored
    /// one): send this body (the head is already replaced).
    pub body: Option<Bytes>,
    /// Compress the body as it streams.
    pub compress: Option<EncodingSpec>,
    /// Store the response in the HTTP cache as it streams.
    pub store: Option<CacheStore>,
    /// The plugin that asked to store the response answered the client 304 itself (the
    /// client's own conditional matched the new response): `store` is of the upstream's
    /// body, which is read to its end in the background instead of being sent.
    pub store_behind: bool,
}

/// A route's ordered plugin chain.
#[derive(Debug)]
pub struct Chain {
    route: Arc<str>,
    plugins: Vec<Arc<PluginInstance>>,
    metrics: Arc<Registry>,
}

impl Chain {
    /// A chain for `route` running `plugins` in order.
    pub fn new(route: &str, plugins: Vec<Arc<PluginInstance>>, metrics: Arc<Registry>) -> Self {
        Chain {
            route: Arc::from(route),
            plugins,
            metrics,
        }
    }

    /// The route's name.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The configured plugins, in route order.
    pub fn plugins(&self) -> &[Arc<PluginInstance>] {
        &self.plugins
    }

    /// Whether any of the first `ran` plugins has a response hook. Without one the response
    /// chain is only their `response.edit` edits ([`ResponseEdits::apply_to_map`]).
    pub fn has_response_hooks(&self, ran: usize) -> bool {
        self.plugins.iter().take(ran).any(|p| p.has_hook(Hook::ResponseHeaders))
    }

    /// Logs and counts a failure; for a fail-closed plugin, returns the response to send.
    fn fail(&self, plugin: &PluginInstance, failure: &PluginFailure, request_id: &str) -> Option<LocalResponse> {
        let policy = plugin.fail_policy();
        let policy_name = match policy {
            FailPolicy::Open => "open",
            FailPolicy::Closed => "closed",
        };
        self.record(failure, request_id, policy_name);
        (policy == FailPolicy::Closed).then(|| failure.to_response(request_id))
    }

    /// Logs a failure with the request id and counts it by plugin, kind and policy.
    fn record(&self, failure: &PluginFailure, request_id: &str, policy_name: &str) {
        tracing::warn!(
            request_id,
            route = &*self.route,
            plugin = &*failure.plugin,
            hook = failure.hook,
            kind = failure.kind.as_str(),
            policy = policy_name,
            "{failure}"
        );
        self.metrics
            .counter(
                "sluice_plugin_failures_total",
                &[
                    ("plugin", &failure.plugin),
                    ("kind", failure.kind.as_str()),
                    ("policy", policy_name),
                ],
            )
            .add(1);
    }

    /// Runs the request hooks in order over `head`, applying header edits and context as
    /// they come, until a plugin answers or the chain ends. The hooks' `response.edit` edits
    /// go into `replies`, for [`Chain::on_response`].
    pub async fn on_request(
        &self,
        head: &mut RequestHead,
        body: &mut impl BodySource,
        replies: &mut ResponseEdits,
    ) -> RequestOutcome {
        self.on_request_from(0, head, body, replies).await
    }

    /// Runs the request hooks from the plugin at `start` on (a background cache refresh
    /// starts after the caching plugin); `ran` counts from the front of the chain.
    pub async fn on_request_from(
        &self,
        start: usize,
        head: &mut RequestHead,
        body: &mut impl BodySource,
        replies: &mut ResponseEdits,
    ) -> RequestOutcome {
        let mut forward = Forward::default();
        for (index, plugin) in self.plugins.iter().enumerate().skip(start) {
            if !plugin.has_hook(Hook::RequestHeaders) {
                continue;
            }
            let context = plugin.context();
            if context.grants.http_cache
                && let Some(serve) = context
                    .backends
                    .http_cache
                    .direct_serve(&self.route, plugin.name(), head)
            {
                return RequestOutcome::Cached { serve, ran: index };
            }
            let mut result = match plugin.on_request_headers_with_directives(head).await {
                Ok((verdict, mut directives)) => {
                    forward.leases.append(&mut directives.leases);
                    replies.record(index, directives.response.take());
                    forward.decompress = directives.decompress.or(forward.decompress);
                    if directives.fill.is_some() {
                        forward.fill = directives.fill;
                    }
                    if let Some(CacheDirective::Serve(serve)) = directives.cache {
                        // The verdict's edits still reach the head (a background refresh
                        // starts from it).
                        if let RequestVerdict::Edit(edits) = verdict {
                            apply_request_edits(head, edits, &mut forward.edited_headers);
                        }
                        return RequestOutcome::Cached { serve, ran: index };
                    }
                    Ok(verdict)
                }
                Err(failure) => Err(failure),
            };
            if let Ok(RequestVerdict::NeedBody(limit)) = result {
                let bytes = match body.buffer(limit as usize).await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        return RequestOutcome::Respond {
                            response: body_error(&e, &head.request_id),
                            ran: index,
                        };
                    }
                };
                result = match plugin.on_request_body_with_directives(head, &bytes).await {
                    Ok((verdict, mut directives)) => {
                        forward.leases.append(&mut directives.leases);
                        replies.record(index, directives.response.take());
                        Ok(verdict)
                    }
                    Err(failure) => Err(failure),
                };
            }
            let verdict = match result {
                Ok(v) => v,
                Err(failure) => match self.fail(plugin, &failure, &head.request_id) {
                    Some(response) => {
                        return RequestOutcome::Respond { response, ran: index };
                    }
                    None => continue,
                },
            };
            match verdict {
                RequestVerdict::Continue | RequestVerdict::NeedBody(_) => {}
                RequestVerdict::Edit(edits) => apply_request_edits(head, edits, &mut forward.edited_headers),
                RequestVerdict::Respond(response) => {
                    return RequestOutcome::Respond { response, ran: index };
                }
                RequestVerdict::Coalesce(spec) => {
                    forward.coalesce = Some(CoalesceRequest {
                        plugin: plugin.name().clone(),
                        spec,
                    });
                }
                RequestVerdict::RouteTo(mut choice) => {
                    let edits = std::mem::replace(&mut choice.edits, verdict::no_edits());
                    apply_request_edits(head, edits, &mut forward.edited_headers);
                    forward.route_to = Some(choice);
                }
            }
        }
        RequestOutcome::Forward(forward)
    }

    /// Runs the response hooks of the first `ran` plugins in reverse order over `resp`, each
    /// plugin's `replies` just before its hook.
    pub async fn on_response(
        &self,
        req: &RequestHead,
        resp: &mut ResponseHead,
        ran: usize,
        replies: &ResponseEdits,
    ) -> ResponseOutcome {
        self.on_response_range(req, resp, 0..ran, replies).await
    }

    /// Runs the response hooks of the plugins in `range` in reverse order over `resp`, each
    /// plugin's `replies` just before its hook.
    pub async fn on_response_range(
        &self,
        req: &RequestHead,
        resp: &mut ResponseHead,
        range: std::ops::Range<usize>,
        replies: &ResponseEdits,
    ) -> ResponseOutcome {
        let mut outcome = ResponseOutcome::default();
        let end = range.end.min(self.plugins.len());
        let start = range.start.min(end);
        for (index, plugin) in self.plugins.iter().enumerate().take(end).skip(start).rev() {
            replies.apply(index, &mut resp.headers);
            if !plugin.has_hook(Hook::ResponseHeaders) {
                continue;
            }
            let (verdict, directives) = match plugin.on_response_headers_with_directives(req, resp).await {
                Ok(v) => v,
                Err(failure) => match self.fail(plugin, &failure, &req.request_id) {
                    Some(response) => (ResponseVerdict::Replace(response), Default::default()),
                    None => continue,
                },
            };
            let stored_here = matches!(directives.cache, Some(CacheDirective::Store(_)));
            match directives.cache {
                Some(CacheDirective::Store(mut store)) => {
                    store.head = Some(resp.clone());
                    outcome.store = Some(store);
                }
                Some(CacheDirective::AnswerStored(entry)) => {
                    resp.status = entry.status;
                    resp.headers = entry.headers.clone();
                    let mut body = entry.body.clone();
                    // A revalidated or stale-on-error answer to a `Range` request is cut too.
                    sluice_core::range::apply(
                        &req.method,
                        &req.headers,
                        &mut resp.status,
                        &mut resp.headers,
                        &mut body,
                    );
                    outcome.body = Some(body);
                }
                Some(CacheDirective::Serve(_)) | None => {}
            }
            match verdict {
                ResponseVerdict::Continue => {}
                ResponseVerdict::Edit(edits) => verdict::apply_edits(&mut resp.headers, edits),
                ResponseVerdict::Replace(local) => {
                    // A 304 replacing the response this very hook stored keeps the store.
                    outcome.store_behind = stored_here && local.status == 304 && outcome.body.is_none();
                    resp.status = local.status;
                    resp.headers = local.headers;
                    outcome.body = Some(Bytes::from(local.body));
                    outcome.compress = None;
                    if !outcome.store_behind {
                        outcome.store = None;
                    }
                }
                ResponseVerdict::Compress(spec) => outcome.compress = Some(spec),
                ResponseVerdict::Store(spec) => {
                    outcome.store = Some(CacheStore {
                        plugin: plugin.name().clone(),
                        spec,
                        strip: Vec::new(),
                        head: Some(resp.clone()),
                        direct: None,
                    });
                }
            }
        }
        outcome
    }

    /// Runs every plugin's `on-log` after the response was sent. Failures are logged and
    /// counted only: the client has its answer already.
    pub async fn on_log(&self, entry: &LogEntry) {
        for plugin in &self.plugins {
            if !plugin.has_hook(Hook::Log) {
                continue;
            }
            if let Err(failure) = plugin.on_log(entry).await {
                self.record(&failure, &entry.request.request_id, "log");
            }
        }
    }
}

/// Applies checked request edits: context entries for later plugins, then headers (noting the
/// names they touch in `edited`).
fn apply_request_edits(head: &mut RequestHead, mut edits: sluice_bindings::HeaderEdits, edited: &mut Vec<String>) {
    verdict::apply_context(&mut head.context, std::mem::take(&mut edits.context));
    verdict::note_edited_names(&edits, edited);
    verdict::apply_edits(&mut head.headers, edits);
}

fn body_error(e: &BodyError, request_id: &str) -> LocalResponse {
    let (status, code) = match e {
        BodyError::TooLarge(_) => (413, "body_too_large"),
        BodyError::Read(_) => (400, "body_unreadable"),
    };
    let body = serde_json::json!({ "error": code, "message": e.to_string(), "request_id": request_id });
    LocalResponse {
        status,
        headers: vec![("content-type".into(), b"application/json".to_vec())],
        body: body.to_string().into_bytes(),
    }
}
