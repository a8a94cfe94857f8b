//! The gateway's live state: the routing table (routes, chains, upstreams) behind an atomic
//! pointer, and hot reload that builds a whole new table off the request path and swaps it
//! in only when every part of it loaded.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;
use parking_lot::Mutex;

use crate::forward::coalesce::Coalescer;
use crate::history::History;
use crate::router::{Route, Router};
use crate::tunnel::Tunnels;
use sluice_config::GatewayConfig;
use sluice_core::in_flight::{InFlight, InFlightCount};
use sluice_core::request_id::RequestIdHeaders;
use sluice_core::telemetry::metrics::Registry;
use sluice_core::upstream::Upstream;
use sluice_runtime::{Chain, RouteTable, Runtime};

/// One complete, immutable routing state. Requests hold an `Arc` of the one they started
/// with, so a reload never changes a request in flight.
#[derive(Debug)]
pub struct Gateway {
    /// The config it was built from.
    pub config: Arc<GatewayConfig>,
    /// Routes in match order.
    pub router: Router,
    /// Chains and loaded plugins.
    pub table: RouteTable,
    /// Upstreams by name.
    pub upstreams: BTreeMap<String, Arc<Upstream>>,
    /// The headers request ids come in and go out under (`server.request_id_header` and
    /// `request_id_sources`).
    pub request_ids: RequestIdHeaders,
}

impl Gateway {
    /// Builds a gateway from `config`, reusing the connection pools of `previous` for
    /// upstreams whose settings did not change.
    pub async fn build(runtime: &Runtime, config: GatewayConfig, previous: Option<&Gateway>) -> Result<Self, String> {
        let table = runtime.build_routes(&config).await.map_err(|e| e.to_string())?;
        let mut upstreams = BTreeMap::new();
        let workers = sluice_core::workers::resolve_count(config.server.workers);
        for (name, def) in &config.upstreams {
            let reused = previous.and_then(|p| {
                (p.config.upstreams.get(name) == Some(def))
                    .then(|| p.upstreams.get(name).cloned())
                    .flatten()
            });
            upstreams.insert(
                name.clone(),
                reused.unwrap_or_else(|| Upstream::new(name, def, &runtime.backends().metrics, workers)),
            );
        }
        let metrics = runtime.backends().metrics.clone();
        let routes = config
            .routes
            .iter()
            .map(|r| {
                let chain = table
                    .chain(&r.name)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Chain::new(&r.name, Vec::new(), metrics.clone())));
                let upstream = r.upstream.as_ref().and_then(|u| upstreams.get(u).cloned());
                Route::new(&r.name, r.matcher.clone(), chain, upstream, &metrics).with_upgrades(r.upgrades.clone())
            })
            .collect();
        let server = &config.server;
        let request_ids = RequestIdHeaders::new(&server.request_id_header, &server.request_id_sources)
            .map_err(|e| format!("server.request_id_header or request_id_sources: {e}"))?;
        Ok(Gateway {
            request_ids,
            config: Arc::new(config),
            router: Router::new(routes, &metrics),
            table,
            upstreams,
        })
    }
}

/// The config to run: `file`, or, when its `[postgres] config_name` is set, the config stored
/// under that name in Postgres (keeping the file's `[postgres]` section). At start a Postgres
/// that cannot be reached (or has no such row yet) leaves the file in force; at a reload it
/// is an error, and the running config stays.
async fn effective_config(runtime: &Runtime, file: GatewayConfig, starting: bool) -> Result<Effective, String> {
    let from_file = |config| Ok(Effective { config, stored: None });
    let (Some(settings), Some(pg)) = (file.postgres.clone(), runtime.backends().postgres.clone()) else {
        return from_file(file);
    };
    let Some(name) = settings.config_name.clone() else {
        return from_file(file);
    };
    let stored = match pg.stored_config(&name).await {
        Ok(Some(text)) => text,
        Ok(None) if starting => {
            tracing::warn!(%name, "no config named so in Postgres yet; running the file's");
            return from_file(file);
        }
        Ok(None) => return Err(format!("no config named '{name}' in Postgres (gateway_config)")),
        Err(e) if starting => {
            tracing::warn!(error = %e, %name, "cannot read the config from Postgres; running the file's until it changes");
            return from_file(file);
        }
        Err(e) => return Err(format!("cannot read config '{name}' from Postgres: {e}")),
    };
    let origin = PathBuf::from(format!("<postgres gateway_config '{name}'>"));
    let mut config = match GatewayConfig::parse(&stored, &origin, file.base_dir.clone()) {
        Ok(config) => config,
        Err(e) if starting => {
            tracing::error!(error = %e, %name, "the config stored in Postgres is invalid; running the file's until it changes");
            return from_file(file);
        }
        Err(e) => return Err(e.to_string()),
    };
    config.postgres = Some(settings);
    Ok(Effective {
        config,
        stored: Some(stored),
    })
}

/// The config a gateway runs, and the stored text it came from (none: the file's).
struct Effective {
    config: GatewayConfig,
    stored: Option<String>,
}

/// `next`, unless it changes `[postgres]` or `[redis]`: the backends were built from them at
/// start-up, and a reload that changed them (a new named statement or script, say) would
/// validate grants the running backends cannot serve.
fn same_backends(running: &GatewayConfig, next: GatewayConfig) -> Result<GatewayConfig, String> {
    if next.postgres != running.postgres {
        return Err("[postgres] changed: it is read at start-up only; restart the gateway to apply it".into());
    }
    if next.redis != running.redis {
        return Err("[redis] changed: it is read at start-up only; restart the gateway to apply it".into());
    }
    Ok(next)
}

/// The settings that differ between `running` and `next` but only take effect at start-up
/// (listeners, TLS, connection limits and timeouts, workers, the runtime, span export, the
/// HTTP cache's storage, whether there is a GPU fleet).
fn startup_only_changes(running: &GatewayConfig, next: &GatewayConfig) -> Vec<&'static str> {
    let (a, b) = (&running.server, &next.server);
    [
        ("server.listen", a.listen != b.listen),
        ("server.tls", a.tls != b.tls),
        ("server.http3_listen", a.http3_listen != b.http3_listen),
        ("server.max_header_bytes", a.max_header_bytes != b.max_header_bytes),
        ("server.max_headers", a.max_headers != b.max_headers),
        (
            "server.header_read_timeout_ms",
            a.header_read_timeout_ms != b.header_read_timeout_ms,
        ),
        ("server.idle_timeout_ms", a.idle_timeout_ms != b.idle_timeout_ms),
        ("server.workers", a.workers != b.workers),
        ("server.shutdown_grace_ms", a.shutdown_grace_ms != b.shutdown_grace_ms),
        ("[admin]", running.admin != next.admin),
        ("[demo]", running.demo != next.demo),
        ("[sinks]", running.sinks != next.sinks),
        ("[runtime]", running.runtime != next.runtime),
        ("[telemetry]", running.telemetry != next.telemetry),
        ("[http_cache]", running.http_cache != next.http_cache),
        // With a fleet running, its policy reloads (`Scheduler::apply_reload`); adding or
        // removing `[gpu]` waits for a restart.
        ("[gpu]", running.gpu.is_some() != next.gpu.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, changed)| changed.then_some(name))
    .collect()
}

/// Where the config comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A file, re-read on every reload.
    File(PathBuf),
    /// The config embedded in the binary.
    Embedded(&'static str),
}

impl ConfigSource {
    /// Reads and validates the config.
    pub fn load(&self) -> Result<GatewayConfig, String> {
        match self {
            ConfigSource::File(path) => GatewayConfig::load(path).map_err(|e| e.to_string()),
            ConfigSource::Embedded(text) => {
                GatewayConfig::parse(text, std::path::Path::new("<embedded sluice.toml>"), PathBuf::from("."))
                    .map_err(|e| e.to_string())
            }
        }
    }
}

/// How many reloads [`GatewayState::reloads`] remembers.
pub const RELOAD_HISTORY: usize = 32;

/// The outcome of one reload (or of loading the config at start-up).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReloadStatus {
    /// When it happened (seconds since the Unix epoch).
    pub at_unix: u64,
    /// Whether the new config was installed.
    pub ok: bool,
    /// Why not, when it was not.
    pub error: Option<String>,
    /// What triggered it (`startup`, `admin`, `signal`, `file`).
    pub trigger: String,
}

/// The shared state of a running gateway.
pub struct GatewayState {
    current: ArcSwap<Gateway>,
    runtime: Runtime,
    source: ConfigSource,
    /// The last [`RELOAD_HISTORY`] reloads, oldest first; never empty (start-up is one).
    reloads: Mutex<std::collections::VecDeque<ReloadStatus>>,
    reload_lock: tokio::sync::Mutex<()>,
    /// Counts installed gateways; bumped on every successful reload.
    installs: tokio::sync::watch::Sender<u64>,
    /// The text of the config stored in Postgres the current gateway runs; none when it runs
    /// the file's.
    stored: Mutex<Option<String>>,
    /// Request coalescing's in-flight table and replay store, shared by every worker and kept
    /// across reloads.
    coalescer: Coalescer,
    /// The open protocol-switch tunnels, kept across reloads until their own end or the drain.
    tunnels: Arc<Tunnels>,
    /// `Alt-Svc` for HTTPS answers, once the HTTP/3 listener is bound.
    alt_svc: std::sync::OnceLock<hyper::header::HeaderValue>,
    /// Requests between arrival and their response head, on every public listener.
    in_flight: InFlightCount,
    /// The dashboard's last 15 minutes, one sample per second.
    history: History,
}

impl std::fmt::Debug for GatewayState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayState").field("source", &self.source).finish()
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl GatewayState {
    /// Loads the config from `source`, builds the first gateway, and returns the state.
    pub async fn start(runtime: Runtime, source: ConfigSource) -> Result<Arc<Self>, String> {
        let effective = effective_config(&runtime, source.load()?, true).await?;
        let gateway = Gateway::build(&runtime, effective.config, None).await?;
        let coalescer = Coalescer::new(runtime.backends());
        let tunnels = Tunnels::new(runtime.backends().metrics.clone());
        Ok(Arc::new(GatewayState {
            coalescer,
            tunnels,
            alt_svc: std::sync::OnceLock::new(),
            in_flight: Default::default(),
            history: History::default(),
            current: ArcSwap::from_pointee(gateway),
            runtime,
            source,
            reloads: Mutex::new(std::collections::VecDeque::from([ReloadStatus {
                at_unix: now_unix(),
                ok: true,
                error: None,
                trigger: "startup".into(),
            }])),
            reload_lock: tokio::sync::Mutex::new(()),
            installs: tokio::sync::watch::Sender::new(0),
            stored: Mutex::new(effective.stored),
        }))
    }

    /// Counts a request in flight until the returned guard is dropped (when its response
    /// head is ready).
    pub fn request_started(&self) -> InFlight<'_> {
        self.in_flight.enter()
    }

    /// Requests between arrival and their response head now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.get()
    }

    /// Where the config in force came from: `embedded`, `file:PATH`, or `postgres:NAME` when
    /// it is the one stored in Postgres.
    pub fn config_origin(&self) -> String {
        let stored_name = self
            .current()
            .config
            .postgres
            .as_ref()
            .and_then(|p| p.config_name.clone());
        match (&self.source, stored_name, self.stored.lock().is_some()) {
            (_, Some(name), true) => format!("postgres:{name}"),
            (ConfigSource::File(path), _, _) => format!("file:{}", path.display()),
            (ConfigSource::Embedded(_), _, _) => "embedded".into(),
        }
    }

    /// The last 15 minutes of per-second samples, for the dashboard.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The gateway requests should use now.
    pub fn current(&self) -> Arc<Gateway> {
        self.current.load_full()
    }

    /// `Alt-Svc` advertising the HTTP/3 listener, when there is one.
    pub fn alt_svc(&self) -> Option<&hyper::header::HeaderValue> {
        self.alt_svc.get()
    }

    /// Advertises HTTP/3 on UDP `port` in every HTTPS answer from now on (for a day).
    pub fn advertise_http3(&self, port: u16) {
        let value = format!("h3=\":{port}\"; ma=86400");
        if let Ok(value) = hyper::header::HeaderValue::from_str(&value) {
            let _ = self.alt_svc.set(value);
        }
    }

    /// The open tunnels of protocol switches (WebSocket).
    pub fn tunnels(&self) -> &Arc<Tunnels> {
        &self.tunnels
    }

    /// Request coalescing (the `coalesce` verdict).
    pub fn coalescer(&self) -> &Coalescer {
        &self.coalescer
    }

    /// The plugin runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The metrics registry.
    pub fn metrics(&self) -> &Arc<Registry> {
        &self.runtime.backends().metrics
    }

    /// Changes whenever a reload installs a new gateway (for work that follows the route
    /// table, such as plugin channel subscriptions).
    pub fn installs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.installs.subscribe()
    }

    /// Whether the config stored in Postgres as `name` differs from the one running (or
    /// cannot be read, or the gateway runs the file's): after a LISTEN connection was (re)made,
    /// when a change may have gone unseen.
    pub async fn stored_config_differs(&self, name: &str) -> bool {
        let Some(pg) = self.runtime.backends().postgres.clone() else {
            return false;
        };
        match pg.stored_config(name).await {
            Ok(text) => text != *self.stored.lock(),
            Err(_) => true,
        }
    }

    /// The outcome of the last reload (start-up's when none has run since).
    pub fn last_reload(&self) -> ReloadStatus {
        let reloads = self.reloads.lock();
        reloads.back().cloned().expect("start-up is always recorded")
    }

    /// The last [`RELOAD_HISTORY`] reloads, newest first.
    pub fn reloads(&self) -> Vec<ReloadStatus> {
        self.reloads.lock().iter().rev().cloned().collect()
    }

    /// Re-reads the config and, when it is valid and every plugin loads, swaps the new
    /// gateway in. An invalid config changes nothing; the error is logged, counted and kept
    /// for the admin API. Reloads run one at a time.
    pub async fn reload(&self, trigger: &str) -> Result<(), String> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let previous = self.current();
        let result = match self.source.load().and_then(|c| same_backends(&previous.config, c)) {
            Ok(config) => match effective_config(&self.runtime, config, false).await {
                Ok(effective) => {
                    let built = Gateway::build(&self.runtime, effective.config, Some(&previous)).await;
                    built.map(|gateway| (gateway, effective.stored))
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let outcome = match result {
            Ok((gateway, stored)) => {
                *self.stored.lock() = stored;
                let mut unapplied = startup_only_changes(&previous.config, &gateway.config);
                if let (Some(fleet), Some(next)) = (&self.runtime.backends().gpu, &gateway.config.gpu) {
                    unapplied.extend(fleet.apply_reload(next));
                }
                if !unapplied.is_empty() {
                    tracing::warn!(
                        trigger,
                        settings = %unapplied.join(", "),
                        "these settings changed but are read at start-up only; they apply after a restart"
                    );
                }
                self.current.store(Arc::new(gateway));
                self.installs.send_modify(|n| *n += 1);
                tracing::info!(trigger, "config reloaded");
                Ok(())
            }
            Err(error) => {
                tracing::error!(trigger, %error, "config reload failed; the previous config stays in place");
                Err(error)
            }
        };
        let ok = outcome.is_ok();
        self.metrics()
            .counter(
                "sluice_config_reloads_total",
                &[("result", if ok { "ok" } else { "error" })],
            )
            .add(1);
        let mut reloads = self.reloads.lock();
        if reloads.len() == RELOAD_HISTORY {
            reloads.pop_front();
        }
        reloads.push_back(ReloadStatus {
            at_unix: now_unix(),
            ok,
            error: outcome.as_ref().err().cloned(),
            trigger: trigger.to_string(),
        });
        drop(reloads);
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> GatewayConfig {
        GatewayConfig::parse(text, std::path::Path::new("t.toml"), PathBuf::from(".")).unwrap()
    }

    #[test]
    fn settings_read_only_at_start_up_are_named_when_a_reload_changes_them() {
        let running = config("[server]\nlisten = \"127.0.0.1:8080\"\nmax_body_bytes = 10\n");
        let next = config("[server]\nlisten = \"127.0.0.1:9090\"\nmax_body_bytes = 20\nworkers = 3\n");
        assert_eq!(
            startup_only_changes(&running, &next),
            ["server.listen", "server.workers"]
        );
        assert!(startup_only_changes(&running, &running.clone()).is_empty());
    }

    #[test]
    fn a_reload_that_changes_a_backend_section_is_refused() {
        let running = config("[postgres]\nurl = \"postgres://a@h/db\"\n");
        let same = config("[postgres]\nurl = \"postgres://a@h/db\"\n[[routes]]\nname = \"r\"\n");
        assert!(same_backends(&running, same).is_ok(), "other sections may change");
        let more = config("[postgres]\nurl = \"postgres://a@h/db\"\n[postgres.statements]\nq = \"SELECT 1\"\n");
        let error = same_backends(&running, more).unwrap_err();
        assert!(error.contains("[postgres] changed"), "{error}");
        let redis = config("[postgres]\nurl = \"postgres://a@h/db\"\n[redis]\nurl = \"redis://h:6379\"\n");
        assert!(same_backends(&running, redis).unwrap_err().contains("[redis] changed"));
    }
}
