//! Running a whole gateway: the public and admin listeners over one [`GatewayState`], signal
//! handling (SIGTERM/SIGINT drain and stop, SIGHUP reloads) and reload on config file change.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::accept::handle;
use crate::client_body::ClientBody;
use crate::exchange::ConnInfo;
use crate::state::{ConfigSource, GatewayState};
use crate::{admin, server};
use sluice_backends::Backends;
use sluice_backends::postgres::PostgresBackend;
use sluice_core::workers::Workers;
use sluice_runtime::Runtime;

/// How often the config file's modification time is checked.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

/// A gateway serving in the background.
#[derive(Debug)]
pub struct RunningGateway {
    /// The shared state (for reloads and inspection).
    pub state: Arc<GatewayState>,
    /// Where the public listener is bound.
    pub addr: SocketAddr,
    /// Where the admin listener is bound.
    pub admin_addr: SocketAddr,
    /// Where the HTTP/3 listener is bound (UDP), when `server.http3_listen` is set.
    pub http3_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The request workers; they stop when the gateway is dropped, after the drain.
    workers: Arc<Workers>,
}

impl RunningGateway {
    /// Loads the config from `source`, compiles its plugins, binds both listeners (port 0
    /// picks a free port) and starts serving.
    pub async fn start(source: ConfigSource) -> Result<Self, String> {
        let config = source.load()?;
        let backends = Backends::for_config(&config).map_err(|e| e.to_string())?;
        if let Some(pg) = backends.postgres.clone()
            && pg.settings().migrate_on_start
        {
            tokio::spawn(migrate_until_done(pg));
        }
        let runtime = Runtime::for_config(&config, backends).map_err(|e| e.to_string())?;
        let state = GatewayState::start(runtime, source.clone()).await?;
        let settings = state.current().config.clone();
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))
        };
        let public = bind(settings.server.listen).await?;
        let admin_listener = bind(settings.admin.listen).await?;
        let addr = public.local_addr().map_err(|e| e.to_string())?;
        let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
        let (shutdown, rx) = watch::channel(false);
        let grace = Duration::from_millis(settings.server.shutdown_grace_ms);

        let tls = match &settings.server.tls {
            Some(tls) => Some(sluice_core::tls::acceptor(tls, |p| settings.resolve(p)).map_err(|e| e.to_string())?),
            None => None,
        };
        let timeouts = server::Timeouts {
            handshake: Duration::from_millis(settings.server.header_read_timeout_ms),
            idle: Duration::from_millis(settings.server.idle_timeout_ms),
            grace,
        };
        let workers =
            Workers::start(sluice_core::workers::resolve_count(settings.server.workers)).map_err(|e| e.to_string())?;
        let proxy_state = state.clone();
        let proxy = server::serve(
            public,
            server::builder(&settings.server),
            tls,
            timeouts,
            move |req: hyper::Request<hyper::body::Incoming>, peer, scheme| {
                handle(proxy_state.clone(), req.map(ClientBody::Tcp), ConnInfo { peer, scheme })
            },
            rx.clone(),
            Some(workers.clone()),
        );
        let admin_state = state.clone();
        let admin = server::serve(
            admin_listener,
            server::builder(&Default::default()),
            None,
            timeouts,
            move |req, _peer, _scheme| admin::handle(admin_state.clone(), req),
            rx.clone(),
            None,
        );
        let mut tasks = vec![tokio::spawn(proxy), tokio::spawn(admin)];
        let http3_addr = match start_http3(&state, &settings, rx.clone())? {
            Some((bound, task)) => {
                tasks.push(task);
                Some(bound)
            }
            None => None,
        };
        if let Some(demo) = &settings.demo {
            let listener = bind(demo.listen).await?;
            tracing::info!(addr = %demo.listen, "demo upstream serving");
            let serve_demo = server::serve(
                listener,
                server::builder(&Default::default()),
                None,
                timeouts,
                move |req, _peer, _scheme| crate::demo::handle(req),
                rx.clone(),
                None,
            );
            tasks.push(tokio::spawn(serve_demo));
        }
        if let Some(pg) = state.runtime().backends().postgres.clone()
            && let Some(name) = settings.postgres.as_ref().and_then(|p| p.config_name.clone())
        {
            tasks.push(tokio::spawn(watch_stored_config(state.clone(), pg, name, rx.clone())));
        }
        tasks.push(tokio::spawn(crate::ticks::deliver(state.clone(), rx.clone())));
        tasks.push(tokio::spawn(admin::sampler::sample_every_second(
            state.clone(),
            rx.clone(),
        )));
        if let Some(fleet) = state.runtime().backends().gpu.clone() {
            tasks.push(tokio::spawn(fleet.run(rx.clone())));
        }
        tasks.push(tokio::spawn(crate::messages::deliver(
            state.clone(),
            state.runtime().backends().redis.clone(),
            rx.clone(),
        )));
        if let ConfigSource::File(path) = &source {
            tasks.push(tokio::spawn(watch_file(state.clone(), path.clone(), rx)));
        }
        tracing::info!(%addr, %admin_addr, "sluice is serving");
        Ok(RunningGateway {
            state,
            addr,
            admin_addr,
            http3_addr,
            shutdown,
            tasks,
            workers,
        })
    }

    /// Stops accepting, drains in-flight requests and open tunnels (up to the configured
    /// grace; tunnels still open then are closed) and returns when both listeners are done.
    pub async fn shutdown(self) {
        let grace = Duration::from_millis(self.state.current().config.server.shutdown_grace_ms);
        let deadline = tokio::time::Instant::now() + grace;
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        self.state.tunnels().drain(deadline).await;
        // Every connection has drained: the workers' threads may end.
        drop(self.workers);
    }

    /// How many request workers serve the public listener.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Serves until SIGTERM or SIGINT (then drains and returns); SIGHUP reloads the config.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => { let _ = self.state.reload("signal").await; }
            }
        }
        tracing::info!("shutting down: draining in-flight requests");
        self.shutdown().await;
        Ok(())
    }
}

/// Binds the HTTP/3 listener when `server.http3_listen` is set and advertises it in
/// `Alt-Svc`: where it is bound, and its task.
fn start_http3(
    state: &Arc<GatewayState>,
    settings: &sluice_config::GatewayConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<Option<(SocketAddr, JoinHandle<()>)>, String> {
    let (Some(addr), Some(tls)) = (settings.server.http3_listen, &settings.server.tls) else {
        return Ok(None);
    };
    let quic = sluice_core::tls::quic_server_config(tls, |p| settings.resolve(p)).map_err(|e| e.to_string())?;
    let public = &settings.server;
    let limits = server::http3::Limits {
        header_read: Duration::from_millis(public.header_read_timeout_ms),
        idle: Duration::from_millis(public.idle_timeout_ms),
        max_header_bytes: public.max_header_bytes as u64,
        grace: Duration::from_millis(public.shutdown_grace_ms),
    };
    let endpoint = server::http3::endpoint(addr, quic, &limits)?;
    let bound = endpoint.local_addr().map_err(|e| e.to_string())?;
    state.advertise_http3(bound.port());
    tracing::info!(addr = %bound, "HTTP/3 serving");
    let h3_state = state.clone();
    let handler = move |req, peer, scheme| handle(h3_state.clone(), req, ConnInfo { peer, scheme });
    let task = tokio::spawn(server::http3::serve(endpoint, handler, shutdown, limits));
    Ok(Some((bound, task)))
}

/// Reloads whenever Postgres says the config named `name` changed, until shutdown.
async fn watch_stored_config(
    state: Arc<GatewayState>,
    pg: Arc<PostgresBackend>,
    name: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let watching = pg.watch_configs(|changed| {
        let (state, name) = (state.clone(), name.clone());
        async move {
            // "" means: a change may have been missed; reload only when the stored text is
            // not the one running (not at every start).
            let wanted = if changed.is_empty() {
                state.stored_config_differs(&name).await
            } else {
                changed == name
            };
            if wanted {
                let _ = state.reload("postgres").await;
            }
        }
    });
    tokio::select! {
        _ = watching => {}
        _ = shutdown.changed() => {}
    }
}

/// Applies pending migrations, retrying with backoff while Postgres is unreachable: the
/// gateway serves meanwhile, and plugins' Postgres calls fail as `unavailable` until it is back.
/// A migration that fails in Postgres itself is logged as an error and not retried.
async fn migrate_until_done(pg: Arc<PostgresBackend>) {
    let mut delay = Duration::from_secs(1);
    loop {
        match pg.migrate().await {
            Ok(applied) if applied.is_empty() => {
                tracing::info!("postgres schema is up to date");
                return;
            }
            Ok(applied) => {
                tracing::info!(?applied, "postgres migrations applied");
                return;
            }
            Err(error @ sluice_backends::postgres::PostgresError::Migrate(_)) => {
                tracing::error!(%error, "postgres migrations failed; fix the database or the migrations, then restart or run `sluice migrate`");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_s = delay.as_secs(), "postgres migrations could not run");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn modified(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads when the config file's modification time changes.
async fn watch_file(state: Arc<GatewayState>, path: std::path::PathBuf, mut shutdown: watch::Receiver<bool>) {
    let mut last = modified(&path);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            _ = shutdown.changed() => return,
        }
        let now = modified(&path);
        if now != last {
            last = now;
            let _ = state.reload("file").await;
        }
    }
}
