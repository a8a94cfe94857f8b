//! The data each plugin instance's `Store` carries: WASI context, the memory limiter, the
//! plugin's capability context, and the bookkeeping of the hook call in progress.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::{ResourceTable, WasiCtx, WasiCtxView, WasiView};

use super::cpu::CpuMeter;
use super::limiter::MemoryLimiter;
use crate::context::PluginContext;
use crate::memo::{MemoCall, MemoRequest};
use crate::reads::Reads;
use sluice_backends::http_cache::CacheServe;
use sluice_backends::http_cache::{FillGuard, StoredEntry};
use sluice_bindings::sluice::plugin::http_cache::DirectHits;
use sluice_bindings::{CacheSpec, HeaderEdits, ResponseHead};
use sluice_core::decompress::DecompressRequest;

/// The store data of one plugin instance.
pub struct HostState {
    /// The plugin this instance belongs to.
    pub plugin: Arc<PluginContext>,
    /// The request the current hook call serves ("-" outside a request).
    pub request_id: String,
    /// The client IP of that request (empty outside a request).
    pub client_ip: String,
    /// The route of that request (empty outside a request).
    pub route: String,
    /// Sums the instance's memories against the plugin's limit.
    pub limiter: MemoryLimiter,
    /// The CPU the current hook call has used (read at deadline callbacks).
    pub cpu: CpuMeter,
    /// The CPU budget of the current call.
    pub cpu_budget: Duration,
    /// Set when the epoch callback ended the call for running past its budget.
    pub deadline_hit: bool,
    /// Whether the current call is `on-request-headers` (the only hook that may leave
    /// request directives such as `body.decompress-request`).
    pub in_request_headers: bool,
    /// Whether the current call is `on-request-body`.
    pub in_request_body: bool,
    /// Whether the current call is `on-response-headers` (the only hook that may leave
    /// response directives such as `http-cache.store`).
    pub in_response_headers: bool,
    /// The request of the current call, for the host calls that need more than its id
    /// (`http-cache`); set only for plugins granted them.
    pub request: Option<CallRequest>,
    /// The directives the current call left.
    pub directives: Directives,
    /// Whether the current call is `init` (the only one that may declare `reads`).
    pub in_init: bool,
    /// What `init` declared the instance's hooks read (`head.reads`); the instance takes it
    /// when `init` returns and keeps it for its whole life.
    pub reads: Option<Reads>,
    /// The current call's part in reused verdicts (`head.memo`).
    pub memo: MemoCall,
    wasi: WasiCtx,
    table: ResourceTable,
}

impl HostState {
    /// State for a new instance of `plugin` limited to `memory_bytes`.
    pub fn new(plugin: Arc<PluginContext>, memory_bytes: usize) -> Self {
        let stderr = GuestOutput {
            plugin: plugin.name.clone(),
        };
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stdout(stderr.clone())
            .stderr(stderr)
            .build();
        HostState {
            plugin,
            request_id: String::from("-"),
            client_ip: String::new(),
            route: String::new(),
            limiter: MemoryLimiter::new(memory_bytes),
            cpu: CpuMeter::start(),
            cpu_budget: Duration::ZERO,
            deadline_hit: false,
            in_request_headers: false,
            in_request_body: false,
            in_response_headers: false,
            request: None,
            directives: Directives::default(),
            in_init: false,
            reads: None,
            memo: MemoCall::default(),
            wasi,
            table: ResourceTable::new(),
        }
    }

    /// Resets the per-call bookkeeping before a hook call with `budget` of CPU, for the
    /// request `request_id` from `client_ip` on `route` (both empty outside a request).
    pub fn begin_call(&mut self, request_id: &str, client_ip: &str, route: &str, budget: Duration) {
        request_id.clone_into(&mut self.request_id);
        client_ip.clone_into(&mut self.client_ip);
        route.clone_into(&mut self.route);
        self.cpu = CpuMeter::start();
        self.cpu_budget = budget;
        self.limiter.clear_refused();
        self.deadline_hit = false;
        self.in_request_headers = false;
        self.in_request_body = false;
        self.in_response_headers = false;
        self.request = None;
        self.directives = Directives::default();
        self.in_init = false;
        self.memo.begin();
    }

    /// Notes a host call whose effect is per request, so the current call's verdict cannot be
    /// reused (`head.memo`): a reuse would skip it.
    pub fn per_request(&mut self, call: &'static str) {
        self.memo.spoil(call);
    }
}

/// What a hook call asked the host to do besides its verdict, through host calls.
#[derive(Debug, Default)]
pub struct Directives {
    /// `body.decompress-request` (request hooks).
    pub decompress: Option<DecompressRequest>,
    /// `http-cache.serve`, `store`, `refresh` or `use-stored`.
    pub cache: Option<CacheDirective>,
    /// The fill claim `http-cache.claim-fill` took (request hooks).
    pub fill: Option<FillGuard>,
    /// The GPU leases `gpu.acquire` and `gpu.reserve` took (request hooks): released when
    /// the request's response ends, or when dropped unused.
    pub leases: Vec<sluice_backends::gpu::LeaseGuard>,
    /// The edits `response.edit` asked for (request hooks), merged in call order.
    pub response: Option<HeaderEdits>,
    /// `head.memo`: the call's verdict may be reused (`on-request-headers`). Boxed: the
    /// directives move with every hook call's reply.
    pub memo: Option<Box<MemoRequest>>,
}

impl Directives {
    /// Whether the call left nothing but response edits (and a memo request): no body
    /// decoding, cache work, fill claim or GPU lease, which a reuse could not repeat.
    pub fn only_edits(&self) -> bool {
        self.decompress.is_none() && self.cache.is_none() && self.fill.is_none() && self.leases.is_empty()
    }
}

/// An `http-cache` directive.
#[derive(Debug)]
pub enum CacheDirective {
    /// Answer from this stored response (`serve`).
    Serve(CacheServe),
    /// Store the response as it streams (`store`, or the `store` verdict).
    Store(CacheStore),
    /// Answer with this stored response instead of the upstream's (`refresh` after a 304,
    /// `use-stored` after an error).
    AnswerStored(Arc<StoredEntry>),
}

/// A response to store as it streams.
#[derive(Debug, Clone)]
pub struct CacheStore {
    /// The plugin that asked (its name scopes the key).
    pub plugin: Arc<str>,
    /// What to store it as.
    pub spec: CacheSpec,
    /// Header fields left out of the stored copy.
    pub strip: Vec<String>,
    /// The response head as that plugin saw it (the chain fills it in; the plugin's own
    /// edits and those of the plugins after it are not stored).
    pub head: Option<ResponseHead>,
    /// The plugin's promise that the host may answer fresh hits itself.
    pub direct: Option<DirectHits>,
}

/// The parts of the current request that `http-cache` calls need.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The header fields.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The request target (path and query).
    pub target: String,
    /// Whether the request asks to switch protocols (it has an `Upgrade` field): the HTTP
    /// cache never answers it, nor lets it lead a fill.
    pub upgrade: bool,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A guest's stdout and stderr: each line becomes a `warn` log line tagged with the plugin.
/// Writes always succeed, so a chatty plugin never traps on a full pipe.
#[derive(Clone)]
struct GuestOutput {
    plugin: Arc<str>,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineLogger {
            plugin: self.plugin.clone(),
            line: Vec::new(),
        })
    }
}

/// The longest line kept from guest output; the rest of a longer line is dropped.
const MAX_LINE: usize = 4096;

struct LineLogger {
    plugin: Arc<str>,
    line: Vec<u8>,
}

impl LineLogger {
    fn emit(&mut self) {
        if !self.line.is_empty() {
            let text = String::from_utf8_lossy(&self.line);
            tracing::warn!(plugin = &*self.plugin, "plugin output: {}", text.trim_end());
            self.line.clear();
        }
    }
}

impl AsyncWrite for LineLogger {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        for chunk in buf.split_inclusive(|b| *b == b'\n') {
            let room = MAX_LINE.saturating_sub(self.line.len());
            self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.ends_with(b"\n") {
                self.emit();
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.emit();
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineLogger {
    fn drop(&mut self) {
        self.emit();
    }
}
