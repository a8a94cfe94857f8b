//! A plugin as configured on one route: its component, config, limits and failure policy,
//! and the instances that run its hooks (a pool of reused instances, or a fresh one per
//! call).

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Semaphore;
use wasmtime::{Engine, Store, UpdateDeadline};

use super::dispatch::{self, Call, Hooks, Reply};
use super::engine::EpochTicker;
use super::failure::{FailureKind, PluginFailure};
use super::loader::LoadedPlugin;
use super::memo::{Reused, VerdictMemo, set_rate_limit_field};
use super::packed;
use super::state::{CallRequest, Directives, HostState};
use super::verdict;
use crate::context::PluginContext;
use sluice_backends::rate_limit::Decision as RateDecision;
use sluice_bindings::{Hook, LogEntry, RequestHead, RequestVerdict, ResponseHead, ResponseVerdict};
use sluice_config::{FailPolicy, InstanceMode, Limits, PoolSettings};
use sluice_core::telemetry::metrics::{Counter, Histogram};

/// A live instance, how often it has served, and the memory it had when it was new.
struct Slot {
    store: Store<HostState>,
    hooks: Hooks,
    uses: u64,
    /// Bytes of linear memory right after instantiation and `init`: the runtime a component
    /// carries (10 MiB or more for JavaScript and Python) is not growth.
    baseline: usize,
}

/// The settings of one configured plugin on one route.
#[derive(Debug, Clone)]
pub struct InstanceSettings {
    /// The plugin config passed to `init`, as JSON.
    pub config_json: String,
    /// CPU and memory limits.
    pub limits: Limits,
    /// Pooled or fresh instances.
    pub mode: InstanceMode,
    /// Pool tuning.
    pub pool: PoolSettings,
    /// What a failure does to the request.
    pub fail: FailPolicy,
}

/// Counters of one configured plugin.
struct InstanceMetrics {
    created: Arc<Counter>,
    recycled: Arc<Counter>,
    /// Requests answered with a kept verdict (`head.memo`) instead of a call.
    reused: Arc<Counter>,
    /// Hook call latency, by hook (in [`hook_index`] order).
    hook_seconds: [Arc<Histogram>; HOOKS],
}

/// A configured plugin: runs hooks on pooled or fresh instances under its limits, and turns
/// every way a call can go wrong into a [`PluginFailure`].
pub struct PluginInstance {
    loaded: Arc<LoadedPlugin>,
    context: Arc<PluginContext>,
    settings: InstanceSettings,
    engine: Engine,
    ticker: Arc<EpochTicker>,
    /// Boxed: a slot (the store and every export's handle) is a few hundred bytes, and a call
    /// moves it out of the pool and back.
    #[expect(
        clippy::vec_box,
        reason = "a call moves a slot out of the pool and back: a pointer, not the slot"
    )]
    idle: Mutex<Vec<Box<Slot>>>,
    /// One permit per instance the plugin may have alive (`pool.max_instances`): a call
    /// holds one for as long as it holds an instance.
    permits: Semaphore,
    metrics: InstanceMetrics,
    hooks: [bool; HOOKS],
    /// The request verdicts the plugin vouched may be reused (`head.memo`).
    memo: VerdictMemo,
}

/// The number of hooks a plugin can implement.
const HOOKS: usize = 6;

impl std::fmt::Debug for PluginInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginInstance")
            .field("plugin", &self.context.name)
            .field("settings", &self.settings)
            .finish()
    }
}

/// The wall-clock cap of a hook call with CPU `budget`: ten times the budget, at least 1 s.
pub(crate) fn wall_limit(budget: Duration) -> Duration {
    (budget * 10).max(Duration::from_secs(1))
}

fn hook_index(hook: Hook) -> usize {
    match hook {
        Hook::RequestHeaders => 0,
        Hook::RequestBody => 1,
        Hook::ResponseHeaders => 2,
        Hook::Log => 3,
        Hook::Message => 4,
        Hook::Tick => 5,
    }
}

/// A hook's name in the WIT world (`on-request-headers`, …), for logs, metrics and tools.
pub fn hook_name(hook: Hook) -> &'static str {
    match hook {
        Hook::RequestHeaders => "on-request-headers",
        Hook::RequestBody => "on-request-body",
        Hook::ResponseHeaders => "on-response-headers",
        Hook::Log => "on-log",
        Hook::Message => "on-message",
        Hook::Tick => "on-tick",
    }
}

impl PluginInstance {
    /// Configures `loaded` with `settings` and the capability `context`.
    pub(crate) fn new(
        loaded: Arc<LoadedPlugin>,
        context: Arc<PluginContext>,
        settings: InstanceSettings,
        engine: Engine,
        ticker: Arc<EpochTicker>,
    ) -> Self {
        let registry = &context.backends.metrics;
        let labels = [("plugin", &*context.name)];
        let metrics = InstanceMetrics {
            created: registry.counter("sluice_plugin_instances_created_total", &labels),
            recycled: registry.counter("sluice_plugin_instances_recycled_total", &labels),
            reused: registry.counter("sluice_plugin_verdicts_reused_total", &labels),
            hook_seconds: [
                Hook::RequestHeaders,
                Hook::RequestBody,
                Hook::ResponseHeaders,
                Hook::Log,
                Hook::Message,
                Hook::Tick,
            ]
            .map(|hook| {
                registry.histogram(
                    "sluice_plugin_hook_seconds",
                    &[("plugin", &*context.name), ("hook", hook_name(hook))],
                )
            }),
        };
        let permits = Semaphore::new(settings.pool.max_instances);
        let mut hooks = [false; HOOKS];
        for hook in &loaded.info.hooks {
            hooks[hook_index(*hook)] = true;
        }
        PluginInstance {
            loaded,
            context,
            settings,
            engine,
            ticker,
            idle: Mutex::new(Vec::new()),
            permits,
            metrics,
            hooks,
            memo: VerdictMemo::default(),
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &Arc<str> {
        &self.context.name
    }

    /// The failure policy.
    pub fn fail_policy(&self) -> FailPolicy {
        self.settings.fail
    }

    /// Whether the plugin implements `hook` (the host calls only those it does).
    pub fn has_hook(&self, hook: Hook) -> bool {
        self.hooks[hook_index(hook)]
    }

    /// Whether the component exports the packed request hooks (the `plugin-packed` world),
    /// which are then called in place of the typed ones.
    pub fn has_packed_hooks(&self) -> bool {
        self.loaded.packed.any()
    }

    /// The most body bytes the plugin declared it may ask for.
    pub fn max_body_bytes(&self) -> Option<u32> {
        self.loaded.info.max_body_bytes
    }

    /// Idle instances in the pool now.
    pub fn idle_instances(&self) -> usize {
        self.idle.lock().len()
    }

    /// Calls running now (each on an instance of its own).
    pub fn busy_instances(&self) -> usize {
        self.settings.pool.max_instances - self.permits.available_permits()
    }

    /// The most instances the plugin may have alive at once (`pool.max_instances`).
    pub fn max_instances(&self) -> usize {
        self.settings.pool.max_instances
    }

    /// Creates one instance and runs `init` on it, so that a config the plugin rejects is
    /// found at load time; for pooled plugins the instance then waits in the pool.
    pub(crate) async fn warm_up(&self) -> Result<(), PluginFailure> {
        let slot = self.instantiate().await?;
        if self.settings.mode == InstanceMode::Pooled {
            self.idle.lock().push(slot);
        }
        Ok(())
    }

    /// Runs `on-request-headers`; the verdict is checked before it is returned.
    pub async fn on_request_headers(&self, req: &RequestHead) -> Result<RequestVerdict, PluginFailure> {
        self.on_request_headers_with_directives(req).await.map(|(v, _)| v)
    }

    /// Runs `on-request-headers` and returns the checked verdict with the directives the
    /// call left through host calls (`body.decompress-request`, `http-cache.serve`). A verdict
    /// the plugin vouched for (`head.memo`) answers a request with the same reads without a
    /// call: its response edits come back as the directives, its audit events are emitted
    /// again.
    pub async fn on_request_headers_with_directives(
        &self,
        req: &RequestHead,
    ) -> Result<(RequestVerdict, Directives), PluginFailure> {
        if let Some(reused) = self.memo.reuse(req) {
            let decision = self.charge_reused(&reused).await;
            if let Some(answer) = self.answer_reused(req, &reused, decision) {
                return Ok(answer);
            }
        }
        match self.invoke(&req.request_id, Call::RequestHeaders(req)).await? {
            Reply::Request(v, mut directives) => {
                let verdict = self.check_request_verdict(v, "on-request-headers")?;
                if let Some(memo) = directives.memo.take() {
                    let only_edits = directives.only_edits();
                    self.memo
                        .keep(req, *memo, &verdict, directives.response.as_ref(), only_edits);
                }
                Ok((verdict, directives))
            }
            _ => unreachable!("request hooks reply with request verdicts"),
        }
    }

    /// Charges a kept verdict's rate-limit check, when it has one: `None` without one, else
    /// the decision. In memory this is a plain call; only a check in Redis waits, boxed,
    /// so that the future of every request hook call does not carry the Redis call's size.
    async fn charge_reused(&self, reused: &Reused) -> Option<RateDecision> {
        let charge = reused.charge.as_ref()?;
        let limiter = &self.context.backends.rate_limit;
        let plugin = &self.context.name;
        Some(match limiter.check_in_memory(plugin, &charge.specs, charge.cost) {
            Some(decided) => decided,
            None => Box::pin(limiter.check(plugin, &charge.specs, charge.cost, charge.local_share)).await,
        })
    }

    /// Answers `req` with a kept verdict given its charge's `decision` (`None` when the
    /// limits deny: the hook decides that request): emits its audit events again and hands
    /// back the verdict with its response edits, the `RateLimit` field written from the
    /// decision when the plugin named its policies.
    fn answer_reused(
        &self,
        req: &RequestHead,
        reused: &Reused,
        decision: Option<RateDecision>,
    ) -> Option<(RequestVerdict, Directives)> {
        let mut response = reused.response.clone();
        if let (Some(charge), Some(decision)) = (&reused.charge, decision) {
            if !decision.allowed {
                return None;
            }
            if let Some(names) = &charge.fields {
                set_rate_limit_field(&mut response, names, &decision.states);
            }
        }
        self.metrics.reused.add(1);
        crate::interfaces::audit::replay(&self.context, &reused.audit, req);
        let directives = Directives {
            response,
            ..Directives::default()
        };
        Some((reused.verdict.clone(), directives))
    }

    /// Runs `on-request-body` with the buffered `body`.
    pub async fn on_request_body(&self, req: &RequestHead, body: &[u8]) -> Result<RequestVerdict, PluginFailure> {
        self.on_request_body_with_directives(req, body).await.map(|(v, _)| v)
    }

    /// Runs `on-request-body` and returns the checked verdict with the directives the call
    /// left (`gpu` leases).
    pub async fn on_request_body_with_directives(
        &self,
        req: &RequestHead,
        body: &[u8],
    ) -> Result<(RequestVerdict, Directives), PluginFailure> {
        match self.invoke(&req.request_id, Call::RequestBody(req, body)).await? {
            Reply::Request(v, directives) => Ok((self.check_request_verdict(v, "on-request-body")?, directives)),
            _ => unreachable!("request hooks reply with request verdicts"),
        }
    }

    /// Runs `on-response-headers`; the verdict is checked before it is returned.
    pub async fn on_response_headers(
        &self,
        req: &RequestHead,
        resp: &ResponseHead,
    ) -> Result<ResponseVerdict, PluginFailure> {
        self.on_response_headers_with_directives(req, resp)
            .await
            .map(|(v, _)| v)
    }

    /// Runs `on-response-headers` and returns the checked verdict with the directives the
    /// call left through host calls (`http-cache.store`, `http-cache.refresh`).
    pub async fn on_response_headers_with_directives(
        &self,
        req: &RequestHead,
        resp: &ResponseHead,
    ) -> Result<(ResponseVerdict, Directives), PluginFailure> {
        match self.invoke(&req.request_id, Call::ResponseHeaders(req, resp)).await? {
            Reply::Response(v, directives) => Ok((self.check_response_verdict(v)?, directives)),
            _ => unreachable!("response hooks reply with response verdicts"),
        }
    }

    /// Runs `on-log`.
    pub async fn on_log(&self, entry: &LogEntry) -> Result<(), PluginFailure> {
        self.invoke(&entry.request.request_id, Call::Log(entry)).await.map(drop)
    }

    /// The plugin's name, grants and capabilities.
    pub fn context(&self) -> &PluginContext {
        &self.context
    }

    /// Runs `on-message` with a message that arrived on `channel`. `id` stands in for the
    /// request id in the plugin's log lines.
    /// Every kept verdict is forgotten first: a message may revoke what one vouched for.
    pub async fn on_message(&self, id: &str, channel: &str, message: &[u8]) -> Result<(), PluginFailure> {
        self.memo.clear();
        let result = self.invoke(id, Call::Message(channel, message)).await.map(drop);
        // And again after: a request served while the message was handled may have kept one.
        self.memo.clear();
        result
    }

    /// Runs `on-tick`. `id` stands in for the request id in the plugin's log lines.
    pub async fn on_tick(&self, id: &str) -> Result<(), PluginFailure> {
        self.invoke(id, Call::Tick).await.map(drop)
    }

    fn failure(&self, hook: &'static str, kind: FailureKind, message: String) -> PluginFailure {
        PluginFailure {
            plugin: self.context.name.clone(),
            hook,
            kind,
            message,
            memory_bytes: 0,
        }
    }

    fn check_request_verdict(
        &self,
        returned: dispatch::Returned<RequestVerdict>,
        hook: &'static str,
    ) -> Result<RequestVerdict, PluginFailure> {
        let v = returned
            .read(packed::read_request_verdict)
            .map_err(|why| self.failure(hook, FailureKind::InvalidVerdict, why))?;
        let body = verdict::BodyNeeds {
            has_body_hook: self.has_hook(Hook::RequestBody),
            max_body_bytes: self.max_body_bytes(),
        };
        verdict::check_request_verdict(&v, body)
            .map(|()| v)
            .map_err(|why| self.failure(hook, FailureKind::InvalidVerdict, why))
    }

    fn check_response_verdict(
        &self,
        returned: dispatch::Returned<ResponseVerdict>,
    ) -> Result<ResponseVerdict, PluginFailure> {
        let hook = "on-response-headers";
        let v = returned
            .read(packed::read_response_verdict)
            .map_err(|why| self.failure(hook, FailureKind::InvalidVerdict, why))?;
        verdict::check_response_verdict(&v)
            .map(|()| v)
            .map_err(|why| self.failure(hook, FailureKind::InvalidVerdict, why))
    }

    /// Takes an instance (pooled or new), runs one hook under the CPU deadline, and returns
    /// the instance to the pool when it may serve again.
    async fn invoke(&self, request_id: &str, call: Call<'_>) -> Result<Reply, PluginFailure> {
        let hook = hook_name(call.hook());
        let latency = &self.metrics.hook_seconds[hook_index(call.hook())];
        let pooled = self.settings.mode == InstanceMode::Pooled;
        let _permit = self.acquire(hook).await?;
        let reused = if pooled { self.idle.lock().pop() } else { None };
        let mut slot = match reused {
            Some(slot) => slot,
            // Boxed: instantiation's future is large and a pooled call rarely needs it; inline,
            // every call's future (and each move of it) would carry its size.
            None => Box::pin(self.instantiate()).await.map_err(|mut f| {
                f.hook = hook;
                f
            })?,
        };
        let budget = Duration::from_millis(self.settings.limits.cpu_ms.into());
        let (client_ip, route) = call
            .request()
            .map_or(("", ""), |r| (r.client_ip.as_str(), r.route.as_str()));
        slot.store.data_mut().begin_call(request_id, client_ip, route, budget);
        let data = slot.store.data_mut();
        data.in_request_headers = matches!(call, Call::RequestHeaders(_));
        data.in_request_body = matches!(call, Call::RequestBody(..));
        data.in_response_headers = matches!(call, Call::ResponseHeaders(..));
        data.memo.recording = data.memo.eligible && data.in_request_headers;
        if self.context.grants.http_cache
            && (data.in_request_headers || data.in_response_headers)
            && let Some(req) = call.request()
        {
            data.request = Some(CallRequest {
                headers: req.headers.clone(),
                target: req.path.clone(),
                upgrade: req.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("upgrade")),
            });
        }
        // The first look at the next tick; the callback then meters CPU time.
        slot.store.set_epoch_deadline(1);
        let call = slot.hooks.call(&mut slot.store, call);
        // A plugin that waits (a WASI sleep or poll suspends the call) uses no CPU, so the
        // CPU deadline never sees it: a wall-clock cap bounds how long it can hold a request.
        let Some(result) = sluice_core::time::capped(wall_limit(budget), call).await else {
            self.metrics.recycled.add(1);
            let message = format!("was still waiting after {:?} of wall-clock time", wall_limit(budget));
            return Err(self.failure(hook, FailureKind::Timeout, message));
        };
        latency.record(slot.store.data().cpu.started().elapsed().as_secs_f64());
        slot.store.data_mut().cpu.end();
        match result {
            Ok(reply) => {
                let reply = match reply {
                    Reply::Request(v, _) => {
                        let data = slot.store.data_mut();
                        let mut directives = std::mem::take(&mut data.directives);
                        directives.memo = data.memo.finish(slot.hooks.reads());
                        Reply::Request(v, directives)
                    }
                    Reply::Response(v, _) => Reply::Response(v, std::mem::take(&mut slot.store.data_mut().directives)),
                    other => other,
                };
                slot.uses += 1;
                if pooled {
                    self.give_back(slot);
                }
                Ok(reply)
            }
            Err(error) => {
                self.metrics.recycled.add(1);
                Err(self.classify(hook, &slot.store, error))
            }
        }
    }

    /// Waits for one of the plugin's `pool.max_instances` permits, up to
    /// `pool.acquire_timeout_ms`; uncontended, this is one atomic operation.
    async fn acquire(&self, hook: &'static str) -> Result<tokio::sync::SemaphorePermit<'_>, PluginFailure> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(permit);
        }
        let wait = Duration::from_millis(self.settings.pool.acquire_timeout_ms);
        match tokio::time::timeout(wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.failure(
                hook,
                FailureKind::Busy,
                format!(
                    "all {} instances stayed busy for {} ms",
                    self.settings.pool.max_instances, self.settings.pool.acquire_timeout_ms
                ),
            )),
        }
    }

    /// Returns a healthy instance to the pool unless it is due for replacement.
    fn give_back(&self, slot: Box<Slot>) {
        let limiter = &slot.store.data().limiter;
        let recycle_at = recycle_threshold(self.settings.pool.recycle_memory_mb, slot.baseline, limiter.limit());
        if slot.uses >= self.settings.pool.max_uses || limiter.used() > recycle_at {
            self.metrics.recycled.add(1);
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() < self.settings.pool.max_idle {
            idle.push(slot);
        }
    }

    /// Names what went wrong in a failed call: the deadline, the memory limit, or a trap.
    fn classify(&self, hook: &'static str, store: &Store<HostState>, error: wasmtime::Error) -> PluginFailure {
        let state = store.data();
        let (kind, message) = if state.deadline_hit {
            (
                FailureKind::Timeout,
                format!("ran past its CPU budget of {} ms", self.settings.limits.cpu_ms),
            )
        } else if state.limiter.refused() {
            (
                FailureKind::Memory,
                format!(
                    "needed more than its memory limit of {} MiB ({error})",
                    self.settings.limits.memory_mb
                ),
            )
        } else {
            (FailureKind::Trap, format!("{error:#}"))
        };
        PluginFailure {
            memory_bytes: state.limiter.used(),
            ..self.failure(hook, kind, message)
        }
    }

    /// Creates a new instance under the plugin's limits and runs `init` on it.
    async fn instantiate(&self) -> Result<Box<Slot>, PluginFailure> {
        let limits = self.settings.limits;
        let memory = (limits.memory_mb as usize) << 20;
        let mut store = Store::new(&self.engine, HostState::new(self.context.clone(), memory));
        store.limiter(|s| &mut s.limiter);
        let ticker = self.ticker.clone();
        store.epoch_deadline_callback(move |mut ctx| {
            let state = ctx.data_mut();
            let used = state.cpu.observe(ticker.tick());
            state.cpu.running_long(&ticker);
            if used >= state.cpu_budget {
                state.deadline_hit = true;
                return Err(wasmtime::format_err!("CPU budget of {:?} exhausted", state.cpu_budget));
            }
            // Not yet: let the worker's other tasks run, and look again at the next tick.
            Ok(UpdateDeadline::YieldCustom(1, state.cpu.yield_point()))
        });
        let budget = Duration::from_millis(limits.init_ms.into());
        store.data_mut().begin_call("-", "", "", budget);
        store.set_epoch_deadline(1);
        let (bindings, packed) = match self.loaded.instantiate(&mut store).await {
            Ok(b) => b,
            Err(e) => {
                if store.data().limiter.refused() {
                    let message = format!(
                        "{e:#}: a new instance needs more memory than the plugin's limit of {} MiB; \
                         raise `limits.memory_mb` of [plugins.{}] (components from componentize-js \
                         or componentize-py start with 10 MiB or more)",
                        limits.memory_mb, self.context.name
                    );
                    return Err(self.failure("instantiate", FailureKind::Memory, message));
                }
                return Err(self.failure("instantiate", FailureKind::Instantiate, format!("{e:#}")));
            }
        };
        store.data_mut().in_init = true;
        let init = bindings.call_init(&mut store, &self.settings.config_json).await;
        store.data_mut().in_init = false;
        store.data_mut().cpu.end();
        match init {
            Ok(Ok(())) => {}
            Ok(Err(message)) => return Err(self.failure("init", FailureKind::Init, message)),
            Err(e) => return Err(self.classify("init", &store, e)),
        }
        store.data_mut().memo.eligible = store.data().reads.is_some();
        let reads = match store.data_mut().reads.take() {
            None => None,
            Some(reads) => match bindings.view_hooks(&store) {
                Ok(hooks) => Some((reads, hooks)),
                Err(e) => return Err(self.failure("init", FailureKind::Instantiate, format!("{e:#}"))),
            },
        };
        self.metrics.created.add(1);
        let baseline = store.data().limiter.used();
        Ok(Box::new(Slot {
            store,
            hooks: Hooks::new(bindings, reads, packed),
            uses: 0,
            baseline,
        }))
    }
}

/// The memory past which an instance is replaced after its call: `recycle_memory_mb` when set,
/// otherwise half-way from what the instance had when new to the limit, so an instance that
/// starts large (a language runtime) is not replaced after every call.
fn recycle_threshold(configured_mb: Option<u32>, baseline: usize, limit: usize) -> usize {
    configured_mb.map_or(baseline + limit.saturating_sub(baseline) / 2, |mb| (mb as usize) << 20)
}

#[cfg(test)]
mod tests {
    use super::recycle_threshold;

    #[test]
    fn instances_are_recycled_half_way_from_their_start_to_the_limit() {
        const MIB: usize = 1 << 20;
        assert_eq!(recycle_threshold(None, 0, 16 * MIB), 8 * MIB);
        // A 10 MiB runtime in a 16 MiB limit: replaced past 13 MiB, not after every call.
        assert_eq!(recycle_threshold(None, 10 * MIB, 16 * MIB), 13 * MIB);
        assert_eq!(recycle_threshold(Some(12), 10 * MIB, 16 * MIB), 12 * MIB);
    }
}
