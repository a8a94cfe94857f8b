//! Accepting connections: [`serve`] for a given listener, [`Sim::start`] for tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::SimConfig;
use crate::error::SimError;
use crate::routes;
use crate::state::SimState;

/// Serves the simulator on `listener` until the future is dropped.
///
/// Fails at once if `config` is invalid; otherwise runs forever.
pub async fn serve(config: SimConfig, listener: TcpListener) -> Result<(), SimError> {
    let state = Arc::new(SimState::new(config)?);
    accept_loop(state, listener).await;
    Ok(())
}

async fn accept_loop(state: Arc<SimState>, listener: TcpListener) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Usually running out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let state = Arc::clone(&state);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let state = Arc::clone(&state);
                async move { Ok::<_, Infallible>(routes::route(state, request).await) }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

/// Helper to run a simulator in the background, e.g. in tests.
pub struct Sim;

impl Sim {
    /// Starts a simulator on an ephemeral port of 127.0.0.1 and returns its address.
    ///
    /// The simulator stops when the returned [`SimHandle`] is dropped.
    pub async fn start(config: SimConfig) -> Result<(SocketAddr, SimHandle), SimError> {
        let state = Arc::new(SimState::new(config)?);
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(accept_loop(state, listener));
        Ok((addr, SimHandle { task }))
    }
}

/// A running background simulator; dropping it stops accepting connections.
pub struct SimHandle {
    task: JoinHandle<()>,
}

impl SimHandle {
    /// Stops the simulator (same as dropping the handle).
    pub fn shutdown(self) {}
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
